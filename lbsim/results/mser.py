"""MSER-5: where to cut a run's warm-up, from its own output.

White's marginal standard error rule (K. P. White, "An effective truncation heuristic for
bias reduction in simulation output", Simulation 69(6), 1997; MSER-5 as in White, Cobb and
Spratt, WSC 2000): average the output series in batches of 5, Z_1..Z_m, and cut the first
d batches where d minimizes

    MSER(d) = sum_{i > d} (Z_i - mean(Z_{d+1..m}))^2 / (m - d)^2,

the squared standard error of the mean that is left. d is searched over the first half of
the batches; a minimum at that limit means the series has not settled within the run.
"""

from __future__ import annotations

import numpy as np

BATCH = 5


def mser5(series: np.ndarray, limit: float = 0.5) -> int | None:
    """The number of observations to cut from the start of ``series`` (a multiple of 5), or
    None when MSER's minimum is at the search limit (``limit`` x the batches): no steady
    state within the run. Raises ValueError with fewer than 10 batches (50 observations)."""
    m = series.size // BATCH
    if m < 10:
        raise ValueError(f"MSER-5 needs at least {10 * BATCH} observations; got {series.size}.")
    batches = series[: m * BATCH].reshape(m, BATCH).mean(axis=1)
    # Sums over each tail Z_{d+1..m}, for every d at once.
    tail_sum = np.cumsum(batches[::-1])[::-1]
    tail_squares = np.cumsum((batches**2)[::-1])[::-1]
    left = np.arange(m, 0, -1, dtype=float)  # m - d for d = 0..m-1
    squared_deviations = tail_squares - tail_sum**2 / left
    searched = int(limit * m)
    d = int(np.argmin(squared_deviations[: searched + 1] / left[: searched + 1] ** 2))
    return None if d >= searched else d * BATCH
