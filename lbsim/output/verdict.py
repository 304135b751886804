"""Which policy is best in each cell of a sweep, by how much, and whether that is significant.

The gap between the best and the runner-up is significant when the paired 95% confidence
interval of their per-replication difference excludes 0 (:mod:`lbsim.results.comparisons`:
a paired t-test at the 5% level over the common-random-number replications). Below
MIN_REPLICATIONS nothing is tested.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lbsim.output.quantities import MIN_REPLICATIONS, setting, shown_value, three_figures, words
from lbsim.results.comparisons import paired

# The metrics a verdict ranks policies on (lower is better for each).
RANKED = ("latency_p99", "error_rate")


def verdicts(summary: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """One sentence per cell of ``summary`` (its runs, ``replication`` and each of ``keys``)
    and ranked metric: the best policy, its margin over the runner-up and whether the margin
    is significant. Empty when the sweep compares fewer than two policies."""
    if summary["policy"].nunique() < 2:
        return []
    others = [key for key in keys if key not in ("scenario", "policy")]
    cells = list(summary.groupby(others, sort=False, dropna=False)) if others else [((), summary)]
    sentences = []
    for values, cell in cells:
        parts = values if isinstance(values, tuple) else (values,)
        where = ", ".join(setting(key, value) for key, value in zip(others, parts, strict=True))
        for metric in RANKED:
            sentences.append((f"{where}: " if where else "") + _ranking(cell, metric))
    return sentences


def _ranking(cell: pd.DataFrame, metric: str) -> str:
    """The best policy of one cell on ``metric`` against the runner-up, in words."""
    runs = cell.pivot_table(index="replication", columns="policy", values=metric, sort=False)
    means = runs.mean().dropna().sort_values(kind="stable")
    if len(means) < 2:
        return f"{words(metric)}: fewer than two policies have a value."
    best, second = means.index[0], means.index[1]
    if means.iloc[0] == means.iloc[-1]:
        return f"{words(metric)} {shown_value(metric, means.iloc[0])} with every policy."
    margin = means.iloc[1] - means.iloc[0]
    test = significance(metric, runs[best].to_numpy(dtype=float), runs[second].to_numpy(dtype=float))
    below = (
        f"{three_figures(100 * margin / means.iloc[1])}%"
        if means.iloc[1] > 0
        else shown_value(metric, margin)
    )
    return (
        f"{words(metric)} lowest with {best} ({shown_value(metric, means.iloc[0])}), {below} below "
        f"{second} ({shown_value(metric, means.iloc[1])}): {test}."
    )


def significance(metric: str, a: np.ndarray, b: np.ndarray) -> str:
    """Whether ``metric`` differs between two policies whose values in replication r are
    ``a[r]`` and ``b[r]`` (the same seeds): ``significant (...)``, ``not significant at n
    replications (...)`` or ``not tested with fewer than 3 replications``."""
    if len(a) < MIN_REPLICATIONS:
        return f"not tested with fewer than {MIN_REPLICATIONS} replications"
    difference = paired(a, b)
    half_width = shown_value(metric, difference.half_width)
    if difference.excludes_zero:
        return f"significant (paired 95% CI of the difference ± {half_width})"
    return f"not significant at {len(a)} replications (± {half_width})"
