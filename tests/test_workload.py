"""Arrival processes and client populations against their defining rates."""

import math

import numpy as np
import pytest

import lbsim
from lbsim.distributions import Exponential
from lbsim.rng import streams
from lbsim.workload import (
    Clients,
    DeterministicArrivals,
    DiurnalArrivals,
    MarkovModulatedArrivals,
    PoissonArrivals,
    request_blocks,
)
from tests.helpers import make_scenario


def all_times(process, horizon, seed=3):
    return np.concatenate(list(process.times(np.random.default_rng(seed), horizon)))


def test_poisson_count_and_gaps():
    times = all_times(PoissonArrivals(200.0), 1000.0)
    # The count is Poisson(200 000): standard deviation about 447.
    assert abs(times.size - 200_000) < 5 * math.sqrt(200_000)
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.01)
    assert times.max() < 1000.0


def test_deterministic_arrivals_are_evenly_spaced_from_zero():
    assert all_times(DeterministicArrivals(4.0), 1.0) == pytest.approx([0.0, 0.25, 0.5, 0.75])


def test_mmpp_mean_rate_and_burstiness():
    process = MarkovModulatedArrivals((100.0, 900.0), (9.0, 1.0))
    assert process.mean_rate == pytest.approx((100 * 9 + 900 * 1) / 10)
    # About 2,000 cycles: the long-run rate has a relative standard deviation near 1.3%.
    times = all_times(process, 20_000.0)
    assert times.size / 20_000.0 == pytest.approx(180.0, rel=0.05)
    counts = np.bincount((times // 1.0).astype(int))
    # A Poisson process has index of dispersion 1; switching between rates makes it larger.
    assert counts.var() / counts.mean() > 5


def test_diurnal_mean_rate_and_peak():
    process = DiurnalArrivals(100.0, 0.5, 100.0)
    times = all_times(process, 1000.0)
    assert times.size / 1000.0 == pytest.approx(100.0, rel=0.02)
    phase = times % 100.0
    # The first half-period has rate 100 (1 + 0.5 sin): mean 100 (1 + 1/pi), the second 100 (1 - 1/pi).
    ratio = np.sum(phase < 50) / np.sum(phase >= 50)
    assert ratio == pytest.approx((1 + 1 / math.pi) / (1 - 1 / math.pi), rel=0.05)


def test_trace_replays_times_and_sizes(trace):
    result = lbsim.simulate(make_scenario(workload=trace([(0.1, 0.01), (0.25, 0.02), (2.0, 0.5)])))
    requests = result.requests.sort_values("t_arrival")
    assert requests["t_arrival"].to_numpy() == pytest.approx([0.1, 0.25])
    assert requests["size"].to_numpy() == pytest.approx([0.01, 0.02])


def test_zipf_clients_favour_the_first():
    draws = Clients(100, zipf=1.0).draw(np.random.default_rng(0), 200_000)
    harmonic = sum(1 / k for k in range(1, 101))
    assert np.mean(draws == 0) == pytest.approx(1 / harmonic, rel=0.03)
    assert np.mean(draws == 9) == pytest.approx(0.1 / harmonic, rel=0.1)
    assert draws.max() <= 99


def test_a_huge_zipf_exponent_sends_every_request_from_the_first_client_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning would fail the test
        draws = Clients(100, zipf=2.0**63).draw(np.random.default_rng(0), 1000)
    assert (draws == 0).all()  # the limit of 1 / k^s: weight 1 for k = 1, 0 for the rest


def test_request_blocks_pair_sizes_with_arrivals_whatever_the_blocking():
    s = streams(1, 0)
    blocks = list(request_blocks(PoissonArrivals(50_000.0), Exponential(0.01), Clients(10), s, 3.0))
    sizes = np.concatenate([b[1] for b in blocks])
    fresh = streams(1, 0)["sizes"]
    expected = np.concatenate([Exponential(0.01).sample(fresh, 65_536) for _ in range(3)])
    assert np.array_equal(sizes, expected[: sizes.size])


def test_every_arrival_kind_runs_from_a_scenario():
    kinds = [
        {"arrivals": {"kind": "mmpp", "rates": ["20/s", "200/s"], "stays": ["2s", "1s"]}},
        {"arrivals": {"kind": "diurnal", "amplitude": 0.5, "period": "10s"}, "rate": "50/s"},
        {"arrivals": "poisson", "rate": "50/s"},
        {"arrivals": {"kind": "closed", "users": 3, "think": "exp(100ms)"}},
    ]
    for workload in kinds:
        scenario = make_scenario(
            duration=20.0, workload=workload | {"size": "exp(5ms)", "clients": {"count": 10, "zipf": 1.2}}
        )
        summary = lbsim.simulate(scenario).summary.loc[0]
        assert summary["n_ok"] > 100, workload
        assert summary["n_ok"] == summary["n_requests"]


def test_a_rate_can_be_a_share_of_the_fleets_capacity():
    # 4 servers at speed 0.5 and one at speed 2 with 2 workers: 2 + 4 = 6 s of work a second;
    # with 10 ms requests, 600 requests/s. 80% of it is 480/s.
    servers = [
        {"name": "web", "count": 4, "speed": 0.5},
        {"name": "big", "count": 1, "speed": 2, "workers": 2},
    ]
    scenario = lbsim.load_scenario(
        make_scenario(
            workload={"rate": "80%", "size": "exp(10ms)"},
            servers=servers,
            sweep={"workload.rate": ["50%", "120/s"]},
        )
    )
    assert scenario.capacity == pytest.approx(600.0)
    assert scenario.workload.rate == pytest.approx(480.0)
    assert scenario.offered_load == pytest.approx(0.8)
    cells = lbsim.expand(scenario)
    assert [cell.scenario.workload.rate for cell in cells] == [pytest.approx(300.0), pytest.approx(120.0)]


@pytest.mark.parametrize(("rate", "message"), [("0%", "share of capacity > 0%"), ("-5/s", "must be > 0")])
def test_a_rate_must_be_positive_as_a_share_too(rate, message):
    with pytest.raises(lbsim.ConfigError, match=message):
        lbsim.load_scenario(make_scenario(workload={"rate": rate, "size": "exp(10ms)"}))


def test_a_share_of_capacity_where_no_rate_belongs_is_shown_as_written():
    closed = {"kind": "closed", "users": 10, "think": "exp(1s)"}
    workload = {"arrivals": closed, "rate": "80%", "size": "exp(10ms)"}
    with pytest.raises(lbsim.ConfigError, match=r"kind 'closed'.*; got '80%'\.$"):
        lbsim.load_scenario(make_scenario(workload=workload))
