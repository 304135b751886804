"""The ``lbsim`` command (the script, and ``python -m lbsim``)."""

import sys


def entry() -> None:
    """Run the command line; Ctrl-C while it is still importing (a few tenths of a second)
    ends it as a Ctrl-C later does: one line, exit code 130. That includes a Ctrl-C that
    lands in a callback of the import machinery, which Python reports as "Exception ignored"
    with a traceback and then carries on (1 in about 500 tries on a loaded machine)."""
    ignored: list[BaseException] = []

    def unraisable(info: "sys.UnraisableHookArgs") -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            ignored.append(info.exc_value)
        else:
            sys.__unraisablehook__(info)

    sys.unraisablehook = unraisable
    try:
        from lbsim.cli import main
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        ignored.append(exc)
    finally:
        sys.unraisablehook = sys.__unraisablehook__
    if ignored:
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
