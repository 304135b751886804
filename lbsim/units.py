"""Durations and rates as people write them: "20ms" -> 0.02 s, "900/s" -> 900.0 per second.

Bare numbers mean seconds (durations) and events per second (rates).
"""

from __future__ import annotations

import math
import re

from lbsim.errors import ConfigError

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE_UNITS = {"s": 1.0, "m": 1 / 60.0, "h": 1 / 3600.0}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_DURATION = re.compile(rf"^\s*({_NUMBER})\s*(us|µs|ms|s|m|h)?\s*$")
_RATE = re.compile(rf"^\s*({_NUMBER})\s*(?:/\s*(s|m|h))?\s*$")


def parse_duration(value: object) -> float:
    """Return a duration in seconds from ``"250us"``, ``"20ms"``, ``"2s"``, ``"5m"``, ``"1h"`` or a number.

    Raises:
        ConfigError: the value is not a finite duration.
    """
    return _parse(value, _DURATION, _DURATION_UNITS, "a duration such as '20ms' or '2s'")


def parse_rate(value: object) -> float:
    """Return a rate in events per second from ``"900/s"``, ``"54000/m"``, ``"10/h"`` or a number.

    Raises:
        ConfigError: the value is not a finite rate.
    """
    return _parse(value, _RATE, _RATE_UNITS, "a rate such as '900/s' or '54000/m'")


def _parse(value: object, pattern: re.Pattern[str], units: dict[str, float], what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and (match := pattern.match(value)):
        number = float(match.group(1)) * units[match.group(2) or "s"]
    else:
        raise ConfigError(f"must be {what}; got {value!r}.")
    if not math.isfinite(number):
        raise ConfigError(f"must be finite, {what}; got {value!r}.")
    return number


def format_duration(seconds: float) -> str:
    """Return a short human spelling of a duration: 0.02 -> '20ms'."""
    for unit, scale in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.4g}{unit}"
    return f"{seconds / 1e-6:.4g}us"
