"""The modern policies against hand-checked choices from the systems they follow."""

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from lbsim.errors import ConfigError
from lbsim.policies import Backend, make_policy
from lbsim.policies.hashing import envoy_probe_order
from lbsim.policies.power_of_choices import distinct_sample
from lbsim.tools.remap import remap
from lbsim.workload import Request
from tests.test_policies import complete, dispatch, fleet, request, start


def share_of(policy, index, n=40_000):
    return np.mean([policy.choose(request()).index == index for _ in range(n)])


def test_p2c_with_replacement_picks_the_busier_of_two_a_quarter_of_the_time():
    # Envoy#11004: with 2 backends both samples hit the busier one with probability 1/4.
    backends = fleet(1, 1)
    p = start("p2c", backends)
    dispatch(p, backends[0])
    assert share_of(p, 0) == pytest.approx(0.25, abs=0.01)


def test_p2c_without_replacement_never_picks_the_busier_of_two():
    backends = fleet(1, 1)
    p = start({"name": "p2c", "replacement": False}, backends)
    dispatch(p, backends[0])
    assert share_of(p, 0, 2000) == 0.0


def test_distinct_sample_is_rands_shuffling_floyd():
    # rand src/seq/index.rs, sample_floyd (what tower's P2C samples with): for j in n-k..n,
    # t = gen_range(0..=j); a t drawn before gives its place to j; t is pushed. Worked by hand
    # for n=2, k=2: j=0 draws 0; j=1 draws t=0 (u < 1/2) -> [1, 0], or t=1 -> [0, 1].
    assert distinct_sample(2, 2, iter([0.9, 0.3]).__next__) == [1, 0]
    assert distinct_sample(2, 2, iter([0.9, 0.7]).__next__) == [0, 1]
    # n=5, k=3: j=2 draws 1 -> [1]; j=3 draws 1 again -> [3, 1]; j=4 draws 4 -> [3, 1, 4].
    assert distinct_sample(5, 3, iter([0.5, 0.3, 0.9]).__next__) == [3, 1, 4]


def test_p2c_without_replacement_splits_ties_evenly():
    # tower: chosen = aidx if aload <= bload, with (aidx, bidx) in random order, so two idle
    # backends each win half the picks (before: the first listed always won the tie).
    backends = fleet(1, 1)
    p = start({"name": "p2c", "replacement": False}, backends)
    assert share_of(p, 1, 20_000) == pytest.approx(0.5, abs=0.015)


def test_p2c_three_choices_follows_the_order_statistics():
    # Loads 0, 1, 2; three samples with replacement: the busiest wins only if all three hit it
    # (1/27); the idle one wins unless it is never drawn (1 - (2/3)^3 = 19/27).
    backends = fleet(1, 1, 1)
    p = start({"name": "p2c", "choices": 3}, backends)
    dispatch(p, backends[1])
    dispatch(p, backends[2])
    dispatch(p, backends[2])
    picks = np.bincount([p.choose(request()).index for _ in range(54_000)], minlength=3) / 54_000
    assert picks == pytest.approx([19 / 27, 7 / 27, 1 / 27], abs=0.008)


def test_p2c_with_unequal_weights_is_envoys_edf_over_weight_per_active():
    # Weights 2 and 1, nothing active: EDF serves deadlines 1/2, 1, 1, 3/2, 2, 2, ...: a, b, a
    # in every cycle of 3 picks, whatever the random number of warm-up picks.
    backends = fleet(2, 1)
    p = start("p2c", backends)
    assert share_of(p, 0, 3000) == pytest.approx(2 / 3, abs=1e-3)
    # With a at 3 active, its weight is 2 / (3 + 1) = 0.5 against b's 1: b gets 2 picks in 3.
    for _ in range(3):
        dispatch(p, backends[0])
    picks = [p.choose(request()).index for _ in range(3000)]
    assert np.mean(np.array(picks[30:]) == 1) == pytest.approx(2 / 3, abs=0.01)


def test_p2c_weighted_schedule_is_built_from_weight_per_active():
    # Envoy builds the EDF schedule with hostWeight = weight / (active + 1) (least_request_lb.cc,
    # EdfLoadBalancerBase::refresh). Weights 2 and 1 with a at 9 active: a's is 0.2 (deadline
    # 5), b's 1 (deadlines 1, 2, 3, 4): the first 3 picks are b, so after 0-2 warm-up picks
    # the next is always b. Built from raw weights, a (deadline 0.5) would come first a third
    # of the time.
    firsts = []
    for seed in range(60):
        backends = fleet(2, 1)
        backends[0].active = 9
        firsts.append(start("p2c", backends, seed).choose(request()).index)
    assert firsts == [1] * 60


def test_p2c_rejects_one_choice():
    with pytest.raises(ConfigError, match=r"p2c: choices must be an integer from 2 to 1000; got 1\."):
        make_policy({"name": "p2c", "choices": 1})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # true is not 1, and a count that would make every pick draw 2^31 times is refused.
        ({"name": "p2c", "choices": True}, "p2c: choices must be an integer from 2 to 1000; got True."),
        (
            {"name": "p2c", "choices": 2**31},
            "p2c: choices must be an integer from 2 to 1000; got 2147483648.",
        ),
        ({"name": "p2c", "bias": float("inf")}, "p2c: bias must be a number >= 0; got inf."),
        (
            {"name": "chash_random", "draws": True},
            "chash_random: draws must be an integer from 1 to 1000; got True.",
        ),
        ({"name": "chash_random", "draws": 10**6}, "chash_random: draws must be an integer from 1 to 1000"),
        (
            {"name": "ring_hash", "min_ring_size": 2**31},
            "ring_hash: min_ring_size must be an integer from 1 to 8388608",
        ),
        ({"name": "ring_hash", "min_ring_size": True}, "ring_hash: min_ring_size must be an integer from 1"),
        (
            {"name": "maglev", "table_size": 2**61 - 1},
            "maglev: table_size must be a prime number up to 5000011",
        ),
        ({"name": "least_response_time", "fail_timeout": True}, "fail_timeout must be whole seconds from 1"),
        (
            {"name": "peak_ewma", "decay": float("nan")},
            "peak_ewma: decay must be a number of seconds > 0; got nan.",
        ),
    ],
)
def test_policy_parameters_are_bounded_and_never_booleans(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_policy(spec)


def test_jsq_picks_the_fewest_in_system_and_breaks_ties_at_random():
    backends = fleet(1, 1, 1)
    p = start("jsq", backends)
    dispatch(p, backends[0])
    dispatch(p, backends[0])
    dispatch(p, backends[2])
    assert p.choose(request()).index == 1
    complete(p, backends[2])
    picks = np.bincount([p.choose(request()).index for _ in range(4000)], minlength=3) / 4000
    assert picks == pytest.approx([0, 0.5, 0.5], abs=0.03)


class FakeServer:
    def __init__(self, active, work):
        self.active, self.work = active, work

    def work_left(self):
        return self.work


def test_least_work_left_reads_the_servers_unfinished_work():
    backends = [
        Backend(i, f"s{i}", server=FakeServer(a, w))
        for i, (a, w) in enumerate([(3, 0.2), (1, 0.9), (2, 0.1)])
    ]
    p = start("least_work_left", backends)
    assert p.choose(request()).index == 2
    # jsq reads the same servers' request counts instead.
    assert start("jsq", backends).choose(request()).index == 1


def test_jiq_serves_reported_idle_servers_first_then_random():
    backends = fleet(1, 1, 1)
    p = start("jiq", backends)
    first = []
    for _ in range(3):
        b = p.choose(request())
        dispatch(p, b)
        first.append(b.index)
    assert first == [0, 1, 2]
    complete(p, backends[1])  # server 1 is idle again and reports to this balancer
    assert p.choose(request()).index == 1


def at(now):
    """A request whose policy-visible now is ``now`` seconds."""
    return Request(0, now, 0.01, 0)


def test_least_response_time_follows_nginx_least_time():
    # ngx_http_upstream_least_time_module.c (NGINX 1.31): eta = rt x (1 + conns), rt in ms
    # raised to the next multiple of 20 above it; a backend never chosen has rt 0 -> 20.
    backends = fleet(1, 1)
    p = start("least_response_time", backends)
    # Both unmeasured: eta 20 each, a tie; smooth round robin over weights 1, 1 picks a.
    assert p.choose(at(0)).name == "a"
    # a answers in 50 ms: avg 50 (the first sample seeds it), eta 60; b's is still 20.
    dispatch(p, backends[0])
    complete_after(p, backends[0], 0.050)
    assert p.choose(at(0)).name == "b"
    # b answers in 10 ms: eta 20 x 1 = 20 against a's 60.
    dispatch(p, backends[1])
    complete_after(p, backends[1], 0.010)
    assert p.choose(at(0)).name == "b"
    # Two requests active on b: 20 x 3 = 60 ties a's 60; smooth round robin among the tied
    # from current weights a -1, b 1 (after the first pick): (0, 2) -> b, (1, 1) -> a.
    dispatch(p, backends[1])
    dispatch(p, backends[1])
    assert [p.choose(at(0)).name for _ in range(2)] == ["b", "a"]
    # The average in whole ms: round(0.05 x 100 + 0.95 x 50) = round(52.5 + 0.5) = 53.
    dispatch(p, backends[0])
    complete_after(p, backends[0], 0.100)
    assert p._average[0] == 53


def test_least_response_time_ignores_failures_and_counts_an_unmeasured_backend_as_20_ms():
    # free_least_time_peer: "only successful attempts are accounted"; a refused attempt in
    # 1 ms leaves the average at 200 ms (before: it dragged it towards 0 and the failing
    # backend won every pick).
    backends = fleet(1, 1)
    p = start("least_response_time", backends)
    p.choose(at(0))
    dispatch(p, backends[0])
    complete_after(p, backends[0], 0.200)
    dispatch(p, backends[0])
    complete_after(p, backends[0], 0.001, ok=False)
    assert p._average[0] == 200
    # A backend that joins has rt 0 -> 20 x (1 + active), not 0: with 2 requests active on
    # it, 60 against an idle peer measured at 40 ms (-> 60): a tie, shared, where rt 0
    # gave the newcomer every pick.
    joined = Backend(2, "c")
    q = start("least_response_time", [backends[1]])
    q.choose(at(0))
    dispatch(q, backends[1])
    complete_after(q, backends[1], 0.040)
    q.update([backends[1], joined])
    dispatch(q, joined)
    dispatch(q, joined)
    picks = [q.choose(at(0)).name for _ in range(4)]
    assert sorted(set(picks)) == ["b", "c"]


def test_least_response_time_halves_rt_once_per_idle_fail_timeout():
    # ngx_http_upstream_least_time_eta: after now - checked > fail_timeout, rt >>= (now -
    # checked) / (fail_timeout + 1). a at 100 ms last chosen at 0 s: at 11 s rt is 50 -> 60,
    # at 22 s 25 -> 40; b at 30 ms (-> 40) chosen at 22 s stays 40: at 22 s a ties b.
    backends = fleet(1, 1)
    p = start("least_response_time", backends)
    assert p._eta(backends[0], 0) == 20  # never chosen: rt decays to 0
    p._checked.update({0: 0, 1: 22})
    p._average.update({0: 100, 1: 30})
    assert [p._eta(backends[0], t) for t in (10, 11, 22)] == [120, 60, 40]
    assert p._eta(backends[1], 22) == 40


def complete_after(policy, backend, latency, ok=True, t_sent=0.0):
    """The answer to a request sent at ``t_sent`` arrives ``latency`` later (the policy's now)."""
    backend.active -= 1
    r = Request(0, t_sent, 0.01, 0, clock=SimpleNamespace(now=t_sent + latency))
    policy.on_complete(backend, r, latency, ok)


def test_peak_ewma_jumps_to_peaks_and_decays():
    backends = fleet(1, 1)
    p = start({"name": "peak_ewma", "decay": 10.0, "default_rtt": 0.03}, backends)
    a = backends[0]
    dispatch(p, a)
    dispatch(p, a)
    complete_after(p, a, 0.1, t_sent=0.0)  # above 30 ms: the estimate jumps to 100 ms at t = 0.1
    assert p._estimate[0] == pytest.approx((0.1, 0.1))
    complete_after(p, a, 0.02, t_sent=10.08)  # 10 s later: 0.1 e^-1 + 0.02 (1 - e^-1)
    assert p._estimate[0][0] == pytest.approx(0.1 * math.exp(-1) + 0.02 * (1 - math.exp(-1)))


def test_peak_ewma_default_rtt_decays_from_the_join_as_towers_does():
    # tower src/load/peak_ewma.rs test default_decay: default 10 ms, decay 1 s; the cost is
    # 10 ms at once, in (9, 10) ms 100 ms later and in (8, 9) ms after 200 ms (10 e^-0.1,
    # 10 e^-0.2). Before, an unmeasured backend kept 10 ms for ever.
    backends = fleet(1, 1)
    p = start({"name": "peak_ewma", "decay": 1.0, "default_rtt": 0.010}, backends)
    p.choose(at(0.0))
    assert p._cost(backends[1], 0.0) == pytest.approx(0.010)
    assert 0.009 < p._cost(backends[1], 0.1) < 0.010
    assert 0.008 < p._cost(backends[1], 0.2) < 0.009


def test_peak_ewma_sends_traffic_to_a_backend_that_fails_fast():
    backends = fleet(1, 1)
    p = start("peak_ewma", backends)
    for t in range(20):
        for b in backends:
            dispatch(p, b)
        complete_after(p, backends[0], 0.001, ok=False, t_sent=t * 0.1)  # fast 5xx
        complete_after(p, backends[1], 0.050, t_sent=t * 0.1)  # slow successes
    r = Request(0, 2.0, 0.01, 0)
    assert all(p.choose(r).name == "a" for _ in range(20))


@pytest.mark.parametrize("name", ["ring_hash", "maglev"])
def test_consistent_hashing_moves_only_what_it_must(name):
    n, keys = 10, 20_000
    result = remap(name, backends=n, keys=keys)
    p = start(name, [Backend(i, f"web-{i}") for i in range(n)])
    owned = np.mean([p.choose(Request(k, 0, 0, k)).index == n // 2 for k in range(keys)])
    if name == "ring_hash":
        # Only the removed backend's arcs move: exactly the keys it owned.
        assert result.moved_on_remove == pytest.approx(owned, abs=1e-12)
    else:
        # Maglev refills the table: the removed backend's keys and a few more.
        assert owned <= result.moved_on_remove <= owned + 0.02
    assert result.moved_on_remove == pytest.approx(1 / n, abs=0.02)
    assert result.moved_on_add == pytest.approx(1 / (n + 1), abs=0.02)


def test_modulo_hashing_moves_almost_every_key():
    result = remap("ip_hash", backends=10, keys=20_000)
    assert result.moved_on_remove == pytest.approx(0.9, abs=0.01)
    assert result.moved_on_add == pytest.approx(10 / 11, abs=0.01)


def test_maglev_table_is_even_and_weighted():
    from lbsim.policies.hashing import maglev_table

    table = np.bincount(maglev_table((("a", 1), ("b", 1), ("c", 3)), 65537))
    # Weight 3 of 5: the rounds rule gives it 3/5 of the slots, within one round.
    assert table / 65537 == pytest.approx([0.2, 0.2, 0.6], abs=1e-3)


def test_ring_points_are_proportional_to_weight():
    p = start({"name": "ring_hash", "min_ring_size": 4000}, fleet(1, 3))
    assert np.bincount(p._owners).tolist() == [1000, 3000]


def test_hash_keys_follow_path_session_and_header():
    backends = fleet(*[1] * 8)
    by_path = start({"name": "maglev", "key": "path"}, backends)
    r1, r2 = request(1), request(2)
    r1.path = r2.path = "/cart"
    assert by_path.choose(r1) is by_path.choose(r2)
    by_header = start({"name": "ring_hash", "key": "header:X-User"}, backends)
    r1.headers, r2.headers = {"X-User": "u7"}, {"X-User": "u7"}
    assert by_header.choose(r1) is by_header.choose(r2)


def test_bounded_load_caps_every_backend():
    # Every request has the same key, so plain Maglev would send all 100 to one backend.
    backends = fleet(1, 1, 1, 1)
    p = start({"name": "maglev", "key": "path", "balance_factor": 1.25}, backends)
    for _ in range(100):
        dispatch(p, p.choose(request()))
    # Envoy takes a host while its active requests <= its slots; for the 100th request (99
    # active): ceil(ceil(100 x 1.25) / 4) = 32 slots, so a backend ends with at most 33.
    assert max(b.active for b in backends) <= 33
    assert sum(b.active for b in backends) == 100


def test_envoy_probe_order_matches_envoys_test_vectors():
    # test/extensions/load_balancing_policies/common/thread_aware_lb_impl_test.cc: "The random
    # shuffle sequence of 5 elements with seed 2 is 2 1 0 4 3", "with seed 6 is 4 0 2 3 1
    # and with 7 it is 0 1 4 3 2".
    assert list(envoy_probe_order(2, 5)) == [2, 1, 0, 4, 3]
    assert list(envoy_probe_order(6, 5)) == [4, 0, 2, 3, 1]
    assert list(envoy_probe_order(7, 5)) == [0, 1, 4, 3, 2]


def test_bounded_load_overloads_a_host_only_above_its_slots(monkeypatch):
    # Envoy's ActualHostOverloaded: 5 equal hosts, the key hashes to 2 (host 2); nothing else
    # active, so ceil(1 x 100%) = 1 slot each. Host 2 with 1 active is at its slots: taken
    # (overload 1/1 <= 1). With 2 active it is overloaded and the probe order for hash 2
    # (2 1 0 4 3) gives host 1.
    backends = fleet(1, 1, 1, 1, 1)
    p = start({"name": "maglev", "key": "path", "balance_factor": 1.0}, backends)
    monkeypatch.setattr(p, "_hash", lambda text, seed=0: 2)
    monkeypatch.setattr(p, "lookup", lambda h: h)
    backends[2].active = 1
    assert p.choose(request()).index == 2
    backends[2].active = 2
    assert p.choose(request()).index == 1


def test_hash_policy_parameters_are_checked():
    with pytest.raises(ConfigError, match="key must be 'client', 'session', 'path' or 'header:<name>'"):
        make_policy({"name": "ring_hash", "key": "cookie"})
    with pytest.raises(
        ConfigError, match=r"table_size must be a prime number up to 5000011 \(Envoy.s largest\); got 65536"
    ):
        make_policy({"name": "maglev", "table_size": 65536})


def test_pick_first_sticks_to_the_first_reachable_backend_until_it_fails():
    # gRPC pick_first: the first address that works gets every call; when it fails the
    # channel starts again from the top of the list, so a recovered earlier address does
    # not win the traffic back from a working later one.
    a, b, c = backends = fleet(1, 1, 1)
    p = start("pick_first", backends)
    assert {p.choose(request()).index for _ in range(20)} == {a.index}
    p.update([b, c])  # a fails
    assert p.choose(request()) is b
    p.update(backends)  # a recovers; b still works
    assert p.choose(request()) is b
    p.update([a, c])  # b fails: from the top, a
    assert p.choose(request()) is a


def test_pick_first_with_a_shuffled_address_list_spreads_clients():
    # gRFC A62: each channel shuffles its address list, so each backend is first for a third
    # of the clients (here, of the policy instances).
    firsts = [
        start({"name": "pick_first", "shuffle_address_list": True}, fleet(1, 1, 1), seed)
        .choose(request())
        .index
        for seed in range(3000)
    ]
    assert np.bincount(firsts, minlength=3) / 3000 == pytest.approx([1 / 3] * 3, abs=0.03)


def test_edf_round_robin_with_equal_weights_rotates_from_a_random_start():
    # Envoy round_robin_lb.h unweightedHostPick: hosts[rr_index++ % size], rr_index seeded at
    # random, so instances start at different hosts but each then cycles in list order.
    starts = set()
    for seed in range(20):
        backends = fleet(1, 1, 1)
        p = start("edf_round_robin", backends, seed)
        picks = [p.choose(request()).index for _ in range(6)]
        assert picks == [(picks[0] + k) % 3 for k in range(6)]
        starts.add(picks[0])
    assert starts == {0, 1, 2}


def test_edf_round_robin_keeps_its_index_when_the_host_list_changes():
    # rr_indexes_.insert keeps the index of a host source across refreshes: from index i over
    # 4 hosts the first pick is i % 4; after 5 picks the next over 2 hosts is (i + 5) % 2,
    # that is (first + 1) % 2. An index reset to 0 would give host 0 every time.
    nexts = set()
    for seed in range(12):
        backends = fleet(1, 1, 1, 1)
        p = start("edf_round_robin", backends, seed)
        first = p.choose(request()).index
        for _ in range(4):
            p.choose(request())
        p.update(backends[:2])
        nexts.add(p.choose(request()).index)
        assert p.choose(request()).index == first % 2
    assert nexts == {0, 1}


def test_edf_round_robin_with_weights_follows_envoys_edf_sequence():
    # Envoy EdfScheduler, weights a=1, b=2 from time 0: deadlines a 1, b 1/2; b is picked
    # (t=1/2, b again at 1, inserted after a), then a (1, first inserted), b (1), then b
    # (3/2): the cycle is b a b, and a random start makes it a rotation of that.
    seen = set()
    for seed in range(30):
        backends = fleet(1, 2)
        p = start("edf_round_robin", backends, seed)
        picks = "".join("ab"[p.choose(request()).index] for _ in range(9))
        assert picks[:3] * 3 == picks
        assert picks[:3] in {"bab", "abb", "bba"}
        seen.add(picks[:3])
    assert len(seen) >= 2


ENVOY_HOSTS = [f"127.0.0.1:{port}" for port in range(90, 96)]


def envoy_hosts(*weights):
    return [Backend(i, f"h{i}", w, address=ENVOY_HOSTS[i]) for i, w in enumerate(weights)]


def test_ring_hash_with_xxhash64_is_envoys_ring():
    # ring_hash_lb_test.cc Basic: hosts 127.0.0.1:90..95, minimum_ring_size 12: 2 points
    # each, the ring (by port) 94 92 90 95 93 91 91 93 95 92 94 90 at the listed positions;
    # hash 0 and 2^64 - 1 go to :94, 3551244743356806947 to :95, one more to :93.
    backends = envoy_hosts(1, 1, 1, 1, 1, 1)
    p = start({"name": "ring_hash", "hash": "xxhash64", "min_ring_size": 12, "ring": "envoy"}, backends)
    assert p._points[:3] == [833437586790550860, 928266305478181108, 1033482794131418490]
    assert [p._backends[i].address[-2:] for i in p._owners] == [
        "94",
        "92",
        "90",
        "95",
        "93",
        "91",
        "91",
        "93",
        "95",
        "92",
        "94",
        "90",
    ]
    cases = {0: 4, 2**64 - 1: 4, 3551244743356806947: 5, 3551244743356806948: 3}
    assert {h: p._backends[p.lookup(h)].index for h in cases} == cases


@pytest.mark.parametrize(
    ("weights", "size", "table"),
    [
        # maglev_lb_test.cc Basic: 6 hosts, table size 7.
        ((1, 1, 1, 1, 1, 1), 7, "92 94 90 91 95 90 93"),
        # maglev_lb_test.cc Weighted: :90 weight 1, :91 weight 2, table size 17.
        ((1, 2), 17, "91 90 90 91 90 91 91 90 91 91 91 91 91 90 91 90 91"),
    ],
)
def test_maglev_with_xxhash64_is_envoys_table(weights, size, table):
    p = start({"name": "maglev", "hash": "xxhash64", "table_size": size}, envoy_hosts(*weights))
    assert " ".join(p._backends[p.lookup(h)].address[-2:] for h in range(size)) == table


def test_rescaled_ring_moves_more_keys_when_a_host_leaves():
    # Envoy rebuilds its ring for 9 hosts with 114 points each where 10 had 103
    # (scale = ceil(min_w x 1024) / min_w): keys move to the new points too, about 17%,
    # where a fixed ketama ring moves only the leaver's tenth.
    names = [f"10.0.0.{i}:8080" for i in range(10)]
    keys = [Request(k, 0, 0, k) for k in range(20_000)]

    def moved(ring):
        backends = [Backend(i, f"web-{i}", address=names[i]) for i in range(10)]
        p = start({"name": "ring_hash", "hash": "xxhash64", "ring": ring}, backends)
        before = [p.choose(r).index for r in keys]
        p.update(backends[:4] + backends[5:])
        return np.mean([p.choose(r).index != b for r, b in zip(keys, before, strict=True)])

    assert moved("ketama") == pytest.approx(0.1, abs=0.02)
    assert 0.13 < moved("envoy") < 0.22


def test_haproxy_full_hash_matches_its_source():
    # HAProxy v2.8.0 include/haproxy/intops.h __full_hash, compiled from that source: node
    # keys of server id 1 (full_hash(1 x 4096 + j)).
    from lbsim.policies.chash_random import full_hash

    assert [full_hash(4096 + j) for j in range(4)] == [1237450891, 2761370759, 3040967754, 643086982]


def test_chash_random_one_draw_follows_haproxys_uneven_arcs():
    # With 4 servers of weight 1 (ids 1-4, 16 nodes each) the nearest-node rule gives them
    # 28.9071, 18.5337, 24.2662, 28.2931% of the 32-bit space (computed in C from lb_chash.c
    # chash_get_server_hash and __full_hash); one draw per pick lands in proportion.
    p = start({"name": "chash_random", "draws": 1}, fleet(1, 1, 1, 1))
    picks = np.bincount([p.choose(request()).index for _ in range(80_000)], minlength=4) / 80_000
    assert picks == pytest.approx([0.289071, 0.185337, 0.242662, 0.282931], abs=0.006)


def test_chash_random_keeps_the_less_served_of_two_draws():
    # get_server_rnd: the later draw replaces the earlier unless it serves more per weight;
    # server 1 (the largest arc) busy: it wins only when both draws land on it.
    backends = fleet(1, 1, 1, 1)
    p = start("chash_random", backends)
    dispatch(p, backends[0])
    share = np.mean([p.choose(request()).index == 0 for _ in range(40_000)])
    assert share == pytest.approx(0.289071**2, abs=0.006)


def test_nginx_ring_is_crc32_chained_over_host_and_port():
    # ngx_http_upstream_init_chash: 160 points per weight for "10.0.0.1:80"; point j is the
    # CRC-32 of "10.0.0.1", a zero byte, "80" and point j - 1 (little-endian, 0 first);
    # keys hash with ngx_crc32_long. A name without a port hashes as host, zero byte.
    import binascii

    backends = [Backend(0, "a", 2, address="10.0.0.1:80"), Backend(1, "b", 1, address="web-1")]
    p = start({"name": "ring_hash", "key": "path", "hash": "crc32", "ring": "nginx"}, backends)
    first = binascii.crc32(b"10.0.0.1\x0080" + b"\x00" * 4)
    second = binascii.crc32(b"10.0.0.1\x0080" + first.to_bytes(4, "little"))
    other = binascii.crc32(b"web-1\x00" + b"\x00" * 4)
    assert {first, second, other} <= set(p._points)
    assert len(p._points) == 160 * 3
    assert p._backends[p._owners[p._points.index(other)]].name == "b"
    # A key exactly on b's point goes to b; one just past the last point wraps to the first.
    r = Request(0, 0, 0, 0)
    r.path = "/x"
    h = binascii.crc32(b"/x")
    expected = p._owners[next((k for k, point in enumerate(p._points) if point >= h), 0)]
    assert p.choose(r) is p._backends[expected]


def test_nginx_ring_needs_crc32():
    with pytest.raises(ConfigError, match="ring_hash: hash must be crc32 exactly when ring is nginx"):
        make_policy({"name": "ring_hash", "ring": "nginx"})
