"""The ``lbsim`` command (the script, and ``python -m lbsim``)."""

import sys


def entry() -> None:
    """Run the command line; Ctrl-C while it is still importing (a few tenths of a second)
    ends it as a Ctrl-C later does: one line, exit code 130."""
    try:
        from lbsim.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted.\n")
        sys.exit(130)
    main()


if __name__ == "__main__":
    entry()
