"""A mergeable log-bucketed histogram of latencies, the way DDSketch keeps quantiles.

Bucket k holds the values in (gamma^(k-1), gamma^k] with gamma = (1 + a) / (1 - a); its
representative 2 gamma^k / (gamma + 1) is within a relative error ``a`` of every value in it.
A quantile is the representative of the bucket holding the order statistic of rank
ceil(p n) (numpy's ``inverted_cdf``), clamped to the exact minimum and maximum, so every
percentile is within ``ACCURACY`` of the exact one, whatever the number of values; memory
grows with the spread of the values (about 230 buckets per factor of 10), never with their
number. Histograms with the same rows merge by adding counts.
"""

from __future__ import annotations

import math

import numpy as np

# Relative error bound of every quantile (0.5%, half the 1% the results promise).
ACCURACY = 0.005
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
# Values below this (in seconds) count as zero: a nanosecond is below any modelled latency.
SMALLEST = 1e-9


def bucket_of(values: np.ndarray) -> np.ndarray:
    """Bucket index of each value (values below SMALLEST share the lowest bucket)."""
    return np.ceil(np.log(np.maximum(values, SMALLEST)) / _LOG_GAMMA).astype(np.int64)


def representative(buckets: np.ndarray) -> np.ndarray:
    """The value that stands for each bucket, within ACCURACY of everything in it."""
    return 2 * np.exp(buckets * _LOG_GAMMA) / (GAMMA + 1)


class LatencyHistogram:
    """Counts of values per log bucket, in ``rows`` independent rows (one per time window,
    or a single row), with the exact count, sum, minimum and maximum of each row."""

    def __init__(self, rows: int = 1) -> None:
        if rows < 1:
            raise ValueError(f"rows must be >= 1; got {rows}.")
        self.rows = rows
        self.offset = 0
        self.counts = np.zeros((rows, 0), dtype=np.int64)
        self.n = np.zeros(rows, dtype=np.int64)
        self.total = np.zeros(rows)
        self.low = np.full(rows, math.inf)
        self.high = np.full(rows, -math.inf)

    def add(self, values: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Count ``values``, each in its row of ``rows`` (all in row 0 when None)."""
        if values.size == 0:
            return
        row = np.zeros(values.size, dtype=np.int64) if rows is None else rows.astype(np.int64)
        buckets = bucket_of(values)
        self._cover(int(buckets.min()), int(buckets.max()))
        width = self.counts.shape[1]
        flat = row * width + (buckets - self.offset)
        self.counts += np.bincount(flat, minlength=self.rows * width).reshape(self.rows, width)
        self.n += np.bincount(row, minlength=self.rows)
        self.total += np.bincount(row, weights=values, minlength=self.rows)
        if self.rows == 1:
            # ufunc.at is several times slower than a reduction, on every chunk of a run.
            np.minimum(self.low, values.min(), out=self.low)
            np.maximum(self.high, values.max(), out=self.high)
        else:
            np.minimum.at(self.low, row, values)
            np.maximum.at(self.high, row, values)

    def merge(self, other: LatencyHistogram) -> None:
        """Add the counts of ``other`` (same number of rows) to this histogram."""
        if other.rows != self.rows:
            raise ValueError(f"rows must be {self.rows} to merge; got {other.rows}.")
        if other.counts.shape[1] == 0:
            return
        self._cover(other.offset, other.offset + other.counts.shape[1] - 1)
        start = other.offset - self.offset
        self.counts[:, start : start + other.counts.shape[1]] += other.counts
        self.n += other.n
        self.total += other.total
        self.low = np.minimum(self.low, other.low)
        self.high = np.maximum(self.high, other.high)

    def quantiles(self, probabilities: np.ndarray, row: int = 0) -> np.ndarray:
        """Quantiles of one row at ``probabilities`` (NaN when the row is empty)."""
        probabilities = np.asarray(probabilities, dtype=float)
        n = int(self.n[row])
        if n == 0:
            return np.full(probabilities.shape, np.nan)
        # Rounding first keeps 0.99 x 100 from becoming rank 100 through a floating-point excess.
        ranks = np.clip(np.ceil(np.round(probabilities * n, 6)), 1, n)
        cumulative = np.cumsum(self.counts[row])
        buckets = np.searchsorted(cumulative, ranks) + self.offset
        estimate = np.clip(representative(buckets), self.low[row], self.high[row])
        # The first and last order statistics are known exactly.
        estimate[ranks == 1] = self.low[row]
        estimate[ranks == n] = self.high[row]
        return estimate

    def mean(self, row: int = 0) -> float:
        """The exact mean of one row (NaN when empty)."""
        return float(self.total[row] / self.n[row]) if self.n[row] else math.nan

    def _cover(self, first: int, last: int) -> None:
        """Grow the bucket range to include buckets ``first`` .. ``last``."""
        width = self.counts.shape[1]
        if width and first >= self.offset and last < self.offset + width:
            return
        low = min(first, self.offset) if width else first
        high = max(last, self.offset + width - 1) if width else last
        counts = np.zeros((self.rows, high - low + 1), dtype=np.int64)
        counts[:, self.offset - low : self.offset - low + width] = self.counts
        self.counts = counts
        self.offset = low
