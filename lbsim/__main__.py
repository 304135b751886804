"""The ``lbsim`` command (the script, and ``python -m lbsim``)."""

import sys


def entry() -> None:
    """Run the command line; Ctrl-C while it is still importing (a few tenths of a second)
    ends it as a Ctrl-C later does: one line, exit code 130."""
    try:
        from lbsim.cli import main
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        sys.stderr.write("interrupted.\n")
        sys.exit(130)
    main()


def _interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a Ctrl-C, or was caused by one (Python wraps a KeyboardInterrupt
    raised while a class body runs __set_name__ in a RuntimeError)."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    entry()
