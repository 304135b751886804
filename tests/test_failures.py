"""Failures and the mechanisms that cope with them; expected values from the mechanisms' rules."""

import numpy as np
import pytest

import lbsim
from lbsim.engine.build import plan
from lbsim.engine.clock import Clock
from lbsim.engine.health import MaxFails, OutlierDetector
from lbsim.engine.settings import OutlierDetection
from lbsim.status import (
    BAD_GATEWAY,
    CONNECT_FAILURE,
    ERROR,
    GATEWAY_TIMEOUT,
    OK,
    REJECTED,
    RESET,
    TIMEOUT,
    TOO_MANY_REQUESTS,
)
from tests.helpers import make_scenario


def fleet_scenario(n=4, rate="200/s", duration=60.0, balancer=None, faults=(), seed=1, **workload):
    return make_scenario(
        duration=duration,
        seed=seed,
        window=1.0,
        workload={"arrivals": "poisson", "rate": rate, "size": "exp(10ms)", **workload},
        servers=[{"name": "web", "count": n}],
        balancer={"policy": "round_robin", **(balancer or {})},
        faults=list(faults),
    )


CRASH = {"target": "web-1", "kind": "crash", "at": "20s", "duration": "20s"}
CHECKS = {"interval": "2s", "timeout": "1s", "rise": 2, "fall": 3}


def test_without_health_checks_a_crashed_backend_keeps_its_share_of_traffic():
    result = lbsim.simulate(fleet_scenario(faults=[CRASH]))
    # Round robin sends a quarter of the requests to web-1, which refuses them for 20 of 60 s.
    assert result.summary.loc[0, "error_rate"] == pytest.approx(0.25 * 20 / 60, rel=0.05)
    assert result.faults.loc[0, "n_failed"] == result.summary.loc[0, "n_error"]
    assert np.isnan(result.faults.loc[0, "t_detected"])


def test_retries_on_connect_failure_hide_the_crash_from_clients():
    # With no limit on concurrent retries (NGINX, HAProxy) every refused try is retried.
    balancer = {"retries": {"max": 2, "on": ["connect_failure", "error"], "max_concurrent": None}}
    result = lbsim.simulate(fleet_scenario(faults=[CRASH], balancer=balancer))
    assert result.summary.loc[0, "n_error"] == 0
    assert result.summary.loc[0, "n_retries"] == result.faults.loc[0, "n_retried"] > 0


@pytest.mark.parametrize(("max_concurrent", "n_retries"), [(1, 2), (3, 4), (None, 4)])
def test_envoys_max_retries_breaker_bounds_concurrent_retries(trace, max_concurrent, n_retries):
    # One crashed server; two requests at t=0 are refused at once. The first schedules a
    # retry after its back-off (retries().inc() in retry_state_impl.cc), which holds the
    # breaker until it is answered; with max_retries 1 the second finds it full and fails
    # unretried (upstream_rq_retry_overflow). Each retried request is tried 1 + 2 times.
    scenario = make_scenario(
        duration=1.0,
        workload=trace([(0.0, 0.01), (0.0, 0.01)]),
        faults=[{"target": "web-0", "kind": "crash", "at": 0.0, "duration": 1.0}],
        balancer={"retries": {"max": 2, "backoff": "10ms", "max_concurrent": max_concurrent}},
    )
    summary = lbsim.simulate(scenario).summary
    assert (summary.loc[0, "n_retries"], summary.loc[0, "n_error"]) == (n_retries, 2)


@pytest.mark.parametrize("style", ["haproxy", "envoy"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_crash_detection_and_recovery_times_follow_rise_and_fall(style, seed):
    # Checks every 2 s: the first failed check comes within one interval of the crash, and
    # fall = 3 failures later the server is down: between (3 - 1) x 2 and 3 x 2 seconds.
    balancer = {"health_check": CHECKS | {"style": style}}
    faults = result_faults = lbsim.simulate(
        fleet_scenario(faults=[CRASH], balancer=balancer, seed=seed)
    ).faults
    row = faults.loc[0]
    assert 4.0 <= row["t_detected"] - 20.0 <= 6.0
    # Back up after rise = 2 passes: between (2 - 1) x 2 and 2 x 2 seconds after the end.
    assert 2.0 <= row["t_restored"] - 40.0 <= 4.0
    assert result_faults.loc[0, "n_failed"] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_hung_backend_is_detected_by_probe_timeouts(seed):
    hang = CRASH | {"kind": "hang"}
    result = lbsim.simulate(
        fleet_scenario(faults=[hang], balancer={"health_check": CHECKS}, seed=seed, timeout="2s")
    )
    row = result.faults.loc[0]
    # Each failed probe takes the 1 s timeout to fail.
    assert 4.0 + 1.0 <= row["t_detected"] - 20.0 <= 6.0 + 1.0


def test_haproxy_fails_a_new_server_on_its_first_failed_check():
    # HAProxy starts servers at the lowest up level: a crash before any check passed is
    # detected at the first failed check, within one interval.
    crash = {"target": "web-1", "kind": "crash", "at": "0s", "duration": "20s"}
    result = lbsim.simulate(fleet_scenario(faults=[crash], balancer={"health_check": CHECKS}))
    assert result.faults.loc[0, "t_detected"] <= 2.0


def test_envoy_needs_one_pass_before_a_new_backend_gets_traffic():
    balancer = {"health_check": CHECKS | {"style": "envoy"}, "panic_threshold": 0}
    result = lbsim.simulate(fleet_scenario(balancer=balancer, rate="1000/s", duration=2.0))
    ups = result.events[result.events["event"] == "up"]
    assert len(ups) == 4 and ups["t"].max() < 0.01
    first_ok = result.requests[result.requests["status"] == "ok"]["t_arrival"].min()
    assert first_ok >= ups["t"].min()
    assert (result.requests["status"] == "no_backend").sum() >= 0


def test_a_hung_backend_without_timeouts_leaves_requests_waiting_and_a_try_timeout_recovers():
    hang = {"target": "web-1", "kind": "hang", "at": "20s", "duration": "30s"}
    plain = lbsim.simulate(fleet_scenario(faults=[hang], duration=40.0, timeout="1s"))
    # A quarter of the requests after 20 s reach the hung server and time out at the client.
    assert plain.summary.loc[0, "n_timeout"] / plain.summary.loc[0, "n_requests"] == pytest.approx(
        0.25 * 20 / 40, rel=0.1
    )
    retried = {"retries": {"max": 1, "on": ["timeout"], "try_timeout": "100ms", "max_concurrent": None}}
    recovered = lbsim.simulate(fleet_scenario(faults=[hang], duration=40.0, timeout="1s", balancer=retried))
    # Every timed-out try is retried (no limit on concurrent retries): what is left are
    # requests whose two tries both waited over 100 ms in ordinary queues.
    assert recovered.summary.loc[0, "n_timeout"] < 0.01 * plain.summary.loc[0, "n_timeout"] * 4
    assert recovered.summary.loc[0, "latency_max"] < 1.0


def test_a_hung_server_resumes_frozen_work_when_it_recovers(trace):
    # 0.5 s of work from t = 0; hung from 0.2 to 0.7 s: 0.3 s left, done at 1.0 s.
    workload = trace([(0.0, 0.5)])
    result = lbsim.simulate(
        make_scenario(
            workload=workload, faults=[{"target": "web-0", "kind": "hang", "at": 0.2, "duration": 0.5}]
        )
    )
    assert result.requests["t_done"].tolist() == pytest.approx([1.0])


def test_a_slow_server_takes_factor_times_longer(trace):
    workload = trace([(0.0, 0.1), (0.5, 0.1)])
    result = lbsim.simulate(
        make_scenario(
            workload=workload,
            faults=[{"target": "web", "kind": "slow", "factor": 3, "at": 0.4, "duration": 0.5}],
        )
    )
    assert sorted(result.requests["latency"]) == pytest.approx([0.1, 0.3])


def test_overlapping_faults_of_one_kind_last_until_the_last_ends(trace):
    # Hung over [1.4, 2.9) and [1.5, 1.9): hung until 2.9, so the request sent at 1.45
    # waits until then and is served in 0.1 s. Slowed x2 over [0, 10) and x3 over [2, 4):
    # the latest started applies while it lasts, then the x2 again.
    hangs = [
        {"target": "web-0", "kind": "hang", "at": 1.4, "duration": 1.5},
        {"target": "web-0", "kind": "hang", "at": 1.5, "duration": 0.4},
    ]
    requests = lbsim.simulate(
        make_scenario(duration=4.0, workload=trace([(1.45, 0.1)]), faults=hangs)
    ).requests
    assert requests["t_done"].tolist() == pytest.approx([3.0])
    slows = [
        {"target": "web-0", "kind": "slow", "factor": 2, "at": 0.0, "duration": 10.0},
        {"target": "web-0", "kind": "slow", "factor": 3, "at": 2.0, "duration": 2.0},
    ]
    workload = trace([(1.0, 0.1), (3.0, 0.1), (5.0, 0.1)])
    requests = lbsim.simulate(make_scenario(duration=6.0, workload=workload, faults=slows)).requests
    assert requests["latency"].tolist() == pytest.approx([0.2, 0.3, 0.2])


def test_a_crash_fails_what_the_server_holds(trace):
    # Three requests of 0.5 s at 0: one served, two waiting; the crash at 0.2 fails all three.
    workload = trace([(0.0, 0.5)] * 3)
    result = lbsim.simulate(
        make_scenario(
            workload=workload, faults=[{"target": "web-0", "kind": "crash", "at": 0.2, "duration": 0.1}]
        )
    )
    assert result.requests["status"].tolist() == ["error"] * 3
    assert result.requests["t_done"].tolist() == pytest.approx([0.2] * 3)


def breaker_run(fault_duration):
    # One server, a request every 100 ms from 0; 5xx for every request from 0.25 s.
    faults = [
        {
            "target": "web-0",
            "kind": "errors",
            "probability": 1.0,
            "latency": 0,
            "at": 0.25,
            "duration": fault_duration,
        }
    ]
    balancer = {"circuit_breaker": {"failure_threshold": 3, "timeout": "1s"}}
    return lbsim.simulate(make_scenario(duration=3.0, faults=faults, balancer=balancer))


def test_circuit_breaker_opens_half_opens_and_closes_at_the_rule_times():
    result = breaker_run(0.5)
    transitions = result.events[result.events["component"] == "balancer-0/circuit_breaker"]
    # Failures at 0.3, 0.4, 0.5 open it at 0.5; the first request at least 1 s after the last
    # failure (1.5) is the half-open trial; it succeeds (the fault ended at 0.75) at 1.55.
    assert transitions[["t", "event"]].values.tolist() == [
        [0.5, "open"],
        [1.5, "half_open"],
        [pytest.approx(1.55), "closed"],
    ]
    # Requests at 0.6 .. 1.4 were rejected without reaching the server.
    assert (result.requests["status"] == "rejected").sum() == 9


def test_circuit_breaker_reopens_when_the_trial_fails():
    result = breaker_run(2.0)
    transitions = result.events[result.events["component"] == "balancer-0/circuit_breaker"]
    # The trial at 1.5 fails at once: open again at 1.5; the next trial is at 2.5 (fault over).
    assert transitions[["t", "event"]].values.tolist()[:4] == [
        [0.5, "open"],
        [1.5, "half_open"],
        [1.5, "open"],
        [2.5, "half_open"],
    ]


def outlier_run(n, **detection):
    faults = [
        {"target": "web-0", "kind": "errors", "probability": 1.0, "latency": 0, "at": 1.0, "duration": 100.0}
    ]
    balancer = {
        "outlier_detection": {"consecutive_errors": 5, "base_ejection": "10s", "interval": "10s"} | detection
    }
    workload = {"arrivals": "deterministic", "rate": n, "size": "det(1ms)", "clients": 1}
    return lbsim.simulate(
        make_scenario(
            duration=60.0,
            workload=workload,
            servers=[{"name": "web", "count": n}],
            faults=faults,
            balancer=balancer,
        )
    )


def test_outlier_detection_ejects_after_exactly_consecutive_errors_for_growing_times():
    result = outlier_run(10)
    ejections = result.events[
        (result.events["subject"] == "web-0") & result.events["component"].str.endswith("outlier_detection")
    ]
    # Round robin sends web-0 one request per second (at 1.0 s, 2.0 s, ...): the 5th 5xx at
    # 5.0 s ejects it (base 10 s x 1). Envoy unejects on the detector's 10 s tick
    # (checkHostForUneject): at 20 s, the first tick 10 s after the ejection. Its next 5
    # requests fail within 5 s: ejected again for 20 s (x 2), so back at the tick at 50 s.
    (t1, e1), (t2, e2), (t3, e3), (t4, e4) = ejections[["t", "event"]].values.tolist()[:4]
    assert (e1, e2, e3, e4) == ("ejected", "returned", "ejected", "returned")
    assert (t1, t2) == (pytest.approx(5.0), pytest.approx(20.0))
    assert 24.0 <= t3 <= 25.0
    assert t4 == pytest.approx(50.0)


def test_max_ejection_percent_follows_modern_envoy():
    # 5 backends at 10%: one ejection would be 20% of hosts, so nothing is ejected ...
    assert "ejected" not in set(outlier_run(5).events["event"])
    # ... unless always_eject_one is set.
    assert "ejected" in set(outlier_run(5, always_eject_one=True).events["event"])


def success_rate_detector(volume=100, max_ejection_percent=20.0):
    clock = Clock()
    config = OutlierDetection(
        1000, 10.0, 30.0, 300.0, max_ejection_percent, False, True, 5, volume, 1.9, None, 10.0, ()
    )
    events = []
    detector = OutlierDetector(
        clock, config, [f"web-{i}" for i in range(5)], lambda index: None, lambda *e: events.append(e[1:])
    )
    return clock, detector, events


def answer(detector, index, n_ok, n_error):
    for status in [OK] * n_ok + [ERROR] * n_error:
        detector.result(index, status, pool_size=5)


def run_to(clock, t):
    clock.schedule_at(t, lambda _: clock.stop())
    clock.run()


def test_success_rate_ejection_uses_envoys_mean_minus_stdev_threshold():
    # outlier_detection_impl.cc successRateEjectionThreshold, Envoy's own example: rates 50,
    # 100, 100, 100, 100 over 100 answers each: mean 90, stdev 20, threshold 90 - 1.9 x 20 =
    # 52, so web-0 (50%) is ejected at the 10 s tick; the others (100 > 52) stay.
    clock, detector, events = success_rate_detector()
    answer(detector, 0, 50, 50)
    for i in range(1, 5):
        answer(detector, i, 100, 0)
    run_to(clock, 10.0)
    assert detector.out == {0} and events == [("web-0", "ejected")]


def test_success_rate_needs_the_request_volume_on_enough_hosts():
    # success_rate_request_volume 100: with 99 answers web-4 does not count, which leaves 4
    # hosts, below success_rate_minimum_hosts 5: no ejection this interval.
    clock, detector, events = success_rate_detector()
    answer(detector, 0, 50, 50)
    for i in range(1, 4):
        answer(detector, i, 100, 0)
    answer(detector, 4, 99, 0)
    run_to(clock, 10.0)
    assert detector.out == set() and events == []
    # Counts start afresh each interval: the next tick sees nothing.
    run_to(clock, 20.0)
    assert detector.out == set()


def test_success_rate_ejection_respects_max_ejection_percent():
    # 5 hosts at 10%: one ejection would be 20% of hosts (modern Envoy's strict limit).
    clock, detector, _ = success_rate_detector(max_ejection_percent=10.0)
    answer(detector, 0, 50, 50)
    for i in range(1, 5):
        answer(detector, i, 100, 0)
    run_to(clock, 10.0)
    assert detector.out == set()


def test_in_the_engine_a_server_failing_a_fifth_of_its_answers_is_ejected_on_the_tick():
    # 10 servers, round robin at 400/s: each answers about 400 per 10 s interval. web-0 fails
    # 20% of its answers: its success rate (about 80%) is 2 stdev under the mean of 10 (z = 3
    # with one outlier among 10), so the first tick at 10 s ejects it; the consecutive rule
    # (50 in a row) never fires.
    faults = [{"target": "web-0", "kind": "errors", "probability": 0.2, "at": 0.0, "duration": 60.0}]
    detection = {"consecutive_errors": 50}
    result = lbsim.simulate(
        fleet_scenario(
            n=10, rate="400/s", duration=15.0, faults=faults, balancer={"outlier_detection": detection}
        )
    )
    ejected = result.events[result.events["event"] == "ejected"][["t", "subject"]].values.tolist()
    assert ejected == [[pytest.approx(10.0), "web-0"]]
    off = lbsim.simulate(
        fleet_scenario(
            n=10, rate="400/s", duration=15.0, faults=faults,
            balancer={"outlier_detection": detection | {"success_rate": False}},
        )
    )  # fmt: skip
    assert "ejected" not in set(off.events["event"])


def test_nginx_marks_a_failing_server_for_fail_timeout():
    hang = {"target": "web-0", "kind": "crash", "at": 1.0, "duration": 100.0}
    balancer = {"outlier_detection": {"max_fails": 1, "fail_timeout": "10s"}}
    workload = {"arrivals": "deterministic", "rate": 20, "size": "det(1ms)", "clients": 1}
    result = lbsim.simulate(
        make_scenario(
            duration=30.0,
            workload=workload,
            servers=[{"name": "web", "count": 2}],
            faults=[hang],
            balancer=balancer,
        )
    )
    marks = result.events[result.events["subject"] == "web-0"][["t", "event"]].values.tolist()
    # ngx_http_upstream_round_robin.c in whole seconds: the refusal at 1.0 sets checked = 1;
    # web-0 is skipped while now - checked <= 10, so until 12.0; its next pick (a trial) is
    # refused at once: checked = 12, skipped until 23.0.
    assert marks[1:3] == [[pytest.approx(1.0), "marked"], [pytest.approx(12.0), "returned"]]
    (t_trial, trial), (t_marked, marked) = marks[3:5]
    assert (trial, marked) == ("trial", "marked")
    assert 12.0 <= t_trial == t_marked <= 12.1
    assert marks[5] == [pytest.approx(23.0), "returned"]


def nginx_checks(max_fails=3, fail_timeout=10.0, fails_on=("error", "timeout")):
    clock = Clock()
    config = OutlierDetection(
        5, 10.0, 30.0, 300.0, 10.0, False, True, 5, 100, 1.9, max_fails, fail_timeout, fails_on
    )
    events = []
    checks = MaxFails(clock, config, ["web-0", "web-1"], lambda index: None, lambda *e: events.append(e[2]))
    sent = []
    deliver = checks.watch(0, sent.append)
    return clock, checks, deliver, events


def at(clock, t):
    clock.now = t
    return clock


def test_nginx_counts_failures_a_success_does_not_forgive_within_fail_timeout():
    # ngx_http_upstream_free_round_robin_peer: a success resets fails only if the server was
    # picked at least fail_timeout after its last failure (accessed < checked). So fail, ok,
    # fail, ok, fail within a few seconds is 3 failures: marked at the third (max_fails=3).
    clock, checks, deliver, events = nginx_checks()
    for t, status in enumerate([RESET, OK, TIMEOUT, OK, CONNECT_FAILURE]):
        at(clock, t + 0.5)
        deliver(None)
        checks.result(0, status, pool_size=2)
    assert events == ["marked"] and checks.out == {0}
    # Skipped while now - checked <= 10 (checked = 4): back at 15.0, where the next pick is
    # a trial that keeps it out until its answer; a success (accessed 4 < checked 15) clears it.
    assert checks.fails[0] == 3
    clock.schedule_at(15.0, lambda _: clock.stop())
    clock.run()
    assert events == ["marked", "returned"] and checks.out == set() and clock.now == 15.0
    deliver(None)
    assert events == ["marked", "returned", "trial"] and checks.out == {0}
    checks.result(0, OK, pool_size=2)
    assert checks.fails[0] == 0 and checks.out == set()


def test_nginx_counts_500s_only_when_proxy_next_upstream_names_them():
    checks = nginx_checks(max_fails=1)[1]
    checks.result(0, ERROR, pool_size=2)
    checks.result(0, REJECTED, pool_size=2)
    assert checks.out == set()
    checks = nginx_checks(max_fails=1, fails_on=("http_500",))[1]
    checks.result(0, ERROR, pool_size=2)
    assert checks.out == {0}


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("http_502", BAD_GATEWAY),
        ("http_503", REJECTED),
        ("http_504", GATEWAY_TIMEOUT),
        ("http_429", TOO_MANY_REQUESTS),
    ],
)
def test_nginx_counts_each_answer_proxy_next_upstream_names(case, status):
    # ngx_http_upstream.c, ngx_http_upstream_next: an answer is a failure (NGX_PEER_FAILED)
    # when its ft_type is in proxy_next_upstream; error and timeout are the default.
    checks = nginx_checks(max_fails=1)[1]
    checks.result(0, status, pool_size=2)
    assert checks.out == set()
    checks = nginx_checks(max_fails=1, fails_on=("error", "timeout", case))[1]
    checks.result(0, status, pool_size=2)
    assert checks.out == {0}


def test_envoy_outlier_detection_takes_a_429_as_a_success():
    # outlier_detection_impl.cc putHttpResponseCode: only a 5xx adds to consecutive_5xx; any
    # other code (a 429 included) resets it and counts as a success for the success rate.
    clock = Clock()
    config = OutlierDetection(2, 10.0, 30.0, 300.0, 100.0, False, True, 5, 100, 1.9, None, 10.0, ())
    detector = OutlierDetector(clock, config, ["web-0", "web-1"], lambda index: None, lambda *e: None)
    for status in [ERROR, TOO_MANY_REQUESTS, ERROR]:
        detector.result(0, status, pool_size=2)
    assert detector.out == set() and detector.succeeded[0] == 1
    detector.result(0, BAD_GATEWAY, pool_size=2)
    assert detector.out == {0}


def test_nginx_never_marks_the_only_server_of_an_upstream():
    # peers->single: no accounting at all.
    checks = nginx_checks(max_fails=1)[1]
    checks.result(0, CONNECT_FAILURE, pool_size=1)
    assert checks.out == set() and checks.fails[0] == 0


def test_nginx_fail_timeout_is_whole_seconds():
    with pytest.raises(lbsim.ConfigError, match="whole seconds"):
        lbsim.load_scenario(
            make_scenario(balancer={"outlier_detection": {"max_fails": 1, "fail_timeout": "1.5s"}})
        )


def test_panic_mode_spreads_traffic_over_unhealthy_backends():
    crash = {"target": "web", "kind": "crash", "at": "10s", "duration": "30s"}
    faults = [crash | {"target": f"web-{i}"} for i in (0, 1, 2)]
    panicking = lbsim.simulate(fleet_scenario(faults=faults, balancer={"health_check": CHECKS}))
    assert "on" in set(panicking.events[panicking.events["component"].str.endswith("panic")]["event"])
    # In panic, 3 of 4 backends are down but still receive traffic: about 3/4 fail.
    window = panicking.requests[
        (panicking.requests["t_arrival"] > 20) & (panicking.requests["t_arrival"] < 38)
    ]
    assert (window["status"] == "error").mean() == pytest.approx(0.75, abs=0.05)
    strict = lbsim.simulate(
        fleet_scenario(faults=faults, balancer={"health_check": CHECKS, "panic_threshold": 0})
    )
    window = strict.requests[(strict.requests["t_arrival"] > 20) & (strict.requests["t_arrival"] < 38)]
    assert (window["status"] == "error").mean() == 0.0


def test_backup_servers_serve_only_when_no_primary_can():
    servers = [{"name": "web", "count": 2}, {"name": "spare", "count": 1, "backup": True}]
    crash = {"target": "web", "kind": "crash", "at": "10s", "duration": "20s"}
    scenario = fleet_scenario(faults=[crash], balancer={"health_check": CHECKS, "panic_threshold": 0}) | {
        "servers": servers
    }
    r = lbsim.simulate(scenario).requests
    spare = r[r["server"] == "spare-0"]
    assert spare["t_arrival"].min() > 10 and spare["t_arrival"].max() < 35
    assert len(spare) > 1000


def crash_three_of_four_with_two_backups(backups):
    servers = [{"name": "web", "count": 4}, {"name": "spare", "count": 2, "backup": True}]
    crash = {"kind": "crash", "at": "10s", "duration": "30s"}
    faults = [crash | {"target": f"web-{i}"} for i in (0, 1, 2)]
    balancer = {"health_check": CHECKS, "backups": backups}
    scenario = fleet_scenario(faults=faults, balancer=balancer) | {"servers": servers}
    requests = lbsim.simulate(scenario).requests
    return requests[(requests["t_arrival"] > 20) & (requests["t_arrival"] < 38)]


def test_envoy_priorities_spill_to_backups_instead_of_panicking():
    # Envoy (load_balancer_impl.cc; LoadBalancerBaseTest.GentleFailover): 1 healthy primary
    # of 4 has health 140 x 1 // 4 = 35, 2 healthy backups 100; the total is >= 100, so no
    # level panics: 35% of requests to the live primary, 65% to the backups, none to the
    # crashed three.
    window = crash_three_of_four_with_two_backups("priority")
    assert (window["status"] == "error").mean() == 0.0
    assert (window["server"] == "web-3").mean() == pytest.approx(0.35, abs=0.02)
    assert window["server"].str.startswith("spare").mean() == pytest.approx(0.65, abs=0.02)
    # Backups as a last resort with a panic threshold (a mix no system has): 25% healthy is
    # below 50%, the primaries panic and the three crashed ones take 3/4 of the requests.
    window = crash_three_of_four_with_two_backups("last_resort")
    assert (window["status"] == "error").mean() == pytest.approx(0.75, abs=0.05)


def test_no_backend_when_nothing_is_eligible():
    crash = {"target": "web", "kind": "crash", "at": "10s", "duration": "20s"}
    r = lbsim.simulate(
        fleet_scenario(faults=[crash], balancer={"health_check": CHECKS, "panic_threshold": 0})
    )
    assert r.summary.loc[0, "n_no_backend"] > 0
    assert set(r.requests.loc[r.requests["status"] == "no_backend", "server"]) == {""}


def test_standby_balancer_takes_over_and_requests_in_between_are_dropped():
    # A request every 10 ms; the balancer fails at 5 s and the standby takes over 3 s later.
    workload = {"arrivals": "deterministic", "rate": 100, "size": "det(1ms)"}
    faults = [{"target": "balancer", "kind": "crash", "at": 5.0, "duration": 60.0}]
    scenario = make_scenario(
        duration=10.0, workload=workload, faults=faults, balancer={"standby": {"failover": "3s"}}
    )
    result = lbsim.simulate(scenario)
    dropped = result.requests[result.requests["status"] == "dropped"]
    assert len(dropped) == 300  # arrivals at 5.00, 5.01, ..., 7.99
    assert result.faults.loc[0, "t_end"] == pytest.approx(8.0)
    assert result.faults.loc[0, "n_failed"] == 300


@pytest.mark.parametrize("duration", [None, "forever"])
def test_a_crash_without_an_end_lasts_to_the_end_of_the_run(duration):
    crash = {"target": "web-1", "kind": "crash", "at": "20s"}
    if duration is not None:
        crash["duration"] = duration
    result = lbsim.simulate(fleet_scenario(faults=[crash]))
    # Round robin sends a quarter of the requests to web-1, which refuses them for 40 of 60 s.
    assert result.summary.loc[0, "error_rate"] == pytest.approx(0.25 * 40 / 60, rel=0.05)
    assert result.faults.loc[0, "t_end"] == np.inf
    late = result.requests[result.requests["t_arrival"] > 59.0]
    assert (late.loc[late["server"] == "web-1", "status"] == "error").all()


def test_a_balancer_crash_without_an_end_or_standby_drops_everything_after_it():
    workload = {"arrivals": "deterministic", "rate": 100, "size": "det(1ms)"}
    faults = [{"target": "balancer", "kind": "crash", "at": 5.0}]
    result = lbsim.simulate(make_scenario(duration=10.0, workload=workload, faults=faults))
    assert (result.requests["status"] == "dropped").sum() == 500  # arrivals at 5.00, ..., 9.99
    assert result.faults.loc[0, "t_end"] == np.inf


def test_random_crashes_give_the_downtime_of_mtbf_and_mttr():
    faults = [{"target": "web", "kind": "crash", "mtbf": "100s", "mttr": "10s"}]
    scenario = fleet_scenario(n=10, rate="20/s", duration=3000.0, faults=faults)
    fractions = []
    for replication in range(4):
        occurrences = lbsim.simulate(scenario, replication=replication).faults
        down = (
            (occurrences["t_end"].clip(upper=3000.0) - occurrences["t_start"])
            .groupby(occurrences["target"])
            .sum()
        )
        fractions += list(down.reindex([f"web-{i}" for i in range(10)], fill_value=0.0) / 3000.0)
    values = np.array(fractions)
    half_width = 2.02 * values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - 10 / 110) <= half_width


def test_retries_amplify_an_overload_and_a_budget_contains_it():
    # 70% load: without retries every request succeeds. Retrying whatever waits over 100 ms
    # with no limit on concurrent retries adds load, queues grow, more tries time out: the
    # fleet collapses into a retry storm. Envoy's default max_retries breaker (3 concurrent
    # retries) or a retry budget keeps the extra tries small: the storm never starts.
    retry = {"max": 3, "on": ["timeout"], "try_timeout": "100ms"}
    base = fleet_scenario(rate="280/s", duration=60.0, timeout="2s")

    def summary(retries):
        return lbsim.simulate(base | {"balancer": base["balancer"] | {"retries": retries}}).summary.loc[0]

    calm = lbsim.simulate(base).summary.loc[0]
    storm = summary(retry | {"max_concurrent": None})
    breaker = summary(retry)
    budget = summary(retry | {"budget": 0.2})
    assert calm["error_rate"] == 0
    assert storm["n_retries"] > 2 * storm["n_requests"]  # tries per request above 3
    assert storm["error_rate"] > 0.9
    for contained in (breaker, budget):
        assert contained["n_retries"] < 0.05 * contained["n_requests"]
        assert contained["error_rate"] < 0.05


def test_hedging_sends_a_second_copy_and_takes_the_first_answer():
    slow = {"target": "web-0", "kind": "slow", "factor": 20, "at": 0.0, "duration": 100.0}
    plain = lbsim.simulate(fleet_scenario(rate="50/s", faults=[slow]))
    hedged = lbsim.simulate(
        fleet_scenario(rate="50/s", faults=[slow], balancer={"retries": {"max": 0, "hedge": "50ms"}})
    )
    assert hedged.summary.loc[0, "n_hedges"] > 0
    assert hedged.summary.loc[0, "latency_p99"] < 0.5 * plain.summary.loc[0, "latency_p99"]


def share_of_new_server(window, style, seconds):
    """The share of requests the server joining at 10 s gets in [10 + t, 11 + t) for each t,
    beside one full-weight server, under weighted round robin."""
    servers = [
        {"name": "web"},
        {"name": "new", "t_join": "10s", "slow_start": {"window": window, "style": style}},
    ]
    workload = {"arrivals": "poisson", "rate": "400/s", "size": "exp(2ms)"}
    requests = lbsim.simulate(
        make_scenario(
            duration=40.0, workload=workload, servers=servers, balancer={"policy": "weighted_round_robin"}
        )
    ).requests
    shares = []
    for t in seconds:
        window_rows = requests[(requests["t_arrival"] >= 10 + t) & (requests["t_arrival"] < 11 + t)]
        shares.append((window_rows["server"] == "new-0").mean())
    return shares


def test_envoy_slow_start_ramps_a_returning_backends_share():
    # Its share is f / (1 + f) for its weight factor f = max(0.1, t / 20) over a 20 s window.
    seconds = (4, 9, 14, 25)
    for t, share in zip(seconds, share_of_new_server("20s", "envoy", seconds), strict=True):
        f = min(1.0, max(0.1, (t + 0.5) / 20))
        assert share == pytest.approx(f / (1 + f), abs=0.04), t


def test_haproxy_slow_start_follows_server_recalc_eweight():
    # server.c: recomputed every second, w = (16 t + S) // S sixteenths of the weight. With
    # S = 10 s: t = 2 -> 42 // 10 = 4/16, t = 4 -> 7/16, t = 7 -> 12/16, t >= 10 -> full.
    # (The 20-step ramp lbsim had gave 3/20, 5/20, 8/20.)
    seconds = (2, 4, 7, 12)
    for t, share in zip(seconds, share_of_new_server("10s", "haproxy", seconds), strict=True):
        f = min(16, (16 * t + 10) // 10) / 16
        assert share == pytest.approx(f / (1 + f), abs=0.04), t


def test_a_zone_fails_all_at_once():
    servers = [{"name": "a", "count": 2, "zone": "a"}, {"name": "b", "count": 2, "zone": "b"}]
    faults = [{"target": "zone:a", "kind": "crash", "at": "10s", "duration": "10s"}]
    result = lbsim.simulate(fleet_scenario(faults=faults) | {"servers": servers})
    assert result.faults[["target", "t_start", "t_end"]].values.tolist() == [["zone:a", 10.0, 20.0]]
    # Round robin: half the requests of the 10 s window fail, out of 60 s.
    assert result.summary.loc[0, "error_rate"] == pytest.approx(0.5 * 10 / 60, rel=0.06)


def test_envoy_request_limit_fails_fast_with_503(trace):
    # Three requests of 1 s at once; at most 2 outstanding: the third is rejected at once.
    scenario = make_scenario(workload=trace([(0.0, 1.0)] * 3), servers=[{"name": "web", "count": 3}],
                             balancer={"circuit_breaker": {"max_requests": 2}})  # fmt: skip
    requests = lbsim.simulate(scenario).requests.sort_values("t_done")
    assert requests["status"].tolist() == ["rejected", "ok", "ok"]
    assert requests["t_done"].tolist() == pytest.approx([0.0, 1.0, 1.0])


def pooled(trace, arrivals, limits, **changes):
    """Requests of 1 s at ``arrivals`` through Envoy's connection pools with ``limits``."""
    scenario = make_scenario(
        workload=trace([(t, 1.0) for t in arrivals]),
        balancer={"circuit_breaker": limits, **changes.pop("balancer", {})},
        **changes,
    )
    return lbsim.simulate(scenario).requests.sort_values(["t_done", "t_arrival"])


def test_envoy_connection_pool_waits_for_a_connection_then_refuses_past_max_pending(trace):
    # conn_pool_base.cc newStreamImpl: no idle connection, so each request waits as pending
    # and a connection opens while fewer than max_connections (2) are open: requests 0 and 1
    # go out at once. Request 2 waits (pending 1); request 3 finds max_pending (1) waiting:
    # refused (503) at once. At 1 s request 0's connection frees and takes request 2.
    servers = [{"name": "web", "count": 1, "workers": 4}]
    limits = {"max_connections": 2, "max_pending": 1}
    requests = pooled(trace, [0.0] * 4, limits, servers=servers)
    assert requests["status"].tolist() == ["rejected", "ok", "ok", "ok"]
    assert requests["t_done"].tolist() == pytest.approx([0.0, 1.0, 1.0, 2.0])


def test_envoy_opens_a_connection_to_a_host_with_none_past_max_connections(trace):
    # tryCreateNewConnection: at the cluster's limit (1 connection, to web-0), web-1 has no
    # connection at all, so one is opened for it anyway; web-0's second request waits for
    # web-0's own connection (round robin: web-0, web-1, web-0).
    requests = pooled(trace, [0.0] * 3, {"max_connections": 1}, servers=[{"name": "web", "count": 2}])
    assert requests["server"].tolist() == ["web-0", "web-1", "web-0"]
    assert requests["t_done"].tolist() == pytest.approx([1.0, 1.0, 2.0])
    assert (requests["status"] == "ok").all()


def test_a_request_waiting_for_a_connection_ends_at_its_try_timeout_unsent(trace):
    # Request 1 waits for the only connection; at its 0.5 s try timeout it leaves the wait
    # unsent. Request 0 times out too: its stream is reset, closing the connection.
    requests = pooled(
        trace, [0.0, 0.0], {"max_connections": 1},
        servers=[{"name": "web", "count": 1, "workers": 2}],
        balancer={"retries": {"max": 0, "try_timeout": "500ms"}},
    )  # fmt: skip
    assert requests["status"].tolist() == ["timeout", "timeout"]
    assert requests["t_done"].tolist() == pytest.approx([0.5, 0.5])
    assert requests["server"].tolist() == ["web-0", "web-0"]


def test_a_hedge_whose_request_was_answered_while_it_waited_is_never_sent(trace):
    # A goes out at 0 on the only connection; its hedge (at 0.1 s) and B (at 0.2 s) wait.
    # A's answer at 1 s ends its request, so the freed connection skips the hedge and takes
    # B, answered at 2 s (the server has 4 workers: only the connection limit delays B).
    requests = pooled(
        trace, [0.0, 0.2], {"max_connections": 1},
        servers=[{"name": "web", "count": 1, "workers": 4}],
        balancer={"retries": {"max": 1, "hedge": "100ms"}},
    )  # fmt: skip
    assert requests["status"].tolist() == ["ok", "ok"]
    assert requests["t_done"].tolist() == pytest.approx([1.0, 2.0])


def test_an_attempt_left_unsent_is_not_counted_out_at_its_try_timeout(trace):
    # A takes the only connection at 0; B waits for it. The clients give up on both at 0.5 s.
    # A's answer at 1 s frees the connection, which skips B (its request ended) and stays
    # open, idle. B's try timeout at 1.5 s must not end B again: that would free the
    # connection a second time, and C and D (1.6 s) would both go out at once. Instead C
    # takes the connection and D waits for it (max_connections 1): D starts at 1.9 s.
    workload = {**trace([(0.0, 1.0), (0.0, 1.0), (1.6, 0.3), (1.6, 0.15)]), "timeout": "500ms"}
    scenario = make_scenario(
        duration=2.5, workload=workload, servers=[{"name": "web", "count": 1, "workers": 4}],
        balancer={"circuit_breaker": {"max_connections": 1}, "retries": {"max": 0, "try_timeout": "1.5s"}},
    )  # fmt: skip
    requests = lbsim.simulate(scenario).requests.sort_values(["t_done", "t_arrival"])
    assert requests["status"].tolist() == ["timeout", "timeout", "ok", "ok"]
    assert requests["t_done"].tolist() == pytest.approx([0.5, 0.5, 1.9, 2.05])


def test_a_balancer_that_dies_drops_the_requests_waiting_for_a_connection(trace):
    # Request 1 waits for request 0's connection; the instance crashes at 0.5 s: the waiting
    # request is dropped then, request 0 when its answer reaches the dead instance at 1 s.
    requests = pooled(
        trace, [0.0, 0.0], {"max_connections": 1},
        faults=[{"target": "balancer-0", "kind": "crash", "at": 0.5, "duration": 10}],
    )  # fmt: skip
    assert requests["status"].tolist() == ["dropped", "dropped"]
    assert requests["t_done"].tolist() == pytest.approx([0.5, 1.0])


def test_max_pending_needs_max_connections_and_layer_7():
    with pytest.raises(lbsim.ConfigError, match="max_pending must come with max_connections"):
        lbsim.load_scenario(make_scenario(balancer={"circuit_breaker": {"max_pending": 2}}))
    for key in ("max_connections", "max_pending"):
        with pytest.raises(lbsim.ConfigError, match=f"{key} must be absent at layer 4"):
            lbsim.load_scenario(make_scenario(balancer={"layer": 4, "circuit_breaker": {key: 2}}))


def test_a_retry_waits_a_full_jitter_back_off():
    # web-0 is down. Round robin sends every request there first (the retry's pick moves the
    # rotation on to web-1), and each is retried on web-1 after U[0, 25 ms).
    crash = {"target": "web-0", "kind": "crash", "at": 0.0, "duration": 100.0}
    workload = {"arrivals": "deterministic", "rate": 10, "size": "det(5ms)", "clients": 1}
    retries = {"retries": {"max": 1, "on": ["connect_failure"]}}
    servers = [{"name": "web", "count": 2}]
    scenario = make_scenario(
        duration=20.0, workload=workload, servers=servers, faults=[crash], balancer=retries
    )
    result = lbsim.simulate(scenario)
    latency = result.requests["latency"].to_numpy()
    retried = latency[latency > 0.005 + 1e-9]
    assert result.summary.loc[0, "n_retries"] == len(retried) == 200
    assert retried.min() >= 0.005 and retried.max() < 0.005 + 0.025
    assert retried.mean() == pytest.approx(0.005 + 0.0125, abs=0.003)


@pytest.mark.parametrize("retries", [None, {"max": 1, "on": ["connect_failure"]}])
def test_a_client_timeout_names_the_server_it_waited_on(retries):
    hang = {"target": "web-1", "kind": "hang", "at": "0.95s", "duration": "100s"}
    scenario = make_scenario(
        duration=3.0,
        workload={"arrivals": "deterministic", "rate": 10, "size": "det(10ms)", "timeout": "1s"},
        servers=[{"name": "web", "count": 2}],
        balancer={"retries": retries} if retries else {},
        faults=[hang],
    )
    requests = lbsim.simulate(scenario).requests
    timed_out = requests[requests["status"] == "timeout"]
    # Round robin sends every other request (k = 11, 13, ...) to web-1, which hangs from 0.95 s:
    # each waits there for its 1 s timeout, with or without a retry policy.
    assert np.round(timed_out["t_arrival"].to_numpy() * 10).astype(int).tolist() == list(range(11, 30, 2))
    assert (timed_out["server"] == "web-1").all()


@pytest.mark.parametrize(
    ("check", "timeout"),
    [
        # HAProxy configuration.txt, "timeout check": if it is not set, HAProxy uses "inter"
        # as the complete check timeout (connect + read).
        ({"interval": "5s"}, 5.0),
        ({"interval": "5s", "style": "haproxy"}, 5.0),
        # Envoy requires a timeout; without one lbsim uses 1 s.
        ({"interval": "5s", "style": "envoy"}, 1.0),
        ({"interval": "5s", "timeout": "300ms"}, 0.3),
    ],
)
def test_a_check_times_out_as_its_style_does(check, timeout):
    scenario = lbsim.load_scenario(make_scenario(balancer={"health_check": check}))
    assert plan(scenario).tiers[0].health_check.timeout == timeout


@pytest.mark.parametrize(("on", "n_retries"), [(["reset"], 1), (["error"], 1), (["connect_failure"], 0)])
def test_a_reset_is_retried_on_reset_or_error(trace, on, n_retries):
    # A server crashes 5 ms into a 10 ms request: the attempt ends in a reset, which NGINX's
    # proxy_next_upstream "error" retries (an error reading the response header) and Envoy's
    # "5xx" covers (lbsim's error); connect_failure alone does not retry it.
    scenario = make_scenario(
        duration=1.0,
        workload=trace([(0.0, 0.01)]),
        servers=[{"name": "web", "count": 2}],
        faults=[{"target": "web-0", "kind": "crash", "at": 0.005, "duration": 0.5}],
        balancer={"retries": {"on": on, "backoff": 0}},
    )
    summary = lbsim.simulate(scenario).summary.loc[0]
    assert (summary["n_retries"], summary["n_ok"]) == (n_retries, n_retries)


@pytest.mark.parametrize(("on", "n_retries"), [(["reset"], 0), (["error"], 1)])
def test_a_5xx_answer_is_retried_on_error_not_on_reset(trace, on, n_retries):
    # NGINX retries a 500 only with http_500 listed; its "error" (lbsim's reset) does not.
    scenario = make_scenario(
        duration=1.0,
        workload=trace([(0.0, 0.01)]),
        servers=[{"name": "web", "count": 2}],
        faults=[{"target": "web-0", "kind": "errors", "probability": 1.0, "at": 0.0, "duration": 0.5}],
        balancer={"retries": {"on": on, "backoff": 0}},
    )
    assert lbsim.simulate(scenario).summary.loc[0, "n_retries"] == n_retries


def test_a_reload_restarts_round_robin_at_the_first_backend(trace):
    # NGINX and HAProxy reloads start a new process with fresh policy state: round robin over
    # 4 backends with two requests between reloads (every 1 s) only ever uses the first two.
    arrivals = [(t + dt, 0.01) for t in range(3) for dt in (0.1, 0.6)]
    scenario = make_scenario(
        duration=3.5,
        workload=trace(arrivals),
        servers=[{"name": "web", "count": 4}],
        balancer={"policy": "round_robin", "reload": {"every": "1s"}},
    )
    result = lbsim.simulate(scenario)
    assert result.requests.sort_values("t_arrival")["server"].tolist() == ["web-0", "web-1"] * 3
    assert (result.events["event"] == "reloaded").sum() == 3
    plain = lbsim.simulate(scenario | {"balancer": {"cost": 0, "policy": "round_robin"}})
    served = plain.requests.sort_values("t_arrival")["server"].tolist()
    assert served == [f"web-{i}" for i in (0, 1, 2, 3, 0, 1)]


def test_a_reload_forgets_the_requests_the_old_process_holds(trace):
    # least_conn: a 5 s request on web-0 from 0.1 s. At 1.1 s web-0 is busy, so the same
    # process sends to web-1; after a reload at 1 s the new process counts nothing on web-0
    # and its fresh tie-break picks web-0 again. The old request's end (5.1 s) is not taken
    # off the new process's count: at 6.1 s, after another reload, web-0 is first again.
    arrivals = [(0.1, 5.0), (1.1, 0.01), (6.1, 0.01)]
    balancer = {"policy": "least_connections", "reload": {"every": "1s"}}
    scenario = make_scenario(
        duration=7.0, workload=trace(arrivals), servers=[{"name": "web", "count": 2}], balancer=balancer
    )
    served = lbsim.simulate(scenario).requests.sort_values("t_arrival")["server"].tolist()
    assert served == ["web-0", "web-0", "web-0"]
    plain = scenario | {"balancer": {"cost": 0, "policy": "least_connections"}}
    assert lbsim.simulate(plain).requests.sort_values("t_arrival")["server"].tolist()[:2] == [
        "web-0",
        "web-1",
    ]
