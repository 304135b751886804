"""The latency histogram: every percentile within 0.5% of the exact one, mergeable, bounded."""

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import lbsim
from lbsim.results import recorder
from lbsim.results.histogram import ACCURACY, LatencyHistogram
from tests.helpers import make_scenario

# Percentiles as exact fractions, so the exact rank ceil(p n) is computed without rounding.
FRACTIONS = [Fraction(k, 1000) for k in range(1001)] + [Fraction(9999, 10000), Fraction(99999, 100000)]
PERCENTILES = np.array([float(p) for p in FRACTIONS])


def exact_quantiles(values):
    """The order statistic of rank ceil(p n) for each p, by integer arithmetic."""
    ordered, n = np.sort(values), values.size
    ranks = [max(1, -(-p.numerator * n // p.denominator)) for p in FRACTIONS]
    return ordered[np.array(ranks) - 1]


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.exponential(0.01, n),
        lambda rng, n: rng.lognormal(-4, 2.5, n),
        lambda rng, n: 0.001 * (1 + rng.pareto(1.2, n)),
        lambda rng, n: rng.uniform(0.0499, 0.0501, n),
        lambda rng, n: np.round(rng.exponential(0.05, n), 3),
    ],
    ids=["exponential", "lognormal", "pareto", "narrow", "ties"],
)
def test_every_percentile_is_within_the_stated_error_of_the_exact_one(draw):
    values = draw(np.random.default_rng(7), 200_000)
    histogram = LatencyHistogram()
    histogram.add(values)
    exact = exact_quantiles(values)
    estimate = histogram.quantiles(PERCENTILES)
    relative = np.abs(estimate - exact) / np.where(exact > 0, exact, 1)
    assert relative.max() <= ACCURACY * (1 + 1e-9)
    assert ACCURACY <= 0.01


def test_mean_minimum_and_maximum_are_exact():
    values = np.array([0.003, 0.001, 0.250, 0.020])
    histogram = LatencyHistogram()
    histogram.add(values)
    assert histogram.mean() == pytest.approx(0.0685)
    assert histogram.quantiles(np.array([0.0, 1.0])).tolist() == [0.001, 0.250]


def test_a_single_repeated_value_is_returned_exactly():
    histogram = LatencyHistogram()
    histogram.add(np.full(10, 0.052))
    assert histogram.quantiles(np.array([0.5, 0.99])).tolist() == [0.052, 0.052]


def test_merged_histograms_equal_one_histogram_of_all_values():
    rng = np.random.default_rng(3)
    small, large = rng.exponential(0.001, 5_000), rng.exponential(10.0, 5_000)
    merged, whole = LatencyHistogram(), LatencyHistogram()
    merged.add(small)
    other = LatencyHistogram()
    other.add(large)
    merged.merge(other)
    whole.add(np.concatenate([large, small]))
    assert np.array_equal(merged.quantiles(PERCENTILES), whole.quantiles(PERCENTILES))
    assert merged.n[0] == whole.n[0] == 10_000


def test_rows_are_independent():
    histogram = LatencyHistogram(rows=3)
    histogram.add(np.array([0.1, 0.2, 5.0, 7.0]), rows=np.array([0, 0, 2, 2]))
    assert histogram.n.tolist() == [2, 0, 2]
    assert np.isnan(histogram.quantiles(np.array([0.5]), row=1)[0])
    assert histogram.quantiles(np.array([1.0]), row=2)[0] == 7.0


def test_memory_grows_with_the_spread_of_values_not_their_number():
    rng = np.random.default_rng(1)
    histogram = LatencyHistogram()
    for _ in range(20):
        histogram.add(rng.uniform(0.001, 1.0, 100_000))
    # Three decades at gamma = 1.01005: ln(1000) / ln(gamma) = 691 buckets, whatever the count.
    assert histogram.counts.shape[1] == pytest.approx(691, abs=2)
    assert histogram.n[0] == 2_000_000


def test_a_run_folded_in_many_chunks_gives_the_tables_of_one_chunk(monkeypatch):
    scenario = make_scenario(
        duration=20.0,
        warmup=2.0,
        workload={"arrivals": "poisson", "rate": 500, "size": "exp(8ms)", "clients": 50},
        servers=[{"name": "web", "count": 5}],
        balancer={"policy": "least_connections"},
        faults=[{"target": "web-1", "kind": "crash", "at": "5s", "duration": "3s"}],
    )
    whole = lbsim.simulate(scenario)
    monkeypatch.setattr(recorder, "CHUNK", 997)
    chunked = lbsim.simulate(scenario)
    assert len(chunked.requests) > 10 * 997
    # Counts, percentiles and session moves are exact; sums differ only by rounding order.
    for table in ("summary", "servers", "timeseries", "faults"):
        pd.testing.assert_frame_equal(
            getattr(chunked, table), getattr(whole, table), check_exact=False, rtol=1e-12
        )
    assert chunked.summary.drop(columns="latency_mean").equals(whole.summary.drop(columns="latency_mean"))
    assert chunked.requests.equals(whole.requests)
