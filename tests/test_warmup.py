"""warmup: auto, MSER-5 over the replications' average response times."""

import numpy as np
import pandas as pd
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
    assert pd.isna(result.summary.loc[result.summary["warmup"] != "auto", "truncation"]).all()
