"""warmup: auto, MSER-5 over the replications' average response times."""

import numpy as np
import pytest

import lbsim
from lbsim.results.mser import mser5
from tests.helpers import make_scenario


def test_mser5_cuts_a_transient_at_its_end():
    # 50 high values, then 950 at a steady 1: the tail after 10 batches has no variance.
    series = np.concatenate([np.full(50, 10.0), np.ones(950)])
    assert mser5(series) == 50


def test_mser5_keeps_a_series_that_starts_steady():
    rng = np.random.default_rng(0)
    assert mser5(rng.normal(1.0, 0.1, 1000)) < 100


def test_mser5_says_when_a_series_never_settles():
    assert mser5(np.arange(1000.0)) is None  # a trend: the minimum is at the search limit
    with pytest.raises(ValueError, match="at least 50 observations"):
        mser5(np.ones(49))


def test_warmup_auto_is_a_duration_or_auto_only():
    with pytest.raises(lbsim.ConfigError, match="warmup must be 'auto' or a duration"):
        lbsim.load_scenario(make_scenario(warmup="sometimes"))


@pytest.mark.slow
def test_an_mm1_started_empty_near_saturation_is_cut_to_an_unbiased_mean():
    # M/M/1 at load 0.95: mean response 1 / (100 - 95) = 200 ms. 40 s runs started empty are
    # biased low (the queue is still filling); the cut mean's interval holds 200 ms.
    scenario = make_scenario(
        duration=40.0,
        seed=3,
        replications=200,
        workload={"arrivals": "poisson", "rate": 95, "size": "exp(10ms)"},
        servers=[{"name": "web"}],
        balancer={"policy": "random", "cost": 0},
        sweep={"warmup": ["0s", "auto"]},
    )
    result = lbsim.run_sweep(scenario, jobs=2)
    table = result.table.set_index("warmup")
    plain, cut = table.loc[0.0], table.loc["auto"]
    assert plain["latency_mean"] + plain["latency_mean_ci"] < 0.200  # biased low
    assert abs(cut["latency_mean"] - 0.200) <= cut["latency_mean_ci"]
    auto = result.summary[result.summary["warmup"] == "auto"]
    assert auto["steady_state"].all() and auto["truncation"].nunique() == 1
    assert 0 < auto["truncation"].iloc[0] < 20.0
    fixed = result.summary[result.summary["warmup"] != "auto"]
    assert fixed["truncation"].isna().all() and fixed["steady_state"].isna().all()


def _mm1(**changes):
    base = {
        "workload": {"arrivals": "poisson", "rate": 90, "size": "exp(10ms)"},
        "servers": [{"name": "web"}],
        "balancer": {"policy": "random", "cost": 0},
        "duration": 20.0,
        "warmup": "auto",
        "replications": 3,
    }
    return make_scenario(**{**base, **changes})


def test_too_few_requests_for_mser_is_a_clear_error():
    scenario = _mm1(duration=1.0, workload={"arrivals": "poisson", "rate": 10, "size": "exp(10ms)"})
    with pytest.raises(lbsim.ConfigError, match=r"warmup: auto needs ok requests in at least 50 of its 1000"):
        lbsim.run_sweep(scenario, jobs=1)


def test_one_run_needs_a_fixed_warmup():
    with pytest.raises(lbsim.ConfigError, match="one run needs a fixed warmup; got auto"):
        lbsim.simulate(_mm1())


def test_a_cut_after_a_fault_starts_is_said():
    # Load 0.9; web slowed down 4x from 1 s: the queue grows at once, and MSER cuts past it.
    faults = [{"target": "web", "kind": "slow", "factor": 4, "at": "1s", "duration": "6s"}]
    result = lbsim.run_sweep(_mm1(faults=faults), jobs=1)
    cut = result.summary["truncation"].iloc[0]
    assert cut > 1.0
    assert any("after faults[0] starts" in note for note in result.notes)
