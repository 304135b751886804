"""The exceptions lbsim raises, in one small tree.

LbsimError
├── ConfigError (also a ValueError): the user's input breaks a rule
│   └── UnknownNameError: a name (policy, distribution, key) is not known
├── SimulationError: an invariant broke during a run (a bug, not user input)
└── WorkerLost: a worker process ended in the middle of a run (killed, out of memory)
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for an error message, at most ``limit`` characters (cut with a trailing
    ``...``); a large value is never written out whole, even before it is cut."""
    brief = reprlib.Repr()
    brief.maxstring = brief.maxother = limit
    brief.maxlevel = 4
    text = brief.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def file_named(path: object, limit: int = 100) -> str:
    """A file's path as an error message starts with it: whole up to ``limit`` characters,
    else its last ``limit - 3`` (the file's own name) after ``...``."""
    text = str(path)
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


def _some(names: list[str], limit: int = 120) -> str:
    """``names`` joined by commas, cut after about ``limit`` characters with a count of all."""
    text = ", ".join(names)
    if len(text) <= limit:
        return text
    shown_names: list[str] = []
    for name in names:
        if len(", ".join([*shown_names, name])) > limit:
            break
        shown_names.append(name)
    return f"{', '.join(shown_names)}, ... ({len(names)} in all)"


class LbsimError(Exception):
    """Base class of every error lbsim raises on purpose."""


class ConfigError(LbsimError, ValueError):
    """A scenario, parameter or option breaks a rule.

    The message follows one template, ``<where> <what> must be <rule>; got <value>.``,
    so the command line can print it as one line and exit with code 2. ``key`` names the
    sub-key the message is about when it is raised for a whole mapping.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class UnknownNameError(ConfigError):
    """A name that is not in the list of known names, with a suggestion."""

    def __init__(self, what: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        message = f"unknown {what} {shown(name)}."
        # Compared without case, so 'P2C' finds 'p2c'.
        lowered = {k.lower(): k for k in known}
        close = [lowered[k] for k in difflib.get_close_matches(name.lower(), lowered, n=1, cutoff=0.6)]
        if close:
            message += f" Did you mean {close[0]!r}?"
        else:
            message += f" Known: {_some(known)}."
        super().__init__(message)
        self.name = name
        self.suggestion = close[0] if close else None


class SimulationError(LbsimError):
    """A broken invariant during a run, naming the time, the component and the value."""


class WorkerLost(LbsimError):
    """A worker process of a sweep ended while running (killed, or out of memory): the sweep
    stopped; the runs that finished before are kept."""
