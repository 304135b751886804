"""The balancer tier: instances, processing cost, TLS, layer 4 connections, routes, stickiness."""

import numpy as np
import pytest

import lbsim
from tests.helpers import make_scenario


def run(**changes):
    return lbsim.simulate(make_scenario(**changes))


def test_processing_cost_adds_to_latency_and_shows_as_balancer_utilization():
    # 10 requests/s, 50 ms of service, 2 ms of balancer work on one core: latency 52 ms and
    # the core is busy 10 x 2 ms = 2% of the time.
    result = run(balancer={"cost": "2ms", "cores": 1})
    assert result.requests["latency"].to_numpy() == pytest.approx([0.052] * 10)
    assert result.summary.loc[0, "balancer_utilization"] == pytest.approx(0.02)


def test_balancer_cores_queue_when_saturated(trace):
    # Three requests at once, 10 ms of balancer work each on one core: they reach the server
    # at 10, 20 and 30 ms; the server (det 1 s size is replaced by the trace's 1 ms) adds 1 ms.
    workload = trace([(0.0, 0.001)] * 3)
    result = run(
        workload=workload, balancer={"cost": "10ms", "cores": 1}, servers=[{"name": "web", "count": 3}]
    )
    assert sorted(result.requests["latency"]) == pytest.approx([0.011, 0.021, 0.031])


def test_layer_defaults_make_layer_4_cheaper_than_layer_7():
    scenario = lbsim.load_scenario(make_scenario(balancer={"cost": None}))
    assert scenario.balancer.cost_per_request == pytest.approx(100e-6)
    layer4 = lbsim.load_scenario(make_scenario(balancer={"cost": None, "layer": 4}))
    assert layer4.balancer.cost_per_request == pytest.approx(10e-6)


def test_tls_handshake_is_paid_once_per_connection():
    # One client, connections of 5 requests: requests 0 and 5 pay the 3 ms handshake.
    workload = {
        "arrivals": "deterministic",
        "rate": 10,
        "size": "det(50ms)",
        "clients": 1,
        "connection": {"requests": 5},
    }
    result = run(workload=workload, balancer={"cost": 0, "tls": {"handshake": "3ms", "per_request": "1ms"}})
    latency = result.requests.sort_values("t_arrival")["latency"].to_numpy()
    assert latency == pytest.approx([0.054, *[0.051] * 4, 0.054, *[0.051] * 4])


def test_each_instance_balances_its_own_clients_with_its_own_counts():
    # Two instances, 2 clients: client 0 -> instance 0, client 1 -> instance 1. Both round
    # robins start at the first server, so server 0 gets each instance's first request.
    workload = {"arrivals": "deterministic", "rate": 10, "size": "det(10ms)", "clients": 2}
    result = run(workload=workload, servers=[{"name": "web", "count": 2}], balancer={"instances": 2})
    requests = result.requests.sort_values("t_arrival")
    # Clients are drawn at random; each instance alternates its own servers.
    for client in (0, 1):
        servers = requests[requests["client"] == client]["server"].tolist()
        assert servers[:4] == ["web-0", "web-1", "web-0", "web-1"][: len(servers[:4])]


def test_layer_4_pins_a_clients_connection_to_one_backend():
    workload = {"arrivals": "poisson", "rate": 200, "size": "exp(5ms)", "clients": 20}
    result = run(
        duration=5.0,
        workload=workload,
        servers=[{"name": "web", "count": 4}],
        balancer={"layer": 4, "policy": "random"},
    )
    per_client = result.requests.groupby("client")["server"].nunique()
    assert (per_client == 1).all()


def test_layer_4_reconnects_after_the_connections_requests():
    workload = {
        "arrivals": "deterministic",
        "rate": 10,
        "size": "det(10ms)",
        "clients": 1,
        "connection": {"requests": 3},
    }
    result = run(workload=workload, servers=[{"name": "web", "count": 2}], balancer={"layer": 4})
    servers = result.requests.sort_values("t_arrival")["server"].tolist()
    assert servers == ["web-0"] * 3 + ["web-1"] * 3 + ["web-0"] * 3 + ["web-1"]


def test_a_late_backend_gets_nothing_at_layer_4_until_connections_age_out():
    servers = [{"name": "old", "count": 2}, {"name": "new", "count": 1, "t_join": 5.0}]
    workload = {"arrivals": "poisson", "rate": 300, "size": "exp(2ms)", "clients": 30}
    pinned = run(
        duration=20.0,
        workload=workload,
        servers=servers,
        balancer={"layer": 4, "policy": "least_connections"},
    )
    assert (pinned.requests["server"] == "new-0").sum() == 0
    aged = [dict(s, max_connection_age="2s") for s in servers]
    rebalanced = run(
        duration=20.0, workload=workload, servers=aged, balancer={"layer": 4, "policy": "least_connections"}
    )
    late = rebalanced.requests[rebalanced.requests["t_arrival"] > 10]
    assert (late["server"] == "new-0").mean() == pytest.approx(1 / 3, abs=0.1)
    # At layer 7 the new backend takes its share as soon as it joins.
    layer7 = run(duration=20.0, workload=workload, servers=servers, balancer={"policy": "round_robin"})
    late = layer7.requests[layer7.requests["t_arrival"] > 5.1]
    assert (late["server"] == "new-0").mean() == pytest.approx(1 / 3, abs=0.01)


def test_routes_send_paths_and_headers_to_their_pools():
    workload = {
        "arrivals": "poisson",
        "rate": 400,
        "size": "exp(1ms)",
        "clients": 1000,
        "paths": {"/api/users": 0.3, "/static/app.js": 0.5, "/": 0.2},
        "headers": {"X-User-Type": {"premium": 0.05}},
    }
    balancer = {
        "pools": {
            "api": {"servers": ["api"]},
            "static": {"servers": ["static"]},
            "premium": {"servers": ["vip"]},
            "web": {"servers": ["web"]},
        },
        "routes": [
            {"header": {"X-User-Type": "premium"}, "pool": "premium"},
            {"path_prefix": "/api", "pool": "api"},
            {"path_prefix": "/static", "pool": "static"},
            {"pool": "web"},
        ],
    }
    servers = [{"name": n, "count": 2} for n in ("api", "static", "vip", "web")]
    result = run(duration=20.0, workload=workload, servers=servers, balancer=balancer)
    r = result.requests
    group = r["server"].str.split("-").str[0]
    premium_clients = {
        c
        for c in range(1000)
        if lbsim.workload.RequestAttributes(headers=(("X-User-Type", (("premium", 0.05),)),)).headers_of(c)
    }
    is_premium = r["client"].isin(premium_clients)
    assert (group[is_premium] == "vip").all()
    rest = ~is_premium
    assert (group[rest] == "static").mean() == pytest.approx(0.5, abs=0.02)
    assert (group[rest] == "api").mean() == pytest.approx(0.3, abs=0.02)
    assert is_premium.mean() == pytest.approx(0.05, abs=0.015)


def test_canary_split_keeps_each_session_on_one_version():
    workload = {
        "arrivals": "poisson",
        "rate": 500,
        "size": "exp(1ms)",
        "clients": {"count": 400, "sessions": 5},
    }
    balancer = {
        "pools": {"stable": {"servers": ["stable"]}, "canary": {"servers": ["canary"]}},
        "routes": [{"split": {"stable": 90, "canary": 10}}],
    }
    servers = [{"name": "stable", "count": 3}, {"name": "canary", "count": 1}]
    result = run(duration=20.0, workload=workload, servers=servers, balancer=balancer)
    r = result.requests
    canary = r["server"].str.startswith("canary")
    assert canary.mean() == pytest.approx(0.10, abs=0.02)


def test_sticky_sessions_stay_on_their_first_backend_while_it_is_eligible():
    workload = {
        "arrivals": "poisson",
        "rate": 300,
        "size": "exp(2ms)",
        "clients": {"count": 50, "sessions": 4},
    }
    balancer = {"policy": "round_robin", "sticky": {"by": "client"}}
    result = run(duration=5.0, workload=workload, servers=[{"name": "web", "count": 5}], balancer=balancer)
    assert (result.requests.groupby("client")["server"].nunique() == 1).all()


def test_sticky_sessions_expire_after_their_ttl():
    # One client, a request every 100 ms, a 50 ms TTL: every request is placed afresh.
    workload = {"arrivals": "deterministic", "rate": 10, "size": "det(1ms)", "clients": 1}
    balancer = {"policy": "round_robin", "sticky": {"by": "client", "ttl": "50ms"}}
    result = run(workload=workload, servers=[{"name": "web", "count": 2}], balancer=balancer)
    assert result.requests.sort_values("t_arrival")["server"].tolist()[:4] == [
        "web-0",
        "web-1",
        "web-0",
        "web-1",
    ]


def test_requests_carry_no_backend_when_the_pool_has_no_eligible_server():
    servers = [{"name": "web", "count": 1}, {"name": "late", "count": 1, "t_join": 0.55}]
    balancer = {
        "pools": {"web": {"servers": ["web"]}, "late": {"servers": ["late"]}},
        "routes": [{"split": {"late": 1}}],
    }
    result = run(servers=servers, balancer=balancer)
    statuses = result.requests.sort_values("t_arrival")["status"].tolist()
    assert statuses == ["no_backend"] * 6 + ["ok"] * 4
    assert np.isnan(result.requests.loc[result.requests["status"] == "no_backend", "t_start"]).all()


def test_session_moves_count_requests_that_change_server():
    workload = {"arrivals": "deterministic", "rate": 10, "size": "det(1ms)", "clients": 1}
    servers = [{"name": "web", "count": 2}]
    # Round robin alternates: each of the 9 requests after the first moves.
    assert run(workload=workload, servers=servers).summary.loc[0, "session_moves"] == 1.0
    sticky = {"policy": "round_robin", "sticky": {"by": "cookie"}}
    assert run(workload=workload, servers=servers, balancer=sticky).summary.loc[0, "session_moves"] == 0.0
    # The sticky backend web-0 leaves at 0.45 s: the session moves once, to web-1 (1 of 9).
    leaving = [{"name": "web", "count": 1, "t_leave": 0.45}, {"name": "spare", "count": 1}]
    result = run(workload=workload, servers=leaving, balancer=sticky)
    assert result.requests.sort_values("t_arrival")["server"].tolist() == ["web-0"] * 5 + ["spare-0"] * 5
    assert result.summary.loc[0, "session_moves"] == pytest.approx(1 / 9)
