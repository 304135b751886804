"""Ctrl-C while the ``lbsim`` command is still starting.

Importing the command line's libraries takes a few tenths of a second. Python's own
handler would raise KeyboardInterrupt in whatever import a Ctrl-C lands in: a traceback,
or, inside a callback of the import machinery, "Exception ignored" and the command carries
on. While :func:`guard` holds, a Ctrl-C instead ends the process at once as one later does:
one line, ``interrupted.``, exit code 130 (nothing has been written yet to clean up).
"""

from __future__ import annotations

# The signal module's C core, not the module itself: `import signal` first imports enum
# (10 ms and more on a loaded machine, where site has not imported it yet), and every
# millisecond of import before guard() holds is a moment a Ctrl-C would still be Python's.
# Its functions are the same ones, without the enum wrapping.
import _signal as signal
import os
import sys

# Not typing's, for the same reason.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any


def end_at_once(signum: int, frame: FrameType | None) -> None:
    """The SIGINT handler while the command starts."""
    sys.stderr.write("interrupted.\n")
    sys.stderr.flush()
    os._exit(130)


def guard() -> Any:
    """Make a Ctrl-C end the process at once; return the handler to give SIGINT back to
    (for :func:`release`): Python's, also when the guard already held. A SIGINT the process
    was started to ignore stays ignored."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is end_at_once:
        return signal.default_int_handler
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, end_at_once)
    return previous


def release(previous: Any) -> None:
    """Give SIGINT back to ``previous`` (Python's KeyboardInterrupt, which the command line
    handles)."""
    signal.signal(signal.SIGINT, previous)
