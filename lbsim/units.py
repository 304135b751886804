"""Durations, rates and shares as people write them: "20ms" -> 0.02 s, "900/s" -> 900.0 per
second, "1%" -> 0.01.

Bare numbers mean seconds (durations), events per second (rates) and fractions (shares).
"""

from __future__ import annotations

import math
import re

from lbsim.errors import ConfigError, shown

# Each unit as people write it.
_DURATION_UNITS = {
    **dict.fromkeys(("us", "µs", "usec"), 1e-6),
    **dict.fromkeys(("ms", "msec"), 1e-3),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
}
# Per unit of time ("/s", "/sec", "/min", ...), and requests per second or minute.
_RATE_UNITS = {
    **{f"/{unit}": 1 / scale for unit, scale in _DURATION_UNITS.items() if scale >= 1.0},
    "rps": 1.0,
    "rpm": 1 / 60.0,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _pattern(units: dict[str, float]) -> re.Pattern[str]:
    """A number, then optionally one of ``units`` (longest first, so 'ms' is not read as 'm';
    spaces allowed after a '/')."""
    spellings = "|".join(
        re.escape(unit).replace("/", r"/\s*") for unit in sorted(units, key=len, reverse=True)
    )
    return re.compile(rf"^\s*({_NUMBER})\s*({spellings})?\s*$")


_DURATION = _pattern(_DURATION_UNITS)
_RATE = _pattern(_RATE_UNITS)
_SHARE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")


def parse_duration(value: object) -> float:
    """Return a duration in seconds from ``"250us"``, ``"20ms"``, ``"2s"``, ``"5m"``, ``"1h"``
    (or ``usec``, ``msec``, ``sec``, ``min``, ``hr`` and the words) or a number.

    Raises:
        ConfigError: the value is not a finite duration.
    """
    return _parse(value, _DURATION, _DURATION_UNITS, "a duration such as '20ms' or '2s'")


def parse_rate(value: object) -> float:
    """Return a rate in events per second from ``"900/s"``, ``"54000/m"``, ``"10/h"`` (or
    ``/sec``, ``/min``, ``/hour``, ``rps``, ``rpm``) or a number.

    Raises:
        ConfigError: the value is not a finite rate.
    """
    return _parse(value, _RATE, _RATE_UNITS, "a rate such as '900/s' or '54000/m'")


def parse_share(value: object) -> float:
    """Return a fraction from ``"5%"`` (0.05) or a number (taken as the fraction itself).

    Raises:
        ConfigError: the value is neither.
    """
    if isinstance(value, str) and (match := _SHARE.match(value)):
        return float(match.group(1)) / 100
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ConfigError(f"must be a number or a percentage such as '5%'; got {shown(value)}.")


def number_or_text(text: str) -> float | str:
    """A command-line value as a float when it is one (``0.02``), else as written (``2%``,
    ``200ms``), for the parsers above (which take numbers from YAML as numbers)."""
    try:
        return float(text)
    except ValueError:
        return text


def parse_threshold(metric: str, value: object) -> float:
    """Return a value of ``metric`` (a result column) as people write it: a duration for a
    latency (``"200ms"``), a rate for throughput (``"400rps"``), else a number or a percentage
    (``"1%"``) for shares such as the error rate.

    Raises:
        ConfigError: the value is not of that kind.
    """
    if metric.startswith("latency"):
        return parse_duration(value)
    if metric == "throughput":
        return parse_rate(value)
    return parse_share(value)


def _parse(value: object, pattern: re.Pattern[str], units: dict[str, float], what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and (match := pattern.match(value)):
        unit = match.group(2)
        number = float(match.group(1)) * (units[re.sub(r"\s+", "", unit)] if unit else 1.0)
    else:
        raise ConfigError(f"must be {what}; got {shown(value)}.")
    if not math.isfinite(number):
        raise ConfigError(f"must be finite, {what}; got {shown(value)}.")
    return number


def format_duration(seconds: float) -> str:
    """Return a short human spelling of a duration: 0.02 -> '20ms'."""
    for unit, scale in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.4g}{unit}"
    return f"{seconds / 1e-6:.4g}us"
