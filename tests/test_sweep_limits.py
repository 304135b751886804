"""How big a sweep may be, and how its runs are handed to worker processes."""

import math
from concurrent.futures import ProcessPoolExecutor

import pytest

import lbsim
from lbsim.errors import ConfigError
from lbsim.limits import MAX_CELLS, MAX_RUNS
from tests.helpers import make_scenario


def test_a_sweep_larger_than_the_limits_is_refused_before_anything_runs():
    axis = list(range(1, 102))  # 101 values: 101 x 101 = 10,201 cells
    with pytest.raises(
        ConfigError, match=rf"sweep must make at most {MAX_CELLS:,} cells; got 10,201 \(101 x 101"
    ):
        lbsim.load_scenario(make_scenario(sweep={"workload.rate": axis, "servers[0].count": axis}))
    scenario = make_scenario(sweep={"workload.rate": list(range(1, 101))})
    with pytest.raises(
        ConfigError, match=rf"replications must be at most {MAX_RUNS // 100:,} with 100 sweep cell"
    ):
        lbsim.run_sweep(scenario, replications=MAX_RUNS // 100 + 1)


def test_the_pool_is_handed_at_most_two_runs_per_worker_at_a_time(monkeypatch):
    outstanding: list[int] = []
    futures = []
    submit = ProcessPoolExecutor.submit

    def counted(self, *args, **kwargs):
        futures.append(submit(self, *args, **kwargs))
        outstanding.append(sum(not f.done() for f in futures))
        return futures[-1]

    monkeypatch.setattr(ProcessPoolExecutor, "submit", counted)
    scenario = make_scenario(duration=2.0, warmup=0.2, replications=5, sweep={"workload.rate": [20, 40]})
    pooled = lbsim.run_sweep(scenario, jobs=2)
    assert len(futures) == 10 and max(outstanding) <= 4
    assert pooled.summary.equals(lbsim.run_sweep(scenario, jobs=1).summary)


def test_a_size_distribution_too_variable_for_the_runs_length_is_warned_about():
    from lbsim.runner import sweep_plan

    heavy = make_scenario(duration=60.0, workload={"rate": 100, "size": "lognormal(mean=5ms, cv=30)"})
    plan = sweep_plan(lbsim.load_scenario(heavy), replications=2)
    assert (plan.n_cells, plan.requests) == (1, pytest.approx(2 * 100 * 60))
    # 6,000 requests of cv 30: standard error of the mean size 30 / sqrt(6000) = 38.7%.
    assert len(plan.warnings) == 1 and "standard error of 39% of its mean" in plan.warnings[0]
    # cv 1 over 6,000 requests: 1.3%, under the 5% that warns.
    plain = make_scenario(duration=60.0, workload={"rate": 100, "size": "exp(5ms)"})
    assert sweep_plan(lbsim.load_scenario(plain), replications=2).warnings == []


def test_the_plan_gives_each_cells_offered_load_and_warns_at_capacity():
    from lbsim.runner import sweep_plan

    # Six servers at speed 0.5 with exp(10ms) sizes serve 6 x 0.5 / 10 ms = 300/s.
    scenario = make_scenario(
        duration=30.0,
        workload={"rate": 700, "size": "exp(10ms)"},
        servers=[{"name": "web", "count": 6, "speed": 0.5}],
        balancer={"cost": "100us", "instances": 2, "cores": 2},
        sweep={"workload.rate": [150, 700]},
    )
    plan = sweep_plan(lbsim.load_scenario(scenario), replications=1)
    assert plan.server_load == pytest.approx([150 / 300, 700 / 300])
    # 100 us a request on 2 instances of 2 cores.
    assert plan.balancer_load == pytest.approx([150 * 100e-6 / 4, 700 * 100e-6 / 4])
    [warning] = [w for w in plan.warnings if "offered load" in w]
    assert warning.startswith("cell 1: offered load 2.33 of the servers' capacity: queues grow")


def test_closed_loop_users_get_no_offered_load_and_no_overload_warning():
    from lbsim.runner import sweep_plan

    # 50 users who think 1 ms on a fleet that serves 300/s: they wait for their answers, so
    # the fleet is never offered more than it serves (50 / (1 ms + 10 ms) is no arrival rate).
    scenario = make_scenario(
        duration=10.0,
        workload={
            "arrivals": {"kind": "closed", "users": 50, "think": "exp(1ms)"},
            "rate": None,
            "size": "exp(10ms)",
        },
        servers=[{"name": "web", "count": 6, "speed": 0.5}],
    )
    plan = sweep_plan(lbsim.load_scenario(scenario), replications=1)
    assert math.isnan(plan.server_load[0]) and math.isnan(plan.balancer_load[0])
    assert not any("offered load" in warning for warning in plan.warnings)


def test_a_fault_at_or_after_the_end_of_a_shortened_run_is_warned_about():
    from lbsim.runner import sweep_plan

    crash = {"target": "web-0", "kind": "crash", "at": "60s", "duration": "30s"}
    scenario = make_scenario(duration=40.0, faults=[crash], sweep={"duration": ["40s", "90s"]})
    plan = sweep_plan(lbsim.load_scenario(scenario), replications=1)
    assert plan.warnings == [
        "cell 0: faults[0] starts at 60s, at or after the end of the run (40s): it never happens"
    ]
