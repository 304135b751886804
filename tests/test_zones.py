"""Zone-aware routing and locality-weighted balancing with Envoy's rules, by hand."""

import numpy as np
import pytest

import lbsim
from lbsim.engine.locality import locality_weights, zone_aware_split
from tests.helpers import make_scenario

THIRDS = {"a": 1, "b": 1, "c": 1}  # balancer instances per zone


def test_balanced_zones_keep_everything_local():
    assert zone_aware_split("a", THIRDS, {"a": 2, "b": 2, "c": 2}, 6) == {"a": 1.0}


def test_a_short_zone_keeps_upstream_over_local_and_spills_by_residual_capacity():
    # upstream% = 2000 / 4000 / 4000 basis points against local% 3333 each: keep
    # 2000 x 10000 // 3333 = 6000 in a; the residuals of b and c are both 667, so each takes
    # half of the other 0.4.
    split = zone_aware_split("a", THIRDS, {"a": 2, "b": 4, "c": 4}, 6)
    assert split == pytest.approx({"a": 0.6, "b": 0.2, "c": 0.2})
    assert zone_aware_split("b", THIRDS, {"a": 2, "b": 4, "c": 4}, 6) == {"b": 1.0}


def test_zone_aware_routing_is_off_below_the_minimum_cluster_size_or_with_one_local_zone():
    assert zone_aware_split("a", THIRDS, {"a": 1, "b": 2, "c": 2}, 6) is None
    # earlyExitNonLocalityRouting: the local cluster (the balancer instances) needs 2 zones.
    assert zone_aware_split("a", {"a": 3}, {"a": 2, "b": 2, "c": 2}, 6) is None


def test_a_local_zone_without_healthy_backends_spills_by_residual_capacity():
    # Envoy (regenerateLocalityRoutingStructures): no healthy host in a gives upstream% 0, so
    # nothing stays local and the traffic goes by residual capacity. A 2/2/4 fleet with a
    # down: upstream% b 3333, c 6666 against local% 3333 each: b has no residual, c 3333, so
    # all of a's traffic goes to c (uniform spill sent a third of it to b).
    assert zone_aware_split("a", THIRDS, {"a": 0, "b": 2, "c": 4}, 6) == {"c": 1.0}
    assert zone_aware_split("a", THIRDS, {"a": 0, "b": 4, "c": 4}, 6) == {"b": 0.5, "c": 0.5}


def test_locality_weights_scale_health_by_the_overprovisioning_factor():
    # Half of a is healthy: 1.4 x 0.5 = 0.7 of its weight; b is whole; c has none healthy.
    weights = locality_weights({}, {"a": 2, "b": 4, "c": 0}, {"a": 4, "b": 4, "c": 2}, 1.4)
    assert weights == pytest.approx({"a": 0.7, "b": 1.0, "c": 0.0})
    # At 3 of 4 healthy, 1.4 x 0.75 > 1: a locality keeps its full weight until 1/1.4 = 71% is left.
    assert locality_weights({"a": 2}, {"a": 3}, {"a": 4}, 1.4) == {"a": 2.0}


def zoned(servers, **balancer):
    return make_scenario(
        duration=40.0,
        warmup=5.0,
        workload={"arrivals": "poisson", "rate": 300, "size": "exp(5ms)", "clients": 300},
        servers=[{"name": z, "count": n, "zone": z} for z, n in servers.items()],
        balancer={"policy": "round_robin", "instances": 3, "zones": ["a", "b", "c"], **balancer},
    )


def served_zone(result):
    requests = result.requests[result.requests["t_arrival"] >= 5]
    return requests, requests["server"].str[0]


def test_in_the_engine_balanced_zones_send_nothing_across():
    result = lbsim.simulate(zoned({"a": 2, "b": 2, "c": 2}, locality={"mode": "zone_aware"}))
    assert result.summary.loc[0, "cross_zone"] == 0.0
    requests, zone = served_zone(result)
    assert (zone == np.array(["a", "b", "c"])[requests["client"] % 3]).all()


def test_in_the_engine_a_short_zone_spills_as_envoys_formula_says():
    result = lbsim.simulate(zoned({"a": 2, "b": 4, "c": 4}, locality={"mode": "zone_aware"}))
    requests, zone = served_zone(result)
    from_a = (requests["client"] % 3 == 0).to_numpy()
    assert (zone[from_a] == "a").mean() == pytest.approx(0.6, abs=0.03)
    assert (zone[~from_a] == np.array(["a", "b", "c"])[requests["client"][~from_a] % 3]).all()
    # Only instance a's 40% leaves its zone: 0.4 / 3 of all requests.
    assert result.summary.loc[0, "cross_zone"] == pytest.approx(0.4 / 3, abs=0.015)


def test_in_the_engine_a_dead_zone_spills_to_residual_capacity_only():
    # 2/2/4 with zone a crashed from 10 s: instance a's requests go to c alone (b has no
    # residual capacity), so zone b serves only its own instance's third, not 4/9.
    faults = [{"target": "zone:a", "kind": "crash", "at": "10s", "duration": "40s"}]
    checks = {"interval": "1s", "timeout": "100ms", "rise": 1, "fall": 1}
    scenario = zoned({"a": 2, "b": 2, "c": 4}, locality={"mode": "zone_aware"}, health_check=checks)
    requests = lbsim.simulate(scenario | {"faults": faults}).requests
    late = requests[(requests["t_arrival"] > 15) & (requests["status"] == "ok")]
    from_a = late["client"] % 3 == 0
    assert (late.loc[from_a, "server"].str[0] == "c").all()
    assert (late["server"].str[0] == "b").mean() == pytest.approx(1 / 3, abs=0.02)


def test_in_the_engine_below_six_hosts_zones_are_ignored():
    result = lbsim.simulate(zoned({"a": 1, "b": 2, "c": 2}, locality={"mode": "zone_aware"}))
    # Round robin over all 5: a's instance crosses 4/5 of the time, b's and c's 3/5.
    assert result.summary.loc[0, "cross_zone"] == pytest.approx((0.8 + 0.6 + 0.6) / 3, abs=0.02)


def test_in_the_engine_locality_weights_follow_health():
    scenario = zoned(
        {"a": 4, "b": 4},
        instances=1,
        zones=[],
        locality={"mode": "weighted"},
        health_check={"interval": "500ms", "timeout": "200ms", "fall": 1, "rise": 1},
    )
    crash = {"kind": "crash", "at": 0.0, "duration": "100s"}
    scenario["faults"] = [{"target": f"a-{k}", **crash} for k in (0, 1)]
    _, zone = served_zone(lbsim.simulate(scenario))
    # a: 1.4 x 2/4 = 0.7 against b's 1: smooth weighted round robin gives a 7/17 of requests.
    assert (zone == "a").mean() == pytest.approx(7 / 17, abs=0.005)


def two_zones(network, **balancer):
    """One instance in zone a over a server in zone a and one in zone b, round robin,
    10 requests/s of 50 ms."""
    return make_scenario(
        network=network,
        servers=[{"name": "a", "zone": "a"}, {"name": "b", "zone": "b"}],
        balancer={"zones": ["a"], **balancer},
    )


def test_a_request_to_another_zone_pays_the_cross_zone_round_trip():
    result = lbsim.simulate(two_zones({"cross_zone": "2ms"}))
    # Round robin alternates a and b: 50 ms, then 50 ms plus 1 ms each way to zone b.
    assert result.requests["server"].tolist() == ["a-0", "b-0"] * 5
    assert result.requests["latency"].to_numpy() == pytest.approx([0.050, 0.052] * 5)
    assert result.summary.loc[0, "cross_zone"] == 0.5
    # Every one-way crossing adds a draw of the jitter: here 1 ms each way.
    jittered = lbsim.simulate(two_zones({"cross_zone": "2ms", "jitter": "det(1ms)"}))
    assert jittered.requests["latency"].to_numpy() == pytest.approx([0.050, 0.054] * 5)


def test_probes_to_another_zone_cross_it_too():
    # Probes of 1 ms: 1 ms to zone a's server, 21 ms to zone b's across a 20 ms round trip.
    checks = {"interval": "100ms", "timeout": "15ms", "fall": 1, "rise": 1, "probe_size": "1ms"}
    result = lbsim.simulate(two_zones({"cross_zone": "20ms"}, health_check=checks))
    downs = result.events.query("event == 'down'")
    assert downs["subject"].tolist() == ["b-0"]
    # Once b is down every request goes to a (no crossing): 50 ms each.
    late = result.requests[result.requests["t_arrival"] > 0.2]
    assert (late["server"] == "a-0").all()
    patient = dict(checks, timeout="30ms")
    assert lbsim.simulate(two_zones({"cross_zone": "20ms"}, health_check=patient)).events.empty


def test_network_without_regions_gives_zone_hops_only():
    with pytest.raises(lbsim.ConfigError, match=r"network\.rtt.*must come with 'regions'"):
        lbsim.load_scenario(two_zones({"rtt": {"us-eu": "80ms"}}))
