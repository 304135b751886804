"""Paired comparisons of policies: how much B differs from A in each cell, and how sure.

Replication r of every policy in a cell runs on the same seed, so it sees the same arrivals
and sizes (common random numbers). The difference B - A is then estimated per replication,
and its 95% confidence interval (Student's t over the per-replication differences, a
paired t-test when it excludes 0) is narrower than one built from the two policies'
separate intervals whenever their results are positively correlated, as common random
numbers make them. ``unpaired_ci`` gives the half-width the separate intervals would give
(Welch's, with the smaller degrees of freedom), so the gain shows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lbsim.results.metrics import confidence_half_width, t_quantile

# The metrics each pair of policies is compared on.
COMPARED = ("latency_mean", "latency_p99", "error_rate")


@dataclass(frozen=True, slots=True)
class Paired:
    """The mean per-replication difference ``b - a`` and its 95% half-width (NaN with
    fewer than two replications)."""

    difference: float
    half_width: float

    @property
    def excludes_zero(self) -> bool:
        return not math.isnan(self.half_width) and abs(self.difference) > self.half_width


def paired(a: np.ndarray, b: np.ndarray) -> Paired:
    """Compare ``a[r]`` and ``b[r]``, the values of two policies in replication r."""
    differences = b - a
    return Paired(float(np.mean(differences)), confidence_half_width(differences))


def unpaired_half_width(a: np.ndarray, b: np.ndarray) -> float:
    """The 95% half-width of ``mean(b) - mean(a)`` treating the two as independent samples:
    t(n - 1) x sqrt(var(a) / n + var(b) / n) (NaN with fewer than two replications)."""
    n = len(a)
    if n < 2:
        return math.nan
    return t_quantile(n - 1) * math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / n)


def comparisons(summary: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Every pair of policies (in sweep order, A before B) in each cell of ``summary`` (its
    runs, one row per cell, policy and replication), on each of COMPARED.

    Returns:
        one row per cell, pair and metric: the swept values, ``policy_a``, ``policy_b``,
        ``metric``, ``a`` and ``b`` (means over replications), ``difference`` (b - a) and
        ``difference_ci`` (its paired 95% half-width), ``ratio`` (mean over replications of
        b / a, NaN where an a is 0) and ``ratio_ci``, ``significant`` (the paired interval
        excludes 0) and ``unpaired_ci`` (the half-width without pairing); empty when a cell
        has fewer than two policies.
    """
    others = [key for key in keys if key not in ("scenario", "policy")]
    cells = summary.groupby(others, sort=False, dropna=False) if others else [((), summary)]
    rows = []
    for values, cell in cells:
        where = dict(zip(others, values if isinstance(values, tuple) else (values,), strict=True))
        policies = list(dict.fromkeys(cell["policy"]))
        for first, second in itertools.combinations(policies, 2):
            a_runs = cell[cell["policy"] == first].sort_values("replication")
            b_runs = cell[cell["policy"] == second].sort_values("replication")
            for metric in COMPARED:
                a = a_runs[metric].to_numpy(dtype=float)
                b = b_runs[metric].to_numpy(dtype=float)
                difference = paired(a, b)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratios = np.where(a != 0, b / np.where(a != 0, a, 1.0), np.nan)
                rows.append(
                    {
                        **where,
                        "policy_a": first,
                        "policy_b": second,
                        "metric": metric,
                        "a": float(np.mean(a)),
                        "b": float(np.mean(b)),
                        "difference": difference.difference,
                        "difference_ci": difference.half_width,
                        "ratio": float(np.mean(ratios)) if not np.isnan(ratios).any() else math.nan,
                        "ratio_ci": confidence_half_width(ratios) if not np.isnan(ratios).any() else math.nan,
                        "significant": difference.excludes_zero,
                        "unpaired_ci": unpaired_half_width(a, b),
                    }
                )
    return pd.DataFrame(rows)
