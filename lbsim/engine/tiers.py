"""Hierarchical balancing: tiers of balancer instances, each seen by the tier above as backends.

The tier above sends a request to a gate; the gate hands a copy of it to the instance
below (a refused connection if that instance is down), and the instance's answer comes back
up as the gate's answer: a server's answer as it was (200, 500, 503, 429), or the status the
balancer below answers when it got none (:data:`GATEWAY_ANSWERS`).
With regions, every tier has its instances in each region, and an instance balances over
the instances (or servers) of its own region only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lbsim.engine.balancer.instance import Instance, Placement
from lbsim.engine.clock import Clock
from lbsim.engine.messages import Attempt, Endpoint, Probe
from lbsim.engine.settings import BalancerTier
from lbsim.status import (
    BAD_GATEWAY,
    CONNECT_FAILURE,
    DROPPED,
    ERROR,
    GATEWAY_TIMEOUT,
    IN_FLIGHT,
    OK,
    REJECTED,
    RESET,
    TOO_MANY_REQUESTS,
)
from lbsim.workload import Request

# The name of the bottom tier, the one over the servers.
BOTTOM = "balancer"


def _answers(connect_failure: int, reset: int, no_backend: int) -> tuple[int, ...]:
    """What a balancer answers the tier above for each outcome of its own (by status number):
    a server's 200, 500, 503 and 429 pass as they are; a timeout is a 504; a refused
    connection, a reset and no eligible backend are the system's own."""
    return (
        OK, ERROR, REJECTED, GATEWAY_TIMEOUT, no_backend, DROPPED, IN_FLIGHT, connect_failure, reset,
        BAD_GATEWAY, GATEWAY_TIMEOUT, TOO_MANY_REQUESTS,
    )  # fmt: skip


# By the bottom balancer's ``emulate`` (None: lbsim's own, NGINX's codes but 503 for no backend).
# NGINX (ngx_http_upstream.c, ngx_http_upstream_next): a timeout is 504, every other failure,
# "no live upstreams" included, 502. Envoy (router.cc): a reset or refused connection is a
# 503 (onUpstreamReset, chargeUpstreamAbort), a timeout 504, no healthy upstream 503.
# HAProxy (configuration.txt, 8.5 session state at disconnection): a connection that fails
# (SC) or no server (SQ) 503, a server that aborts (SH) 502, a server timeout (sH) 504.
GATEWAY_ANSWERS: dict[str | None, tuple[int, ...]] = {
    None: _answers(BAD_GATEWAY, BAD_GATEWAY, REJECTED),
    "nginx": _answers(BAD_GATEWAY, BAD_GATEWAY, BAD_GATEWAY),
    "envoy": _answers(REJECTED, REJECTED, REJECTED),
    "haproxy": _answers(REJECTED, BAD_GATEWAY, REJECTED),
}


@dataclass(slots=True)
class Tier:
    """One balancer tier of a run: its instances (None while one is down) over its backends
    (servers, or gates to the tier below), each instance's random streams, and with regions
    the backends of each region (an instance's scope)."""

    name: str
    config: BalancerTier
    backends: Sequence[Endpoint]
    placements: list[Placement]
    rngs: list[np.random.Generator]
    scopes: list[set[int]] | None
    instances: list[Instance | None] = field(init=False)

    def __post_init__(self) -> None:
        self.instances = [None] * len(self.rngs)

    def scope(self, i: int) -> set[int] | None:
        """The backends instance ``i`` may use: its region's, or all (None)."""
        return self.scopes[i // self.config.instances] if self.scopes is not None else None

    def next_rng(self, i: int) -> np.random.Generator:
        """Instance ``i``'s random stream; a standby (or restart) that takes over later gets fresh ones."""
        rng = self.rngs[i]
        self.rngs[i] = rng.spawn(1)[0]
        return rng


class TierGate:
    """Instance ``index`` of the tier below, as a backend (named ``name``) of the tier above.

    It hands each attempt (or health-check probe) it gets to that instance as a request of
    its own, or refuses the connection while the instance is down.
    """

    def __init__(self, clock: Clock, index: int, name: str, below: Sequence[Instance | None]) -> None:
        self.clock = clock
        self.index = index
        self.name = name
        self.below = below

    @property
    def active(self) -> int:
        """Requests the instance below holds."""
        instance = self.below[self.index]
        return instance.attempts_active if instance is not None else 0

    def work_left(self) -> float:
        """Oracle policies see no work at a balancer: it is not a server."""
        return 0.0

    def accept(self, message: Attempt | Probe) -> None:
        """Send ``message`` on to the instance below, as a request of its own."""
        instance = self.below[self.index]
        if instance is None:
            message.reply_to(message, CONNECT_FAILURE)
            return
        if isinstance(message, Attempt):
            request = message.request
            child = Request(message.index, request.t_arrival, message.size, request.client, self.clock)
            child.session, child.path, child.headers = request.session, request.path, request.headers
        else:
            child = Request(message.index, message.t_sent, message.size, -1, self.clock)
        child.parent = message
        instance.receive(child)


def answer_up(child: Request, server: int, status: int) -> None:
    """The tier below answered ``child`` (served by ``server``) with ``status`` (one of
    :data:`GATEWAY_ANSWERS`): pass it, and the server, to the attempt (or probe) above. An
    instance that died holding the child resets the connection from above."""
    parent = child.parent
    assert parent is not None
    parent.t_start = child.t_start
    parent.served_by = server
    parent.reply_to(parent, RESET if status == DROPPED else status)
