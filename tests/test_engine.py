"""Deterministic workloads whose every latency is computed by hand."""

import numpy as np
import pytest

import lbsim
from tests.helpers import make_scenario


def requests_of(scenario, **kwargs):
    return lbsim.simulate(scenario, **kwargs).requests.sort_values("t_arrival").reset_index(drop=True)


def test_light_deterministic_load_has_no_waiting():
    # Arrivals every 100 ms, 50 ms of work, one worker: nobody waits, utilization is 1/2.
    result = lbsim.simulate(make_scenario())
    assert result.requests["latency"].to_numpy() == pytest.approx([0.05] * 10)
    assert result.summary.loc[0, "utilization_mean"] == pytest.approx(0.5)
    assert result.summary.loc[0, "throughput"] == pytest.approx(10.0)


def test_overloaded_fcfs_queue_grows_by_hand():
    # Arrivals at 0.1 k, service 150 ms: request k starts at 0.15 k and waits 0.05 k.
    workload = {"arrivals": "deterministic", "rate": 10, "size": "det(150ms)"}
    requests = requests_of(make_scenario(workload=workload))
    k = np.arange(10)
    assert requests["t_start"].to_numpy() == pytest.approx(0.15 * k)
    assert requests["latency"].to_numpy() == pytest.approx(0.05 * k + 0.15)


def test_speed_divides_the_service_time():
    servers = [{"name": "web", "speed": 2.5}]
    requests = requests_of(make_scenario(servers=servers))
    assert requests["latency"].to_numpy() == pytest.approx([0.02] * 10)


def test_processor_sharing_splits_the_server(trace):
    # A (size 0.3) alone for 0.1 s; then A and B share at half speed until B's 0.1 is done at
    # 0.3; A has 0.1 left and ends at 0.4. Latencies: A 0.4, B 0.2.
    scenario = make_scenario(
        workload=trace([(0.0, 0.3), (0.1, 0.1)]), servers=[{"name": "web", "discipline": "ps"}]
    )
    assert requests_of(scenario)["latency"].to_numpy() == pytest.approx([0.4, 0.2])


def test_processor_sharing_holds_two_tries_of_one_request_admitted_at_once(trace):
    # The server hangs from t=0, so virtual time stands still: every try of the request at
    # 0 is admitted at the same virtual time with the same size (equal keys, same request).
    # Each try times out after 100 ms and is retried at once (no back-off); after 2 retries
    # the request ends as a timeout at 0.3.
    scenario = make_scenario(
        workload=trace([(0.0, 0.03)]),
        servers=[{"name": "web", "discipline": "ps"}],
        balancer={
            "policy": "round_robin",
            "retries": {"max": 2, "on": ["timeout"], "try_timeout": "100ms", "backoff": 0},
        },
        faults=[{"target": "web-0", "kind": "hang", "at": 0.0, "duration": 0.5}],
    )
    result = lbsim.simulate(scenario)
    assert result.requests["status"].tolist() == ["timeout"]
    assert result.requests["latency"].to_numpy() == pytest.approx([0.3])


def test_fcfs_serves_the_same_trace_in_order(trace):
    scenario = make_scenario(workload=trace([(0.0, 0.3), (0.1, 0.1)]))
    assert requests_of(scenario)["latency"].to_numpy() == pytest.approx([0.3, 0.3])


def test_processor_sharing_with_two_workers(trace):
    # Three jobs of size 0.2 at time 0 on 2 workers: each runs at 2/3 speed, all end at 0.3.
    scenario = make_scenario(
        workload=trace([(0.0, 0.2)] * 3),
        servers=[{"name": "web", "discipline": "ps", "workers": 2}],
    )
    result = lbsim.simulate(scenario)
    assert result.requests["latency"].to_numpy() == pytest.approx([0.3] * 3)
    # Both workers busy for 0.3 s of the 1 s run.
    assert result.servers.loc[0, "utilization"] == pytest.approx(0.3)


def test_full_queue_rejects(trace):
    # One worker, one waiting place, three requests at once: served, queued, rejected.
    scenario = make_scenario(workload=trace([(0.0, 0.2)] * 3), servers=[{"name": "web", "queue": 1}])
    result = lbsim.simulate(scenario)
    requests = result.requests.sort_values("t_done")
    assert list(requests["status"]) == ["rejected", "ok", "ok"]
    assert requests["latency"].to_numpy() == pytest.approx([0.0, 0.2, 0.4])
    assert result.summary.loc[0, "n_rejected"] == 1
    assert result.summary.loc[0, "error_rate"] == pytest.approx(1 / 3)


def test_processor_sharing_queue_bound_counts_admitted_requests(trace):
    servers = [{"name": "web", "discipline": "ps", "workers": 1, "queue": 1}]
    scenario = make_scenario(workload=trace([(0.0, 0.2)] * 3), servers=servers)
    assert lbsim.simulate(scenario).summary.loc[0, "n_rejected"] == 1


def test_warmup_requests_are_simulated_but_not_counted():
    result = lbsim.simulate(make_scenario(warmup=0.5))
    assert result.summary.loc[0, "n_requests"] == 5
    assert len(result.requests) == 10
    # The queue is empty at 0.5 s, so utilization over [0.5, 1) is still exactly 1/2.
    assert result.summary.loc[0, "utilization_mean"] == pytest.approx(0.5)


def test_warmup_backlog_delays_counted_requests(trace):
    # A 0.5 s request at 0 keeps the server busy; the request at 0.4 (counted, warm-up 0.3)
    # waits until 0.5 and finishes at 0.6.
    scenario = make_scenario(warmup=0.3, workload=trace([(0.0, 0.5), (0.4, 0.1)]))
    summary = lbsim.simulate(scenario).summary.loc[0]
    assert summary["n_requests"] == 1
    assert summary["latency_mean"] == pytest.approx(0.2)
    # Busy from 0.3 to 0.6 in a window of 0.7 s.
    assert summary["utilization_mean"] == pytest.approx(0.3 / 0.7)


def test_round_robin_splits_utilization_evenly():
    scenario = make_scenario(servers=[{"name": "web", "count": 2}], balancer={"policy": "round_robin"})
    result = lbsim.simulate(scenario)
    assert result.servers["utilization"].to_numpy() == pytest.approx([0.25, 0.25])
    assert list(result.servers["n_requests"]) == [5, 5]
    assert result.summary.loc[0, "imbalance"] == pytest.approx(1.0)


def test_client_timeout_ends_the_request_while_the_server_works_on(trace):
    workload = trace([(0.0, 0.6), (0.1, 0.1)]) | {"timeout": 0.5}
    result = lbsim.simulate(make_scenario(workload=workload))
    requests = result.requests.sort_values("t_arrival")
    # The first times out at 0.5; the server still finishes it at 0.6, so the second waits
    # until 0.6 and ends at 0.7 (latency 0.6 > 0.5): it times out too, at 0.6.
    assert list(requests["status"]) == ["timeout", "timeout"]
    assert requests["t_done"].to_numpy() == pytest.approx([0.5, 0.6])
    assert result.servers.loc[0, "utilization"] == pytest.approx(0.7)


def test_a_run_follows_late_requests_past_the_duration(trace):
    # The request arriving at 0.9 needs 0.5 s: it ends at 1.4, after the 1 s duration.
    result = lbsim.simulate(make_scenario(workload=trace([(0.9, 0.5)])))
    assert result.summary.loc[0, "n_ok"] == 1
    assert result.summary.loc[0, "latency_max"] == pytest.approx(0.5)
    # Utilization counts [0, 1) only: 0.1 s busy.
    assert result.summary.loc[0, "utilization_mean"] == pytest.approx(0.1)


def test_requests_still_in_flight_at_twice_the_duration_are_counted(trace):
    result = lbsim.simulate(make_scenario(workload=trace([(0.5, 5.0)])))
    summary = result.summary.loc[0]
    assert (summary["n_requests"], summary["n_ok"], summary["n_in_flight"]) == (1, 0, 1)
    assert summary["error_rate"] == 1.0


def overloaded():
    """8 requests/s for 1 s (at 0, 0.125, ... 0.875) of 0.375 s each on one server: 1.5 times
    what it can serve. They end at 0.375 k (k = 1..8): two within the 1 s duration, five
    before the run stops at 2 s; three are still in flight then."""
    return make_scenario(window=0.25, workload={"arrivals": "deterministic", "rate": 8, "size": "det(375ms)"})


def test_throughput_counts_completions_within_the_run_not_arrivals():
    # An overloaded server completes what it can: 2 requests in [0, 1), so 2/s, though 5 of
    # the 8 arrivals end ok (after the duration) and 8/s were offered.
    summary = lbsim.simulate(overloaded()).summary.loc[0]
    assert (summary["n_ok"], summary["n_in_flight"]) == (5, 3)
    assert summary["throughput"] == 2.0
    assert summary["offered_load"] == 8 * 0.375
    # Per window, by completion: 0.375 | 0.75 in [0.75, 1): 0, 4, 0, 4 per second.
    timeseries = lbsim.simulate(overloaded()).timeseries
    assert timeseries["throughput"].tolist() == [0.0, 4.0, 0.0, 4.0]


def test_requests_in_flight_when_the_run_stops_are_kept_with_that_status():
    # Every request appears once: the three still in flight at 2 s as in_flight, with no end
    # and no server; error_rate counts them as not ok (3 of 8).
    result = lbsim.simulate(overloaded())
    requests = result.requests
    assert len(requests) == 8 and requests["status"].value_counts().to_dict()["in_flight"] == 3
    in_flight = requests[requests["status"] == "in_flight"]
    assert in_flight["t_arrival"].tolist() == pytest.approx([0.625, 0.75, 0.875])
    assert in_flight["t_done"].isna().all() and (in_flight["server"] == "").all()
    assert result.summary.loc[0, "error_rate"] == pytest.approx(3 / 8)


def test_closed_users_follow_the_response_time_law():
    # 5 users, think 0.1 s, service 0.05 s on one worker: each cycle is 0.15 s or more.
    # With deterministic times and no contention at first, users desynchronise only by
    # queueing; the response-time law R = N / X - Z holds exactly on the counted requests.
    scenario = make_scenario(
        duration=60.0,
        warmup=5.0,
        workload={
            "arrivals": {"kind": "closed", "users": 5, "think": "exp(100ms)"},
            "size": "exp(50ms)",
        },
    )
    summary = lbsim.simulate(scenario).summary.loc[0]
    throughput = summary["n_ok"] / 55.0
    assert summary["latency_mean"] == pytest.approx(5 / throughput - 0.1, rel=0.05)


def test_time_series_windows_and_active_samples():
    result = lbsim.simulate(
        make_scenario(window=0.25, workload={"arrivals": "deterministic", "rate": 10, "size": "det(150ms)"})
    )
    ts = result.timeseries
    assert ts["t_start"].to_numpy() == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert list(ts.columns[-1:]) == ["active_web-0"]
    # At t = 0.25: requests from 0, .1, .2 arrived, the first ended at 0.15: 2 at the server.
    assert ts["active_web-0"].tolist()[:2] == [0, 2]


@pytest.mark.parametrize("change", [{"t_join": 5.0}, {"t_leave": 5.0}])
def test_utilization_counts_the_time_a_server_was_a_member(change):
    # 10 requests/s of 50 ms, round robin, 10 s. One server is alone for 5 s (busy 0.5), then
    # shares (0.25 each): 0.375 over the run. The other is a member for 5 s only, busy 0.25
    # then, whether it joins at 5 s or leaves then (not 0.125 as busy time over 10 s).
    scenario = make_scenario(
        duration=10.0,
        workload={"arrivals": "deterministic", "rate": 10, "size": "det(50ms)"},
        servers=[{"name": "a", "count": 1}, {"name": "b", "count": 1, **change}],
        balancer={"policy": "round_robin"},
    )
    result = lbsim.simulate(scenario)
    assert result.servers["utilization"].tolist() == pytest.approx([0.375, 0.25], abs=0.006)
    assert result.summary.loc[0, "imbalance"] == pytest.approx(0.375 / 0.3125, abs=0.03)
