"""Regions, the network between them and global DNS: latencies by hand, DNS failover by arithmetic."""

import numpy as np
import pytest

import lbsim
from tests.helpers import dns_events, make_scenario

RTT = {"us-eu": "80ms", "us-asia": "150ms", "eu-asia": "200ms"}


def geo(**changes):
    """Two or three regions, deterministic arrivals of 50 ms requests, local RTT 2 ms."""
    base = {
        "duration": 10.0,
        "workload": {"arrivals": "deterministic", "rate": 10, "size": "det(50ms)", "clients": 10},
        "regions": {"us": {"clients": 0.5}, "eu": {"clients": 0.5}},
        "network": {"rtt": {"us-eu": "80ms"}, "local": "2ms"},
        "servers": [{"name": "us", "count": 2, "region": "us"}, {"name": "eu", "count": 2, "region": "eu"}],
    }
    return make_scenario(**{**base, **changes})


def test_a_request_served_in_its_own_region_pays_the_local_rtt():
    result = lbsim.simulate(geo())
    # 50 ms of service plus 1 ms each way inside the region.
    assert result.requests["latency"].to_numpy() == pytest.approx([0.052] * 100)
    assert result.summary.loc[0, "cross_region"] == 0.0


def test_a_request_sent_to_another_region_pays_that_rtt():
    result = lbsim.simulate(geo(dns={"policy": "weighted", "weights": {"us": 1, "eu": 0}}))
    requests = result.requests
    home = np.where(requests["client"] < 5, "us", "eu")
    latency = requests["latency"].to_numpy()
    # Clients 0-4 are in us (2 ms round trip), 5-9 in eu and served in us (80 ms round trip).
    assert (home == "us").sum() > 30 and (home == "eu").sum() > 30
    assert np.allclose(latency[home == "us"], 0.052) and np.allclose(latency[home == "eu"], 0.130)
    assert set(requests["server"].str[:2]) == {"us"}
    assert result.summary.loc[0, "cross_region"] == pytest.approx((home == "eu").mean())
    regions = result.regions.set_index("region")
    assert regions.loc["eu", "served_elsewhere"] == 1.0 and regions.loc["us", "served_elsewhere"] == 0.0
    assert regions.loc["eu", "latency_mean"] == pytest.approx(0.130)


def test_three_regions_split_clients_by_share_and_geo_keeps_them_home():
    result = lbsim.simulate(
        geo(
            regions={"us": {"clients": 0.5}, "eu": {"clients": 0.3}, "asia": {"clients": 0.2}},
            network={"rtt": RTT, "local": "2ms"},
            servers=[
                {"name": "us", "count": 2, "region": "us"},
                {"name": "eu", "count": 1, "region": "eu"},
                {"name": "asia", "count": 1, "region": "asia"},
            ],
        )
    )
    # Clients 0-4 are in us, 5-7 in eu, 8-9 in asia; each is served at home.
    requests = result.requests
    expected = np.array(["us"] * 5 + ["eu"] * 3 + ["as"] * 2)[requests["client"]]
    assert (requests["server"].str[:2] == expected).all()
    assert (result.regions["served_elsewhere"] == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dns_failover_moves_clients_as_their_cached_answers_expire(seed):
    # eu crashes at 21 s; the DNS checks every 5 s with fall 1, sent from us (the first
    # region), reach eu 40 ms after 25 s and bring the verdict back at 25.08 s; answers live 10 s.
    scenario = geo(
        seed=seed,
        duration=60.0,
        workload={"arrivals": "poisson", "rate": 200, "size": "exp(5ms)", "clients": 100},
        servers=[{"name": "us", "count": 4, "region": "us"}, {"name": "eu", "count": 4, "region": "eu"}],
        dns={"ttl": "10s", "health_check": {"interval": "5s", "fall": 1}},
        faults=[{"target": "region:eu", "kind": "crash", "at": "21s", "duration": "100s"}],
    )
    result = lbsim.simulate(scenario)
    assert dns_events(result) == [[pytest.approx(25.08), "region:eu", "down"]]
    requests = result.requests
    to_eu = requests[requests["server"].str.startswith("eu") & (requests["t_arrival"] > 21)]
    # Every cached answer was given before the detection, so all have expired by 25.08 + 10 s.
    assert 34 < to_eu["t_arrival"].max() <= 35.08
    # Caches expire uniformly over [21, 31) at the crash; those before 25.08 re-resolve to eu
    # and expire in [31, 35.08): eu's clients (100/s) move uniformly over [25.08, 35.08), each
    # at its next request (0.5 s later on average at 2 requests/s per client).
    # Failed: 100 x (4.08 + 5 + 0.5) = 958.
    failed = (requests["status"] != "ok").sum()
    assert failed == pytest.approx(958, rel=0.12)


@pytest.mark.parametrize(("checker", "detected"), [(None, 5.08), ("us", 5.08), ("eu", 5.002)])
def test_region_checks_cross_the_network_from_their_region(checker, detected):
    # eu crashes at 1 s; the checks at 5 s reach it after half the round trip from the
    # checkers' region (40 ms from us, 1 ms inside eu) and bring the verdict back as long.
    health_check = {"interval": "5s", "fall": 1} | ({"region": checker} if checker else {})
    scenario = geo(
        dns={"health_check": health_check},
        faults=[{"target": "region:eu", "kind": "crash", "at": "1s", "duration": "100s"}],
    )
    assert dns_events(lbsim.simulate(scenario)) == [[pytest.approx(detected), "region:eu", "down"]]


@pytest.mark.slow
def test_resolvers_with_a_ttl_floor_keep_sending_to_the_failed_region():
    scenario = geo(
        duration=80.0,
        workload={"arrivals": "poisson", "rate": 200, "size": "exp(5ms)", "clients": 100},
        servers=[{"name": "us", "count": 4, "region": "us"}, {"name": "eu", "count": 4, "region": "eu"}],
        dns={
            "ttl": "10s",
            "ttl_floor": {"share": 0.2, "ttl": "40s"},
            "health_check": {"interval": "5s", "fall": 1},
        },
        faults=[{"target": "region:eu", "kind": "crash", "at": "21s", "duration": "100s"}],
    )
    requests = lbsim.simulate(scenario).requests
    to_eu = requests[requests["server"].str.startswith("eu") & (requests["t_arrival"] > 21)]
    late = to_eu[to_eu["t_arrival"] > 35]
    # Only the floor clients (20% of them) still resolve to eu after 35 s, until 25 + 40 s.
    assert late["client"].nunique() == pytest.approx(10, abs=3)
    assert late["t_arrival"].max() <= 65.08


def test_region_settings_are_checked():
    with pytest.raises(lbsim.ConfigError, match="must give the RTT between every two regions"):
        lbsim.load_scenario(geo(network={"rtt": {}}))
    with pytest.raises(lbsim.ConfigError, match="must have client shares that sum to 1"):
        lbsim.load_scenario(geo(regions={"us": {"clients": 0.5}, "eu": {"clients": 0.6}}))
    with pytest.raises(lbsim.ConfigError, match="must come with 'regions'"):
        lbsim.load_scenario(make_scenario(dns={"ttl": "5s"}))
    with pytest.raises(lbsim.ConfigError, match=r"dns\.health_check\.region.*unknown region 'asia'"):
        lbsim.load_scenario(geo(dns={"health_check": {"region": "asia"}}))


def test_without_regions_the_local_round_trip_lies_between_clients_and_balancer():
    # One server, one request every 100 ms of 50 ms each: no queueing. network.local 20 ms is
    # half on the way in and half on the way back: 50 + 20 = 70 ms; a det(5ms) jitter on each
    # of the two crossings adds 10 ms more.
    plain = lbsim.simulate(make_scenario(duration=2.0, network={"local": "20ms"}))
    jittered = lbsim.simulate(make_scenario(duration=2.0, network={"local": "20ms", "jitter": "det(5ms)"}))
    assert plain.summary["latency_p99"].iloc[0] == pytest.approx(0.070)
    assert plain.summary["latency_mean"].iloc[0] == pytest.approx(0.070)
    assert jittered.summary["latency_mean"].iloc[0] == pytest.approx(0.080)
    # A client that gives up after 60 ms sees no answer: the crossings count toward its timeout.
    late = lbsim.simulate(make_scenario(duration=2.0, network={"local": "20ms"}, workload={
        "arrivals": "deterministic", "rate": 10, "size": "det(50ms)", "timeout": "60ms"}))  # fmt: skip
    assert late.summary["error_rate"].iloc[0] == 1.0
    # Round trips between regions still need regions.
    with pytest.raises(lbsim.ConfigError, match=r"network\.rtt.*must come with 'regions'"):
        lbsim.load_scenario(make_scenario(network={"rtt": {"us-eu": "80ms"}}))


def test_jitter_without_a_crossing_to_add_to_is_refused():
    with pytest.raises(lbsim.ConfigError, match=r"network\.jitter must come with a crossing to add to"):
        lbsim.load_scenario(make_scenario(network={"jitter": "det(5ms)"}))
