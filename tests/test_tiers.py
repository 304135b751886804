"""Hierarchical balancing: each tier over the instances of the tier below, latencies by hand."""

import pytest

import lbsim
from tests.helpers import make_scenario


def tiered(**changes):
    """A global tier (1 ms, 1 instance) over a regional tier (2 ms, 2 instances) over the
    local balancer (4 ms, 2 instances) over two servers; 10 requests/s of 50 ms."""
    base = {
        "tiers": [
            {"name": "global", "cost": "1ms", "cores": 1},
            {"name": "regional", "cost": "2ms", "cores": 1, "instances": 2},
        ],
        "servers": [{"name": "web", "count": 2}],
        "balancer": {"cost": "4ms", "cores": 1, "instances": 2},
    }
    return make_scenario(**{**base, **changes})


def test_each_tier_adds_its_processing_and_the_servers_are_recorded():
    result = lbsim.simulate(tiered())
    # 1 + 2 + 4 ms of processing on the way, then 50 ms of service; nothing queues at 10/s.
    assert result.requests["latency"].to_numpy() == pytest.approx([0.057] * 10)
    assert result.requests["server"].tolist() == ["web-0", "web-1"] * 5


def test_each_tier_reports_its_utilization():
    tiers = lbsim.simulate(tiered()).tiers.set_index("tier")
    # 10 requests in 1 s: global 1 instance x 10 x 1 ms; regional 2 x 5 x 2 ms; local 10 x 4 ms
    # over 2 instances. Each regional instance's round robin starts at local instance 0, so
    # local-0 gets 3 + 3 requests (24 ms busy) and local-1 gets 2 + 2 (16 ms).
    assert tiers["instances"].to_dict() == {"balancer": 2, "regional": 2, "global": 1}
    expected = {"balancer": 0.02, "regional": 0.01, "global": 0.01}
    assert tiers["utilization_mean"].to_dict() == pytest.approx(expected)
    assert tiers.loc["balancer", "utilization_max"] == pytest.approx(0.024)


def test_a_tier_with_health_checks_stops_sending_to_a_crashed_instance_below():
    checks = {"interval": "1s", "timeout": "500ms", "fall": 1, "rise": 1}
    scenario = tiered(
        duration=20.0,
        workload={"arrivals": "deterministic", "rate": 100, "size": "det(10ms)"},
        tiers=[{"name": "front", "cost": 0, "health_check": checks}],
        balancer={"cost": 0, "instances": 2},
        faults=[{"target": "balancer-1", "kind": "crash", "at": "5s", "duration": "100s"}],
    )
    result = lbsim.simulate(scenario)
    failed = result.requests[result.requests["status"] != "ok"]
    # The request in flight in the crashed instance (sent at 4.99 s) is lost; then round robin
    # sends every other request there until the next check (at most 1 s later) takes it out.
    assert 1 < len(failed) <= 52
    assert failed["t_arrival"].min() == pytest.approx(4.99) and failed["t_arrival"].max() < 6.0


def test_a_tier_retries_on_another_instance_below():
    scenario = tiered(
        duration=20.0,
        workload={"arrivals": "deterministic", "rate": 100, "size": "det(10ms)"},
        tiers=[{"name": "front", "cost": 0, "retries": {"max": 1, "on": ["connect_failure"], "backoff": 0}}],
        balancer={"cost": 0, "instances": 2},
        faults=[{"target": "balancer-1", "kind": "crash", "at": "5s", "duration": "100s"}],
    )
    result = lbsim.simulate(scenario)
    failed = result.requests[result.requests["status"] != "ok"]
    # Only the request in flight in the instance when it crashed is lost: refused
    # connections afterwards are retried on the other instance.
    assert failed["t_arrival"].tolist() == pytest.approx([4.99])
    assert result.summary.loc[0, "n_retries"] > 0


def test_upper_tiers_take_plain_balancer_settings_only():
    with pytest.raises(lbsim.ConfigError, match="is not supported in an upper tier"):
        lbsim.load_scenario(tiered(tiers=[{"name": "front", "zones": ["a"]}]))
    with pytest.raises(lbsim.ConfigError, match="unique names"):
        lbsim.load_scenario(tiered(tiers=[{"name": "front"}, {"name": "front"}]))
