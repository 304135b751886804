"""What each result column measures, in words and in the unit a person reads it in.

The tables keep SI values (seconds, shares of 1, requests per second); plot axes and the
report show latencies in ms (s once a value reaches a second), shares as percentages and
every figure to three significant figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# Replications below which a half-width is too rough to show or test with (a t quantile of
# 12.7 at two): the report, the verdict and the plots' bands all follow it.
MIN_REPLICATIONS = 3

LATENCIES = {
    "latency_mean": "mean latency",
    "latency_p50": "p50 latency",
    "latency_p90": "p90 latency",
    "latency_p99": "p99 latency",
    "latency_p999": "p99.9 latency",
    "latency_max": "maximum latency",
}
SHARES = {
    "error_rate": "error rate",
    "availability": "availability",
    "utilization": "utilization",
    "utilization_mean": "mean utilization",
    "utilization_max": "utilization of the busiest server",
    "balancer_utilization": "balancer utilization",
    "offered_load": "offered load (of capacity)",
    "session_moves": "sessions moved",
    "cross_region": "requests sent across regions",
    "cross_zone": "requests sent across zones",
}
OTHERS = {
    "throughput": ("throughput", "requests/s"),
    "imbalance": ("imbalance", "busiest / mean server load"),
}
# Swept keys by their last part: words, and the unit their values are stored in.
KEY_WORDS = {
    "rate": ("offered rate", "requests/s"),
    "count": ("server count", ""),
    "users": ("users", ""),
    "workers": ("workers per server", ""),
    "speed": ("server speed", "x"),
    "ttl": ("DNS TTL", "s"),
    "interval": ("interval", "s"),
    "timeout": ("timeout", "s"),
    "duration": ("run length", "s"),
    "factor": ("slowdown factor", "x"),
}


def words(column: str) -> str:
    """``column`` (a metric or a swept key path) in words, without its unit."""
    if column in LATENCIES:
        return LATENCIES[column]
    if column in SHARES:
        return SHARES[column]
    if column in OTHERS:
        return OTHERS[column][0]
    last = column.rsplit(".", 1)[-1].split("[")[0]
    return KEY_WORDS[last][0] if last in KEY_WORDS else column


def scale(column: str, values: Iterable[float] = ()) -> tuple[str, float]:
    """The unit ``column`` is shown in and the factor from its stored value to that unit:
    latencies in ms while every one of ``values`` (seconds) is below a second, else s;
    shares in %."""
    if column in LATENCIES:
        finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
        return ("s", 1.0) if finite and max(finite) >= 1.0 else ("ms", 1000.0)
    if column in SHARES:
        return "%", 100.0
    if column in OTHERS:
        return OTHERS[column][1], 1.0
    last = column.rsplit(".", 1)[-1].split("[")[0]
    return (KEY_WORDS[last][1] if last in KEY_WORDS else ""), 1.0


def setting(key: str, value: object) -> str:
    """A swept key's value in words: ``offered rate 250 requests/s``, ``policy p2c``."""
    unit, _ = scale(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{words(key)} {value:g}" + (f" {unit}" if unit else "")
    return f"{words(key)} {value}"


def axis_label(column: str, values: Iterable[float] = ()) -> str:
    """An axis label for ``column``: its words and unit, as ``p99 latency (ms)``."""
    unit, _ = scale(column, values)
    return f"{words(column)} ({unit})" if unit else words(column)


def three_figures(value: float) -> str:
    """``value`` to three significant figures, without an exponent (``1,230``, ``0.0456``)."""
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    decimals = max(2 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def header(column: str) -> str:
    """A table header for ``column``: its words, with its unit unless each value carries its
    own (latencies, shares): ``throughput (requests/s)``, ``p99 latency``."""
    unit, _ = scale(column)
    return words(column) if unit in ("ms", "%") or not unit else f"{words(column)} ({unit})"


def shown_value(column: str, value: float, half_width: float | None = None) -> str:
    """``value`` of ``column`` to three significant figures, with ``± half_width`` when given
    (a number, not NaN), in the unit its :func:`header` leaves to the value: ``146 ± 60.6 ms``,
    ``26.9%``, ``250 ± 2.67``."""
    unit, factor = scale(column, [value, half_width if half_width is not None else 0.0])
    text = three_figures(value * factor)
    if half_width is not None and not math.isnan(half_width):
        text += f" ± {three_figures(half_width * factor)}"
    if text == "n/a" or unit not in ("ms", "s", "%"):
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"
