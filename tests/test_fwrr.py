"""HAProxy's roundrobin (``fast_weighted_round_robin``) picks as real HAProxy 2.6.12 does.

Every expected sequence below was printed by real HAProxy (Debian 12's haproxy 2.6.12,
``balance roundrobin``) through ``benchmarks/real/haproxy_roundrobin.py`` with the same
arguments: WEIGHTS, then ``n:K`` (K requests), ``down:S`` / ``up:S`` (``set server be/sS
state maint`` / ``ready``) and ``weight:S:W`` (``set weight be/sS W``). The rule is
src/lb_fwrr.c; NGINX's smooth rule gives other orders (5, 1, 1: a a b a c a a).
"""

import numpy as np
import pytest

from lbsim.policies import Backend, make_policy
from lbsim.workload import Request

REAL_HAPROXY = {
    "5,1,1 n:14": "0 0 0 1 0 0 2 0 0 0 1 0 0 2",
    "1,1,1 n:6": "0 1 2 0 1 2",
    "3,2,1 n:12": "0 1 0 2 0 1 0 1 0 2 0 1",
    "2,3,5,7 n:34": "3 2 3 1 2 3 0 3 2 1 3 2 3 3 1 2 0 3 2 3 1 2 3 0 3 2 1 3 2 3 3 1 2 0",
    "5,1,1 n:5 down:0 n:4 up:0 n:14": "0 0 0 1 0 | 2 2 2 1 | 0 2 0 1 0 0 0 0 2 0 1 0 0 0",
    "3,2,1 n:4 weight:1:7 n:20 weight:1:1 n:12": (
        "0 1 0 2 | 0 1 1 0 1 1 2 1 0 1 1 0 1 1 0 1 1 2 1 0 | 0 0 0 1 0 2 0 0 1 0 2 0"
    ),
    "2,3,5,7 n:9 down:3 n:7 down:1 n:5 up:3 n:20 up:1 n:20": (
        "3 2 3 1 2 3 0 3 2 | 1 2 1 2 0 2 1 | 2 2 0 2 2 | 3 2 0 3 2 3 2 3 0 3 2 3 2 3 3 2 0 3 2 3 "
        "| 2 3 0 3 1 2 3 2 3 1 3 2 0 3 2 3 1 2 3 0"
    ),
}


def replay(arguments: str) -> str:
    """The steps of ``arguments`` applied to lbsim's policy, printed as the script prints them."""
    weights, *steps = arguments.split()
    backends = [Backend(i, f"s{i}", weight=float(w)) for i, w in enumerate(weights.split(","))]
    up = set(range(len(backends)))
    policy = make_policy("fast_weighted_round_robin")
    policy.reset(backends, np.random.default_rng(0))
    out: list[str] = []
    for step in steps:
        kind, *args = step.split(":")
        if kind == "n":
            out += [str(policy.choose(Request(0, 0.0, 0.01, 0)).index) for _ in range(int(args[0]))]
            continue
        if kind == "down":
            up.discard(int(args[0]))
        elif kind == "up":
            up.add(int(args[0]))
        else:
            backends[int(args[0])].weight = float(args[1])
        policy.update([b for b in backends if b.index in up])
        out.append("|")
    return " ".join(out)


@pytest.mark.parametrize("arguments", REAL_HAPROXY)
def test_picks_as_real_haproxy_2_6_roundrobin(arguments):
    assert replay(arguments) == REAL_HAPROXY[arguments]


def test_haproxy_order_is_not_nginx_smooth_order():
    # The premise of the policy: the same weights, another order than weighted_round_robin's.
    nginx = make_policy("weighted_round_robin")
    nginx.reset(
        [Backend(i, f"s{i}", weight=w) for i, w in enumerate((5.0, 1.0, 1.0))], np.random.default_rng(0)
    )
    picks = " ".join(str(nginx.choose(Request(0, 0.0, 0.01, 0)).index) for _ in range(14))
    assert picks == "0 0 1 0 2 0 0 0 0 1 0 2 0 0"
    assert picks != REAL_HAPROXY["5,1,1 n:14"]
