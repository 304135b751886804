"""The ``lbsim`` command (the script, and ``python -m lbsim``)."""

from lbsim import startup


def entry() -> None:
    """Run the command line; a Ctrl-C while it is still importing (a few tenths of a second)
    ends it as a Ctrl-C later does: one line, exit code 130 (see :mod:`lbsim.startup`)."""
    previous = startup.guard()
    from lbsim.cli import main

    startup.release(previous)
    main()


if __name__ == "__main__":
    entry()
