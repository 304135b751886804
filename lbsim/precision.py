"""Run until precise: add replications until a metric's 95% half-width is within a target
share of its value in every cell, or a maximum is reached.

Round k runs every cell with n_k replications (replication r always under the same seed, so
the runs of earlier rounds come from the run cache, and the same scenario and seed stop at
the same n however many processes or machines run it). After a round, the widest cell's
relative half-width w sets the next count: half-widths shrink as 1 / sqrt(n), so
n_{k+1} = ceil(n_k x (w / target)^2), at least n_k + 1, at most the maximum. Every cell runs
the same number of replications (the widest one decides), which keeps cells comparable and
paired across policies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from lbsim.output.quantities import MIN_REPLICATIONS, three_figures
from lbsim.runner import SweepResult


@dataclass(frozen=True, slots=True)
class Precision:
    """The target: ``metric``'s 95% half-width at most ``relative`` x its value."""

    metric: str
    relative: float
    max_replications: int


def relative_half_widths(table: pd.DataFrame, metric: str) -> pd.Series:
    """Each cell's half-width of ``metric`` over its value: 0 for a zero half-width (a metric
    equal in every replication is known exactly), NaN when the metric has no value."""
    half_widths = table[f"{metric}_ci"].astype(float)
    values = table[metric].astype(float).abs()
    return (half_widths / values).where(half_widths != 0, 0.0)


def run_until_precise(
    sweep: Callable[[int], SweepResult], precision: Precision, replications: int
) -> tuple[SweepResult, int, list[str]]:
    """Run ``sweep(n)`` (the scenario's sweep with n replications) in rounds (see the module)
    from ``replications`` (at least MIN_REPLICATIONS) until ``precision`` holds in every cell.

    Returns:
        the last round's result, its number of replications, and one line per cell that
        missed the target at the maximum (empty when every cell met it).
    """
    n = max(replications, MIN_REPLICATIONS)
    while True:
        result = sweep(n)
        widths = relative_half_widths(result.table, precision.metric)
        worst = float(widths.max())  # NaN (no value) is never met, and adds no replications
        if not worst > precision.relative or n >= precision.max_replications:
            break
        n = min(precision.max_replications, max(n + 1, math.ceil(n * (worst / precision.relative) ** 2)))
    missed = []
    for row, width in zip(result.table.to_dict("records"), widths, strict=True):
        cell = ", ".join(f"{key}={row[key]}" for key in result.keys if key != "scenario")
        if math.isnan(width):
            missed.append(f"{cell}: {precision.metric} has no value, so no precision")
        elif width > precision.relative:
            missed.append(
                f"{cell}: {precision.metric} half-width {three_figures(100 * width)}% of its value after "
                f"{n} replications (target {three_figures(100 * precision.relative)}%)"
            )
    return result, n, missed
