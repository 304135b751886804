"""balancer.emulate: each system's shipped defaults, its policy names, and what it lacks.

Expected values come from the systems' documentation and source, cited per test.
"""

import pytest
import xxhash
from click.testing import CliRunner

import lbsim
from lbsim.cli import main
from lbsim.config.emulate import apply_emulation
from lbsim.config.loading import load_scenario
from lbsim.errors import ConfigError
from lbsim.workload import client_address
from tests.test_failures import CRASH, fleet_scenario


def balancer_of(balancer, servers=4, **changes):
    scenario = {
        "name": "emulate",
        "duration": 10,
        "workload": {"rate": 100, "size": "exp(10ms)"},
        "servers": [{"name": "web", "count": servers}],
        "balancer": balancer,
        **changes,
    }
    return load_scenario(scenario).balancer


def test_nginx_ships_passive_checks_retries_on_every_server_and_no_panic():
    # ngx_http_upstream_module "server": max_fails=1, fail_timeout=10s by default;
    # proxy_next_upstream "error timeout" with proxy_next_upstream_tries 0 (each server once);
    # open-source NGINX has no panic mode.
    b = balancer_of({"emulate": "nginx"})
    assert (b.outlier_detection.max_fails, b.outlier_detection.fail_timeout) == (1, 10.0)
    assert b.outlier_detection.fails_on == ("error", "timeout")
    assert (b.retries.max, b.retries.on, b.retries.backoff, b.retries.max_concurrent) == (
        3,
        ["connect_failure", "reset", "timeout"],
        0.0,
        None,
    )
    assert (b.panic_threshold, b.backup_rule) == (0, "last_resort")
    assert b.policy == "weighted_round_robin"
    assert b.circuit_breaker is None and b.health_check is None


def test_envoy_ships_its_circuit_breakers_and_panic_threshold():
    # circuit_breaker.proto: max_connections, max_pending_requests and max_requests 1024
    # (left out at layer 4: they limit HTTP connection pools and requests); cluster.proto
    # healthy_panic_threshold 50%; the route retry policy: num_retries 1, 25 ms base
    # interval, max 10x, and the max_retries breaker at 3. No retries without a policy.
    b = balancer_of({"emulate": "envoy", "retries": {"on": ["error"]}, "health_check": {"timeout": "1s"}})
    breaker = b.circuit_breaker
    assert (breaker.max_requests, breaker.max_pending, breaker.max_connections) == (1024, 1024, 1024)
    breaker = balancer_of({"emulate": "envoy", "layer": 4}).circuit_breaker
    assert (breaker.max_requests, breaker.max_pending, breaker.max_connections) == (None, None, None)
    assert (b.panic_threshold, b.backup_rule) == (50, "priority")
    assert (b.retries.max, b.retries.backoff, b.retries.max_backoff, b.retries.max_concurrent) == (
        1,
        0.025,
        0.25,
        3,
    )
    assert b.health_check.style == "envoy"
    assert balancer_of({"emulate": "envoy"}).retries is None


def test_haproxy_checks_are_haproxys_and_nothing_else_is_on():
    # HAProxy 2.6 configuration.txt: no checks without "check"; inter 2s, rise 2, fall 3;
    # "timeout check" unset means inter; no passive checks unless "observe"; no panic.
    b = balancer_of({"emulate": "haproxy", "health_check": {}})
    assert (b.health_check.style, b.health_check.check_timeout) == ("haproxy", 2.0)
    assert (b.outlier_detection, b.circuit_breaker, b.panic_threshold) == (None, None, 0)
    # retries 3 with retry-on conn-failure and no option redispatch: the same server each
    # time, after the turn-around timer min(timeout connect, 1 s).
    assert (b.retries.max, b.retries.on, b.retries.same_server, b.retries.turnaround) == (
        3, ["connect_failure"], True, 1.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("system", "name", "meaning"),
    [
        ("envoy", "round_robin", "edf_round_robin"),  # ROUND_ROBIN honours weights (EDF)
        ("envoy", "least_connections", "p2c"),  # LEAST_REQUEST: choice_count 2
        ("nginx", "round_robin", "weighted_round_robin"),  # upstream default: smooth WRR
        ("nginx", "random", "weighted_random"),  # random honours weights
        ("nginx", "p2c", "random_two"),  # random two least_conn: two weighted draws
        ("haproxy", "least_connections", "weighted_least_connections"),  # leastconn
        ("haproxy", "round_robin", "fast_weighted_round_robin"),  # roundrobin: lb_fwrr.c
        ("haproxy", "random", "chash_random"),  # balance random: 2 draws over the hash tree
    ],
)
def test_policy_names_mean_the_emulated_systems_algorithm(system, name, meaning):
    assert balancer_of({"emulate": system, "policy": name}).policy == meaning
    with_params = balancer_of({"emulate": system, "policy": {"name": name}})
    assert with_params.policy == {"name": meaning}


def test_what_the_scenario_sets_wins():
    b = balancer_of({"emulate": "nginx", "outlier_detection": {"max_fails": 3}, "retries": None})
    assert (b.outlier_detection.max_fails, b.outlier_detection.fail_timeout) == (3, 10.0)
    assert b.retries is None
    b = balancer_of(
        {"emulate": "nginx", "retries": {"max": 1}, "policy": {"name": "ring_hash", "key": "session"}}
    )
    assert (b.retries.max, b.retries.on) == (1, ["connect_failure", "reset", "timeout"])
    assert b.policy == {"name": "ring_hash", "hash": "crc32", "ring": "nginx", "key": "session"}
    assert (
        balancer_of({"emulate": "envoy", "circuit_breaker": {"max_requests": 10}}).circuit_breaker.max_pending
        == 1024
    )


@pytest.mark.parametrize(
    ("balancer", "servers", "key", "rule"),
    [
        ({"emulate": "nginx", "panic_threshold": 50}, None, "balancer.panic_threshold", "no panic mode"),
        ({"emulate": "haproxy", "outlier_detection": {}}, None, "balancer.outlier_detection", "observe"),
        ({"emulate": "envoy", "outlier_detection": {"max_fails": 2}}, None, "max_fails", "NGINX"),
        ({"emulate": "envoy", "health_check": {"style": "haproxy"}}, None, "health_check.style", "'envoy'"),
        ({"emulate": "nginx"}, {"slow_start": {"window": "10s"}}, "servers[0].slow_start", "NGINX Plus"),
        ({"emulate": "haproxy", "policy": "ip_hash"}, None, "balancer.policy", "weighted_least_connections"),
        # Envoy's retry host predicates avoid previous hosts; none pins a retry to one.
        ({"emulate": "envoy", "retries": {"same_server": True}}, None, "retries.same_server", "never pin"),
        ({"emulate": "envoy", "retries": {"turnaround": "1s"}}, None, "retries.turnaround", "full jitter"),
        (
            {"emulate": "nginx", "retries": {"same_server": True}},
            None,
            "retries.same_server",
            "never the same",
        ),
    ],
)
def test_a_mechanism_the_system_lacks_is_refused(balancer, servers, key, rule):
    scenario = {
        "name": "emulate",
        "duration": 10,
        "workload": {"rate": 100, "size": "exp(10ms)"},
        "servers": [{"name": "web", "count": 2, **(servers or {})}],
        "balancer": balancer,
    }
    with pytest.raises(ConfigError) as caught:
        load_scenario(scenario)
    assert f"{key} must" in str(caught.value) and rule in str(caught.value)


def test_emulate_belongs_to_the_bottom_tier():
    tiers = [{"name": "edge", "emulate": "envoy"}]
    with pytest.raises(ConfigError, match=r"tiers\[0\]\.emulate: is not supported in an upper tier"):
        balancer_of({}, tiers=tiers)


def test_a_user_policy_class_is_kept_under_emulate():
    assert balancer_of({"emulate": "envoy", "policy": "tests.helpers:Fixed"}).policy == "tests.helpers:Fixed"


def test_nginx_hides_a_crash_from_clients_by_trying_the_next_server():
    # One of 4 servers refuses connections for 20 of 60 s. Under NGINX's defaults each refused
    # request goes to the next server (proxy_next_upstream error), and max_fails=1 takes the
    # server out for fail_timeout after each failure, so no client sees an error. Without
    # emulate (no retries, no passive checks) round robin loses a quarter of the requests
    # for those 20 s.
    plain = lbsim.simulate(fleet_scenario(faults=[CRASH])).summary.loc[0]
    nginx = lbsim.simulate(
        fleet_scenario(faults=[CRASH], balancer={"emulate": "nginx", "cost": 0})
    ).summary.loc[0]
    assert plain["error_rate"] == pytest.approx(0.25 * 20 / 60, rel=0.05)
    assert nginx["n_error"] == 0 and nginx["n_retries"] > 0
    # Passive checks keep web-1 out between trials: one trial per fail_timeout (10 s, whole
    # seconds), so about 20 / 11 trials, each retried once, not a quarter of 20 s of traffic.
    assert nginx["n_retries"] <= 4


def test_haproxy_retries_a_refused_connection_three_times_on_the_same_server_a_second_apart():
    # Real HAProxy 2.6.12 (defaults: retries 3, no redispatch, timeout connect 5s), balance
    # roundrobin over a server that refuses connections and one that answers, one request at
    # a time: every other request gets its 503 after 3.01 s, the rest answer at once
    # (timeout connect 200ms: 0.61 s, three turn-arounds of min(timeout connect, 1 s)).
    crash = {"target": "web-0", "kind": "crash", "at": "0s", "duration": "100s"}
    scenario = fleet_scenario(
        n=2, rate="1/s", duration=40.0, arrivals="deterministic", faults=[crash],
        balancer={"emulate": "haproxy", "cost": 0},
    )  # fmt: skip
    result = lbsim.simulate(scenario)
    requests = result.requests
    refused = requests[requests["server"] == "web-0"]
    assert len(refused) == 20 and (refused["status"] == "error").all()
    assert (refused["t_done"] - refused["t_arrival"]).to_numpy() == pytest.approx(3.0)
    assert result.summary.loc[0, "n_retries"] == 3 * 20  # all of them to web-0
    answered = requests[requests["server"] == "web-1"]
    assert len(answered) == 20 and (answered["status"] == "ok").all()


def test_policies_shows_what_each_name_means_under_a_system():
    result = CliRunner().invoke(main, ["policies", "--emulate", "envoy"])
    assert result.exit_code == 0
    assert "least_connections -> p2c" in result.output
    breaker = "{'max_requests': 1024, 'max_pending': 1024, 'max_connections': 1024}"
    assert f"balancer.circuit_breaker: {breaker}" in result.output
    assert "Envoy 1.28-1.32" in result.output


def test_an_unknown_system_is_a_config_error():
    with pytest.raises(ConfigError, match=r"must be one of envoy, nginx, haproxy; got 'traefik'"):
        apply_emulation({"balancer": {"emulate": "traefik"}})


def test_zones_with_backup_priorities_are_refused():
    # Envoy does zone-aware routing within priority 0 only; lbsim does not model the two together.
    scenario = {
        "name": "zones",
        "duration": 10,
        "workload": {"rate": 100, "size": "exp(10ms)"},
        "servers": [
            {"name": "web", "count": 2, "zone": "a"},
            {"name": "spare", "count": 1, "zone": "b", "backup": True},
        ],
        "balancer": {"zones": ["a", "b"], "locality": {"mode": "zone_aware"}},
    }
    with pytest.raises(ConfigError, match=r"balancer\.locality.*priority 0 only"):
        load_scenario(scenario)


def test_envoy_hashing_is_xxhash64_over_addresses_with_the_ring_rebuilt():
    b = balancer_of({"emulate": "envoy", "policy": {"name": "ring_hash", "key": "session"}})
    assert b.policy == {"name": "ring_hash", "hash": "xxhash64", "ring": "envoy", "key": "session"}
    assert balancer_of({"emulate": "envoy", "policy": {"name": "maglev", "hash": "blake2b"}}).policy == {
        "name": "maglev",
        "hash": "blake2b",
    }


def test_servers_need_one_address_each():
    servers = [{"name": "web", "count": 2, "addresses": ["10.0.0.1:80"]}]
    with pytest.raises(ConfigError, match=r"servers\[0\]\.addresses.*one address per server \(2\); got 1"):
        load_scenario(
            {"name": "a", "duration": 10, "workload": {"rate": 100, "size": "exp(10ms)"}, "servers": servers}
        )


def test_a_simulated_envoy_ring_sends_each_client_where_envoy_would():
    # Envoy's own ring for 127.0.0.1:90..95 at minimum_ring_size 12 (ring_hash_lb_test.cc
    # Basic, positions and ports as listed there); each client's source address is hashed
    # with xxHash64 (Envoy's hash policy on the source IP) and looked up in that list here.
    ring = [
        (833437586790550860, 94), (928266305478181108, 92), (1033482794131418490, 90),
        (3551244743356806947, 95), (3851675632748031481, 93), (5583722120771150861, 91),
        (6311230543546372928, 91), (7700377290971790572, 93), (13144177310400110813, 95),
        (13444792449719432967, 92), (15516499411664133160, 94), (16117243373044804889, 90),
    ]  # fmt: skip

    def envoy_port(client):
        h = xxhash.xxh64_intdigest(client_address(client).encode())
        return next((port for point, port in ring if point >= h), ring[0][1])

    addresses = [f"127.0.0.1:{port}" for port in range(90, 96)]
    scenario = {
        "name": "ring",
        "duration": 5,
        "workload": {"rate": 200, "size": "exp(1ms)", "clients": 50},
        "servers": [{"name": "web", "count": 6, "addresses": addresses}],
        "balancer": {"emulate": "envoy", "policy": {"name": "ring_hash", "min_ring_size": 12}, "cost": 0},
    }
    requests = lbsim.simulate(scenario).requests
    served = requests["server"].str.removeprefix("web-").astype(int) + 90
    assert (served == requests["client"].map(envoy_port)).all()
    assert served.nunique() >= 4


@pytest.mark.parametrize("value", [["envoy", "nginx"], {"name": "envoy"}, 7])
def test_emulate_must_be_a_system_name(value):
    with pytest.raises(ConfigError, match=r"balancer.emulate must be one of envoy, nginx, haproxy; got "):
        balancer_of({"emulate": value})


@pytest.mark.parametrize(
    ("system", "backups"), [("nginx", "priority"), ("haproxy", "priority"), ("envoy", "last_resort")]
)
def test_backups_must_follow_the_emulated_system(system, backups):
    with pytest.raises(ConfigError, match=rf"balancer.backups must be .* with emulate: {system}"):
        balancer_of({"emulate": system, "backups": backups})


@pytest.mark.parametrize("addresses", [["10.0.0.1:80", "10.0.0.1:80"], ["", "10.0.0.2:80"]])
def test_addresses_must_be_unique_and_non_empty(addresses):
    servers = [{"name": "web", "count": 2, "addresses": addresses}]
    with pytest.raises(ConfigError, match=r"servers.addresses must be non-empty and unique across the fleet"):
        load_scenario(
            {"name": "a", "duration": 10, "workload": {"rate": 100, "size": "exp(10ms)"}, "servers": servers}
        )


def test_a_long_bad_value_is_shortened():
    with pytest.raises(ConfigError) as caught:
        balancer_of({"backups": "q" * 3000})
    assert len(str(caught.value)) < 300 and "..." in str(caught.value)


def test_nginx_max_fails_0_turns_passive_checks_off():
    # ngx_http_upstream_module: "The zero value disables the accounting of attempts."
    emulated = fleet_scenario(
        faults=[CRASH], balancer={"emulate": "nginx", "outlier_detection": {"max_fails": 0}}
    )
    result = lbsim.simulate(emulated)
    assert "marked" not in set(result.events["event"])
    assert result.summary.loc[0, "n_error"] == 0  # every refused request is still retried
