"""Policies against hand-checked choices from the production rules they follow."""

import hashlib

import numpy as np
import pytest

from lbsim.errors import ConfigError, UnknownNameError
from lbsim.policies import POLICIES, Backend, make_policy
from lbsim.testing import check_policy
from lbsim.workload import Request
from tests.helpers import Fixed


def fleet(*weights):
    return [Backend(i, "abcdefghij"[i] if i < 10 else f"s{i}", weight=w) for i, w in enumerate(weights)]


def start(name, backends, seed=0):
    policy = make_policy(name)
    policy.reset(backends, np.random.default_rng(seed))
    return policy


def request(client=0):
    return Request(0, 0.0, 0.01, client)


def dispatch(policy, backend):
    backend.active += 1
    policy.on_dispatch(backend, request())


def complete(policy, backend):
    backend.active -= 1
    policy.on_complete(backend, request(), 0.01, True)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_registered_policy_keeps_the_contract(name):
    check_policy(make_policy(name))


def test_round_robin_cycles_in_order_from_the_first():
    p = start("round_robin", fleet(5, 1, 1))
    assert "".join(p.choose(request()).name for _ in range(7)) == "abcabca"


def test_smooth_weighted_round_robin_interleaves_as_nginx():
    # NGINX's documented example: weights 5, 1, 1 give a a b a c a a, not a a a a a b c.
    p = start("weighted_round_robin", fleet(5, 1, 1))
    assert "".join(p.choose(request()).name for _ in range(14)) == "aabacaa" * 2


# Printed by real NGINX 1.22.1 (Debian 12, one worker, upstream round robin) through
# benchmarks/real/nginx_round_robin.py WEIGHTS N: the server of each of N requests in turn.
REAL_NGINX = {
    "5,1,1 14": "0 0 1 0 2 0 0 0 0 1 0 2 0 0",
    "2,3,5,7 34": "3 2 1 3 0 2 3 1 3 2 3 2 0 3 1 2 3 3 2 1 3 0 2 3 1 3 2 3 2 0 3 1 2 3",
    "3,2,1 12": "0 1 0 2 1 0 0 1 0 2 1 0",
}


@pytest.mark.parametrize("arguments", REAL_NGINX)
def test_smooth_weighted_round_robin_picks_as_real_nginx_1_22(arguments):
    weights, n = arguments.split()
    p = start("weighted_round_robin", fleet(*(float(w) for w in weights.split(","))))
    assert " ".join(str(p.choose(request()).index) for _ in range(int(n))) == REAL_NGINX[arguments]


def test_smooth_weighted_round_robin_keeps_current_weights_across_membership_changes():
    backends = fleet(5, 1, 1)
    p = start("weighted_round_robin", backends)
    assert [p.choose(request()).name for _ in range(2)] == ["a", "a"]
    # By hand: (5,1,1) -> a -> (-2,1,1); (3,2,2) -> a -> (-4,2,2). Dropping c leaves a=-4,
    # b=2 with total 6: (1,3) -> b -> (1,-3); (6,-2) -> a -> (0,-2); (5,-1) -> a.
    p.update([backends[0], backends[1]])
    assert "".join(p.choose(request()).name for _ in range(3)) == "baa"


def test_least_connections_picks_the_fewest_active():
    backends = fleet(1, 1, 1)
    p = start("least_connections", backends)
    for b, n in zip(backends, (3, 1, 2), strict=True):
        for _ in range(n):
            dispatch(p, b)
    assert p.choose(request()).name == "b"
    complete(p, backends[0])
    complete(p, backends[0])
    assert p.choose(request()).name == "a"


def test_least_connections_breaks_ties_by_smooth_round_robin_among_the_tied():
    # NGINX least_conn: all tied peers add 1 to their current weight; the largest wins and
    # loses the number tied. Without dispatches all three stay tied: a, b, c, a, b, c.
    p = start("least_connections", fleet(1, 1, 1))
    assert "".join(p.choose(request()).name for _ in range(6)) == "abcabc"


def test_least_connections_tie_break_remembers_current_weights():
    backends = fleet(1, 1, 1)
    p = start("least_connections", backends)
    a = p.choose(request())  # tied a, b, c: current (1,1,1) -> a wins -> (-2, 1, 1)
    assert a.name == "a"
    dispatch(p, a)
    # b and c tie at 0 active: (-, 2, 2) -> b wins -> (-, 0, 2).
    assert p.choose(request()).name == "b"
    complete(p, a)
    # a, b, c tie again: (-1, 1, 3) -> c.
    assert p.choose(request()).name == "c"


def test_least_connections_with_weights_compares_active_per_weight():
    # ngx_http_upstream_get_least_conn_peer: peer->conns * best->weight < best->conns *
    # peer->weight. a (weight 3) at 2 active is 2/3 per weight, b (weight 1) at 1 active
    # is 1: a wins although it holds more requests (the weight-blind rule picked b).
    backends = fleet(3, 1)
    p = start("least_connections", backends)
    for b, n in zip(backends, (2, 1), strict=True):
        for _ in range(n):
            dispatch(p, b)
    assert p.choose(request()).name == "a"
    # a at 3 active is 1 per weight, like b: tied, and smooth WRR over weights 3 and 1 from
    # current weights (0, 0): (3, 1) -> a -> (-1, 1).
    dispatch(p, backends[0])
    assert p.choose(request()).name == "a"
    # (2, 2): equal values go to the first, a -> (-2, 2); then (1, 3) -> b.
    assert "".join(p.choose(request()).name for _ in range(2)) == "ab"


def test_least_connections_with_weights_rotates_idle_backends_by_weight():
    # All idle, weights 2, 1, 1: every pick is a tie over all three, smooth WRR over 2, 1, 1
    # (NGINX's documented a a b a c a a for 5, 1, 1 works the same way): (2,1,1) -> a ->
    # (-2,1,1); (0,2,2) -> b -> (0,-2,2); (2,-1,3) -> c -> (2,-1,-1); (4,0,0) -> a -> (0,0,0),
    # and again: a gets half the picks (the weight-blind rule: a b c a b c, a third).
    p = start("least_connections", fleet(2, 1, 1))
    assert "".join(p.choose(request()).name for _ in range(8)) == "abcaabca"


def test_weighted_least_connections_prefers_idle_then_least_per_weight():
    backends = fleet(5, 1, 1)
    p = start("weighted_least_connections", backends)
    picked = []
    for _ in range(8):
        b = p.choose(request())
        picked.append(b.name)
        dispatch(p, b)
    # Idle servers have key 0 and come first: a, b, c. Then keys floor((n+1)*4096/(16w)):
    # a with n=1..5 gives 102, 153, 204, 256, 307 < 512 for b, c with n=1.
    assert picked == ["a", "b", "c", "a", "a", "a", "a", "a"]


def test_weighted_least_connections_rotates_equal_keys():
    backends = fleet(1, 1)
    p = start("weighted_least_connections", backends)
    dispatch(p, backends[0])
    dispatch(p, backends[1])
    # Both have key 512; b took it last, so a (earlier) wins, then after a moves up, b.
    assert p.choose(request()).name == "a"
    dispatch(p, backends[0])
    complete(p, backends[0])
    assert p.choose(request()).name == "b"


def test_ip_hash_is_md5_of_the_address_modulo_the_backends():
    backends = fleet(1, 1, 1, 1, 1)
    p = start("ip_hash", backends)
    for client in (0, 1, 258, 70000):
        address = f"10.{client >> 16 & 255}.{client >> 8 & 255}.{client & 255}"
        expected = int(hashlib.md5(address.encode()).hexdigest(), 16) % 5
        assert p.choose(request(client)).index == expected


def test_ip_hash_moves_most_clients_when_a_backend_leaves():
    backends = fleet(*[1] * 10)
    p = start("ip_hash", backends)
    before = [p.choose(request(c)).index for c in range(2000)]
    p.update(backends[:9])
    after = [p.choose(request(c)).index for c in range(2000)]
    moved = np.mean([x != y for x, y in zip(before, after, strict=True)])
    # Modulo hashing keeps a key only if h mod 10 == h mod 9: about 1/10 of keys stay.
    assert moved == pytest.approx(0.9, abs=0.03)


def test_random_is_uniform_and_weighted_random_follows_weights():
    n = 60_000
    uniform = start("random", fleet(5, 1, 1))
    counts = np.bincount([uniform.choose(request()).index for _ in range(n)], minlength=3) / n
    assert counts == pytest.approx([1 / 3] * 3, abs=0.01)
    weighted = start("weighted_random", fleet(5, 1, 1))
    counts = np.bincount([weighted.choose(request()).index for _ in range(n)], minlength=3) / n
    assert counts == pytest.approx([5 / 7, 1 / 7, 1 / 7], abs=0.01)


class Uniforms:
    """A generator whose random() hands out the given uniforms in order (a policy takes
    its block from the end)."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self, size):
        block, self.values = self.values[:size], self.values[size:]
        return np.array(block[::-1])


def random_two(weights, actives, *uniforms):
    backends = fleet(*weights)
    for backend, active in zip(backends, actives, strict=True):
        backend.active = active
    policy = make_policy("random_two")
    policy.reset(backends, Uniforms(*uniforms))
    return policy


def test_random_two_takes_the_second_draw_unless_it_is_busier_per_weight():
    # ngx_http_upstream_get_random2_peer: weighted draws (x < cumulative weight), a repeat of
    # the first is drawn again; the first is kept only when second.conns x first.weight >
    # first.conns x second.weight.
    assert random_two((1, 1, 1), (0, 0, 0), 0.1, 0.5).choose(request()).name == "b"  # a tie
    assert random_two((1, 1, 1), (0, 0, 0), 0.5, 0.1).choose(request()).name == "a"
    assert random_two((1, 1, 1), (0, 2, 0), 0.1, 0.5).choose(request()).name == "a"
    # 1 active at weight 2 (0.5) against 1 at weight 1: the first, a, is less loaded.
    assert random_two((2, 1), (1, 1), 0.1, 0.9).choose(request()).name == "a"
    # c twice, then a repeat of c, then b: c against b.
    assert random_two((1, 1, 1), (0, 1, 0), 0.9, 0.9, 0.9, 0.5).choose(request()).name == "c"


def test_random_two_falls_back_to_smooth_round_robin_after_twenty_more_draws():
    # rp->tries > 20: the first draw and 20 repeats of it end in
    # ngx_http_upstream_get_round_robin_peer, whose documented order for 5, 1, 1 is a a b a c a a.
    policy = random_two((5, 1, 1), (0, 0, 0), *[0.0] * 21 * 7)
    assert "".join(policy.choose(request()).name for _ in range(7)) == "aabacaa"
    # The 21st draw may still be the second.
    assert random_two((5, 1, 1), (0, 0, 0), *[0.0] * 20, 0.9).choose(request()).name == "c"


def test_random_two_shares_by_hand():
    # Weights 5, 1, 1, all idle: a tie, so the second draw wins. P(a) = P(first is b or c) x
    # P(second is a | first) = 2 x 1/7 x 5/6 = 10/42; P(b) = 5/7 x 1/2 + 1/7 x 1/6 = 16/42.
    n = 60_000
    policy = start("random_two", fleet(5, 1, 1))
    counts = np.bincount([policy.choose(request()).index for _ in range(n)], minlength=3) / n
    assert counts == pytest.approx([10 / 42, 16 / 42, 16 / 42], abs=0.01)


def test_least_connections_scales_to_a_thousand_backends():
    backends = fleet(*[1] * 1000)
    p = start("least_connections", backends)
    rng = np.random.default_rng(3)
    busy = []
    for _ in range(5000):
        b = p.choose(request())
        assert b.active == min(x.active for x in backends)
        dispatch(p, b)
        busy.append(b)
        if rng.random() < 0.5:
            complete(p, busy.pop(int(rng.integers(len(busy)))))


def test_unknown_policy_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'least_connections'"):
        make_policy("least_conection")
    # Whatever the case: people write P2C the way papers do.
    with pytest.raises(UnknownNameError, match=r"unknown policy 'P2C'\. Did you mean 'p2c'"):
        make_policy("P2C")


def test_policy_mapping_rejects_unknown_parameters():
    with pytest.raises(ConfigError, match="takes no parameters"):
        make_policy({"name": "random", "choices": 2})


def test_a_user_policy_loads_from_module_and_class():
    policy = make_policy({"name": "tests.helpers:Fixed", "position": 2})
    assert isinstance(policy, Fixed)
    assert repr(policy) == "Fixed(position=2)"
    check_policy(policy)


def test_check_policy_catches_a_policy_that_writes_the_view():
    class Meddler(Fixed):
        def choose(self, request):
            self.backends[0].weight = 9
            return self.backends[0]

    with pytest.raises(AssertionError, match="must not change a Backend view"):
        check_policy(Meddler())


def test_check_policy_catches_global_randomness():
    class Global(Fixed):
        def choose(self, request):
            return self.backends[np.random.randint(len(self.backends))]  # noqa: NPY002

    with pytest.raises(AssertionError, match="global random state"):
        check_policy(Global())


def test_check_policy_catches_the_random_module():
    import random

    class StdlibRandom(Fixed):
        def choose(self, request):
            return random.choice(self.backends)

    with pytest.raises(AssertionError, match="must not draw from the random module"):
        check_policy(StdlibRandom())


def test_weighted_least_connections_keys_round_down_as_lb_fwlc():
    # HAProxy lb_fwlc.c fwlc_queue_srv: key = (inflight + 1) * 4096 / eweight in unsigned
    # integers, eweight = 16 x weight. a (weight 3, 1 active): 2 * 4096 / 48 = 170.67 -> 170.
    # b (weight 256, 170 active): 171 * 4096 / 4096 = 171. a's key is smaller, so a wins; had
    # the keys been rounded up, both would be 171 and b, keyed first, would win the tie.
    a, b = backends = fleet(3, 256)
    p = start("weighted_least_connections", backends)
    for _ in range(170):
        dispatch(p, b)
    dispatch(p, a)
    assert p.choose(request()) is a


def test_nginx_ip_hash_hashes_the_first_three_octets_over_weights():
    # ngx_http_upstream_get_ip_hash_peer, worked by hand for 10.0.0.x: from 89,
    # (89 x 113 + 10) % 6271 = 3796, (3796 x 113 + 0) % 6271 = 2520, (2520 x 113 + 0) % 6271
    # = 2565. Weights 1, 1, 1, 1: 2565 % 4 = 1, so b; weights 2, 1, 1: 2565 % 4 = 1 falls
    # in a's two units, so a. Every client of 10.0.0.0/24 goes there.
    p = start({"name": "ip_hash", "style": "nginx"}, fleet(1, 1, 1, 1))
    assert {p.choose(request(client)).name for client in (0, 5, 255)} == {"b"}
    p = start({"name": "ip_hash", "style": "nginx"}, fleet(2, 1, 1))
    assert p.choose(request(5)).name == "a"


def test_nginx_ip_hash_rehashes_past_an_unavailable_server():
    # b unavailable: the hash takes the octets again, 2565 -> 1389 -> 182 -> 1753, and
    # 1753 % 4 = 1 is b again; once more, 1753 -> 3698 -> 3988 -> 5403, 5403 % 4 = 3: d.
    backends = fleet(1, 1, 1, 1)
    p = start({"name": "ip_hash", "style": "nginx"}, backends)
    p.update([backends[0], backends[2], backends[3]])
    assert p.choose(request(5)).name == "d"
