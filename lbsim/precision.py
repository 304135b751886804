"""Run until precise: add replications to each cell until a metric's 95% half-width is
within a target share of its value, or a maximum is reached (Law, Simulation Modeling and
Analysis, 5th ed., 2015, section 9.4.1: the sequential procedure, with relative precision).

Every cell starts with PILOT_REPLICATIONS (or more when asked). After each round, a cell
whose relative half-width w is above the target gets n_{k+1} = ceil(n_k x (w / target)^2)
replications (half-widths shrink as 1 / sqrt(n)), at least n_k + 1, at most the maximum.
The cells of one swept point (the policies compared there) share the count their widest one
sets, so every pair of them stays paired replication by replication. Replication r always
runs under the same seed, so the runs of earlier rounds come from the run cache, and the
same scenario and seed stop at the same counts however many processes or machines run it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from lbsim.config.precision import PrecisionModel
from lbsim.limits import PILOT_REPLICATIONS
from lbsim.output.quantities import three_figures

if TYPE_CHECKING:
    from lbsim.runner import SweepResult


def relative_half_widths(table: pd.DataFrame, metric: str) -> pd.Series:
    """Each cell's half-width of ``metric`` over its value: 0 for a zero half-width (a metric
    equal in every replication is known exactly), NaN when the metric has no value."""
    half_widths = table[f"{metric}_ci"].astype(float)
    values = table[metric].astype(float).abs()
    return (half_widths / values).where(half_widths != 0, 0.0)


def next_replications(n: int, width: float, precision: PrecisionModel) -> int:
    """The replications a cell of relative half-width ``width`` after ``n`` needs next: ``n``
    when it meets the target, has no value (NaN) or is at the maximum."""
    if not width > precision.relative or n >= precision.max_replications:
        return n
    return min(precision.max_replications, max(n + 1, math.ceil(n * (width / precision.relative) ** 2)))


def run_until_precise(
    sweep: Callable[[list[int]], SweepResult],
    points: Sequence[int],
    precision: PrecisionModel,
    replications: int,
) -> tuple[SweepResult, list[str]]:
    """Run ``sweep(counts)`` (the scenario's sweep with counts[c] replications of cell c) in
    rounds from ``replications`` (at least PILOT_REPLICATIONS) until ``precision`` holds in
    every cell or its cell is at the maximum; ``points[c]`` numbers the swept point of cell c.

    Returns:
        the last round's result, and one line per cell that missed the target at the
        maximum (empty when every cell met it).
    """
    start = max(replications, PILOT_REPLICATIONS)
    counts = {point: start for point in points}
    while True:
        result = sweep([counts[point] for point in points])
        widths = relative_half_widths(result.table, precision.metric)
        wanted = dict.fromkeys(counts, 0)
        for point, width in zip(points, widths, strict=True):
            wanted[point] = max(wanted[point], next_replications(counts[point], width, precision))
        if wanted == counts:
            break
        counts = wanted
    missed = []
    for row, width, point in zip(result.table.to_dict("records"), widths, points, strict=True):
        cell = ", ".join(f"{key}={row[key]}" for key in result.keys if key != "scenario")
        if math.isnan(width):
            missed.append(f"{cell}: {precision.metric} has no value, so no precision")
        elif width > precision.relative:
            missed.append(
                f"{cell}: {precision.metric} half-width {three_figures(100 * width)}% of its value after "
                f"{counts[point]} replications (target {three_figures(100 * precision.relative)}%)"
            )
    return result, missed
