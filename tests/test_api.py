"""The public Python API: explicit, sorted, and usable from a notebook."""

import numpy as np
import pandas as pd

import lbsim
from tests.helpers import Fixed, make_scenario


def test_all_is_sorted_and_complete():
    assert lbsim.__all__ == sorted(lbsim.__all__)
    for name in lbsim.__all__:
        assert hasattr(lbsim, name), name


def test_simulate_returns_the_four_tables():
    result = lbsim.simulate(make_scenario(), seed=4, replication=1)
    for table in (result.summary, result.servers, result.timeseries, result.requests):
        assert isinstance(table, pd.DataFrame)
    assert result.summary.loc[0, "seed"] == 4
    assert result.summary.loc[0, "replication"] == 1
    assert set(result.requests.columns) >= {
        "t_arrival",
        "t_start",
        "t_done",
        "latency",
        "server",
        "status",
    }


def test_a_policy_object_can_be_passed_instead_of_a_name():
    scenario = make_scenario(servers=[{"name": "web", "count": 3}], balancer={"policy": Fixed(1)})
    result = lbsim.simulate(scenario)
    assert set(result.requests["server"]) == {"web-1"}
    assert result.summary.loc[0, "policy"] == "fixed(position=1)"
    other = lbsim.simulate(make_scenario(servers=[{"name": "web", "count": 3}]), policy=Fixed(1))
    assert set(other.requests["server"]) == {"web-1"}


def test_sweep_returns_one_summary_row_per_cell_and_replication():
    scenario = make_scenario(
        replications=3,
        servers=[{"name": "web", "count": 2}],
        sweep={"balancer.policy": ["round_robin", "random"], "servers[0].count": [1, 2]},
    )
    summary = lbsim.sweep(scenario, jobs=1)
    assert len(summary) == 2 * 2 * 3
    assert list(summary.columns[:5]) == [
        "scenario",
        "policy",
        "servers[0].count",
        "replication",
        "seed",
    ]
    assert np.array_equal(summary["replication"].to_numpy(), np.tile([0, 1, 2], 4))


def test_load_scenario_accepts_a_path(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nduration: 1s\nworkload: {rate: 10/s, size: exp(10ms)}\nservers: [{name: a}]\n")
    scenario = lbsim.load_scenario(path)
    assert scenario.workload.rate == 10.0
    assert scenario.servers[0].workers == 1


def test_simulate_without_requests_gives_the_same_summary_and_no_requests():
    scenario = make_scenario(
        servers=[{"name": "web", "count": 2}], workload={"rate": 50, "size": "exp(10ms)"}
    )
    kept = lbsim.simulate(scenario, seed=2)
    dropped = lbsim.simulate(scenario, seed=2, keep_requests=False)
    pd.testing.assert_frame_equal(kept.summary, dropped.summary)
    pd.testing.assert_frame_equal(kept.servers, dropped.servers)
    assert len(kept.requests) == kept.summary.loc[0, "n_requests"]
    assert dropped.requests is None
