"""Hierarchical balancing: each tier over the instances of the tier below, latencies by hand."""

import numpy as np
import pytest

import lbsim
from tests.helpers import dns_events, make_scenario


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


@pytest.mark.parametrize(
    ("system", "retried_on"),
    [
        # ngx_http_upstream_next: a refused connection is NGX_HTTP_BAD_GATEWAY (502), a 5xx.
        ("nginx", "error"),
        # router.cc onUpstreamReset -> chargeUpstreamAbort(Http::Code::ServiceUnavailable): 503.
        ("envoy", "rejected"),
        # configuration.txt 8.5: a connection that cannot be established (SC) is a 503.
        ("haproxy", "rejected"),
    ],
)
def test_a_balancer_below_answers_a_refused_connection_with_its_systems_status(system, retried_on):
    # The only server is down all run: the balancer below cannot connect and (retrying
    # nothing itself) answers the tier above with its system's status for that; the tier
    # above retries (once, on the other instance below) exactly when its retries.on covers
    # that status, never otherwise.
    retried = {}
    for on in ("error", "rejected"):
        scenario = tiered(
            tiers=[{"name": "front", "cost": 0, "retries": {"max": 1, "on": [on], "backoff": 0}}],
            balancer={"cost": 0, "instances": 2, "emulate": system, "retries": {"max": 0}},
            faults=[{"target": "web-0", "kind": "crash", "at": 0, "duration": "100s"}],
            servers=[{"name": "web", "count": 1}],
        )
        summary = lbsim.simulate(scenario).summary
        assert summary.loc[0, "n_error"] + summary.loc[0, "n_rejected"] == 10
        retried[on] = summary.loc[0, "n_retries"]
    assert retried == {"error": 0, "rejected": 0, retried_on: 10}


def test_a_balancer_below_passes_a_servers_429_up():
    # A server that sheds load with 429: the balancer below passes the answer as it is; the
    # tier above retries it on http_429 (NGINX's proxy_next_upstream http_429), and the
    # client counts it as rejected. One worker, no queue, 50 ms requests every 20 ms from
    # two paths: requests at 0, 40, 80 ... ms find the server free, the rest a 429.
    scenario = tiered(
        workload={"arrivals": "deterministic", "rate": 50, "size": "det(30ms)"},
        tiers=[{"name": "front", "cost": 0, "retries": {"max": 1, "on": ["http_429"], "backoff": 0}}],
        balancer={"cost": 0, "instances": 2},
        servers=[{"name": "web", "count": 1, "queue": 0, "overload_status": 429}],
    )
    summary = lbsim.simulate(scenario).summary.loc[0]
    # Arrivals every 20 ms, 30 ms of service: 0 served (to 30), 20 refused and retried at
    # once (refused again), 40 served (to 70), 60 refused ... so 25 served, 25 rejected, each
    # rejected one retried once.
    assert (summary["n_ok"], summary["n_rejected"], summary["n_retries"]) == (25, 25, 25)


def test_a_hedged_request_below_a_tier_is_answered_up_once():
    # The local tier hedges after 20 ms; each 50 ms request has its hedge out too, and the
    # copy that answers second is dropped below: every request ends once, at 50 ms.
    scenario = tiered(
        tiers=[{"name": "front", "cost": 0}],
        balancer={"cost": 0, "retries": {"hedge": "20ms"}},
        servers=[{"name": "web", "count": 2, "workers": 2}],
    )
    result = lbsim.simulate(scenario)
    assert result.requests["latency"].to_numpy() == pytest.approx([0.05] * 10)
    assert result.summary.loc[0, "n_hedges"] == 10


def test_a_client_timeout_above_tiers_is_charged_to_no_server():
    # Two local instances over one server: the top tier's backends are instances, not
    # servers, so a request the client gives up on names no server.
    scenario = tiered(
        workload={"arrivals": "deterministic", "rate": 10, "size": "det(50ms)", "timeout": "10ms"},
        tiers=[{"name": "front", "cost": 0}],
        balancer={"cost": 0, "instances": 2},
        servers=[{"name": "web", "count": 1}],
    )
    result = lbsim.simulate(scenario)
    assert result.requests["status"].tolist() == ["timeout"] * 10
    assert result.requests["server"].tolist() == [""] * 10
    assert result.servers["n_requests"].tolist() == [0]


def test_upper_tiers_take_plain_balancer_settings_only():
    with pytest.raises(lbsim.ConfigError, match="is not supported in an upper tier"):
        lbsim.load_scenario(tiered(tiers=[{"name": "front", "zones": ["a"]}]))
    with pytest.raises(lbsim.ConfigError, match="unique names"):
        lbsim.load_scenario(tiered(tiers=[{"name": "front"}, {"name": "front"}]))


def three_tiers(**changes):
    """front (1 instance) over mid (2) over the balancer (2) over two servers, free of cost;
    100 requests/s of 10 ms, so round robin alternates every tier's choices."""
    base = {
        "duration": 10.0,
        "workload": {"arrivals": "deterministic", "rate": 100, "size": "det(10ms)"},
        "tiers": [{"name": "front", "cost": 0}, {"name": "mid", "cost": 0, "instances": 2}],
        "servers": [{"name": "web", "count": 2}],
        "balancer": {"cost": 0, "instances": 2},
    }
    return make_scenario(**{**base, **changes})


def test_an_instance_of_an_upper_tier_fails_and_restarts():
    crash = {"target": "mid-1", "kind": "crash", "at": "5.005s", "duration": "2s"}
    result = lbsim.simulate(three_tiers(faults=[crash]))
    requests = result.requests
    failed = requests[requests["status"] != "ok"]
    # front alternates mid-0 / mid-1: request k (sent at k x 10 ms) goes to mid-1 when k is odd.
    # The odd requests sent while mid-1 is down, k = 501, 503, ..., 699, are refused: 100.
    assert (failed["status"] == "error").all()
    assert np.round(failed["t_arrival"].to_numpy() * 100).astype(int).tolist() == list(range(501, 700, 2))
    assert requests.loc[requests["status"] == "ok", "latency"].to_numpy() == pytest.approx([0.01] * 900)
    assert result.events.query("subject == 'mid-1'")[["t", "event"]].values.tolist() == [
        [5.005, "crash starts"],
        [pytest.approx(7.005), "restarted"],
    ]
    row = result.faults.iloc[0]
    assert (row["target"], row["n_failed"]) == ("mid-1", 100)


def test_a_fault_on_a_tier_must_crash_an_instance_it_has():
    slow = {"target": "mid", "kind": "slow", "factor": 2, "at": 1, "duration": 1}
    with pytest.raises(lbsim.ConfigError, match=r"faults\[0\].kind.*must be 'crash'"):
        lbsim.load_scenario(three_tiers(faults=[slow]))
    crash = {"target": "mid-2", "kind": "crash", "at": 1, "duration": 1}
    with pytest.raises(lbsim.ConfigError, match="unknown fault target 'mid-2'"):
        lbsim.load_scenario(three_tiers(faults=[crash]))
    with pytest.raises(lbsim.ConfigError, match="unique names other than"):
        lbsim.load_scenario(three_tiers(tiers=[{"name": "web"}]))


def regional_tiers(**changes):
    """``tiered()`` in two regions 80 ms apart (2 ms inside one): per region one global
    instance over two regional ones over two local ones over two servers; 10 clients."""
    return tiered(
        workload={"arrivals": "deterministic", "rate": 10, "size": "det(50ms)", "clients": 10},
        regions={"us": {"clients": 0.5}, "eu": {"clients": 0.5}},
        network={"rtt": {"us-eu": "80ms"}, "local": "2ms"},
        servers=[{"name": "us", "count": 2, "region": "us"}, {"name": "eu", "count": 2, "region": "eu"}],
        **changes,
    )


def test_with_regions_every_region_has_its_own_tiers():
    result = lbsim.simulate(regional_tiers())
    requests = result.requests
    # 2 ms of local round trip, 1 + 2 + 4 ms of processing, 50 ms of service.
    assert requests["latency"].to_numpy() == pytest.approx([0.059] * 10)
    home = np.where(requests["client"] < 5, "us", "eu")
    assert (requests["server"].str[:2] == home).all()
    tiers = result.tiers.set_index("tier")
    assert tiers["instances"].to_dict() == {"balancer": 4, "regional": 4, "global": 2}
    # 10 requests in 1 s, whatever the split: 10 x 1 ms over 2 instances, 10 x 2 ms over 4,
    # 10 x 4 ms over 4.
    expected = {"global": 0.005, "regional": 0.005, "balancer": 0.01}
    assert tiers["utilization_mean"].to_dict() == pytest.approx(expected)


def test_dns_moves_a_region_away_when_its_entry_tier_is_down():
    # eu's global instance (global-1) crashes at 11 s; the DNS checks every 5 s with fall 1,
    # sent from us, see it at 15.04 s and say so at 15.08 s; answers live 5 s, so eu's
    # clients have all moved to us by 20.08 s.
    scenario = regional_tiers(
        duration=30.0,
        dns={"ttl": "5s", "health_check": {"interval": "5s", "fall": 1}},
        faults=[{"target": "global-1", "kind": "crash", "at": "11s", "duration": "100s"}],
    )
    result = lbsim.simulate(scenario)
    assert dns_events(result) == [[pytest.approx(15.08), "region:eu", "down"]]
    requests = result.requests
    eu = requests[requests["client"] >= 5]
    failed = eu[eu["status"] != "ok"]
    assert (failed["status"] == "dropped").all() and len(failed) > 0
    assert failed["t_arrival"].min() >= 11.0 and failed["t_arrival"].max() < 20.08
    late = eu[eu["t_arrival"] >= 20.08]
    # Served in us: 40 ms each way plus us's 57 ms.
    assert (late["status"] == "ok").all() and late["latency"].to_numpy() == pytest.approx(0.137)
    assert (requests.loc[requests["client"] < 5, "status"] == "ok").all()


def test_a_refusal_two_tiers_down_is_charged_to_no_server():
    crash = {"target": "balancer-1", "kind": "crash", "at": "5.005s", "duration": "2s"}
    result = lbsim.simulate(three_tiers(faults=[crash]))
    requests = result.requests
    failed = requests[requests["status"] != "ok"]
    # front sends request k (sent at k x 10 ms) to mid-(k mod 2), and each mid instance
    # alternates balancer-0 / balancer-1 over its own requests, so balancer-1 gets k = 2 and
    # 3 mod 4: the 100 of them sent while it is down are refused, and no server saw them.
    expected = [k for k in range(501, 700) if k % 4 in (2, 3)]
    assert np.round(failed["t_arrival"].to_numpy() * 100).astype(int).tolist() == expected
    assert (failed["server"] == "").all()
    assert result.servers["n_error"].sum() == 0
    assert result.faults.loc[0, "n_failed"] == 100


def test_an_answer_that_reaches_a_crashed_instance_is_charged_to_no_server():
    crash = {"target": "mid-1", "kind": "crash", "at": "4.995s", "duration": "2s"}
    result = lbsim.simulate(three_tiers(faults=[crash]))
    requests = result.requests
    failed = requests[requests["status"] != "ok"]
    # Request 499 (sent at 4.99 s through mid-1) is served by web-1 until 5.00 s, but its
    # answer reaches mid-1 after the crash: lost there, an error to the client, and not web-1's
    # error (the server answered ok). Then the odd requests 501..699 are refused, as above.
    assert np.round(failed["t_arrival"].to_numpy() * 100).astype(int).tolist() == [499, *range(501, 700, 2)]
    assert (failed["server"] == "").all()
    assert result.servers["n_error"].sum() == 0
    assert result.faults.loc[0, "n_failed"] == 101
