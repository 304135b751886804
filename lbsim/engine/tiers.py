"""Hierarchical balancing: tiers of balancer instances, each seen by the tier above as backends.

The tier above sends a request to a gate; the gate hands a copy of it to the instance
below (a refused connection if that instance is down), and the instance's answer comes back
up as the gate's answer: ``ok``, or an error (the 502/503 a balancer returns) otherwise.
With regions, every tier has its instances in each region, and an instance balances over
the instances (or servers) of its own region only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lbsim.engine.balancer import Balancer, Placement
from lbsim.engine.clock import Clock
from lbsim.engine.recorder import CONNECT_FAILURE, ERROR, OK
from lbsim.engine.server import Server
from lbsim.scenario import BalancerModel
from lbsim.workload import Request

# The name of the bottom tier, the one over the servers.
BOTTOM = "balancer"


@dataclass(slots=True)
class Tier:
    """One balancer tier of a run: its instances (None while one is down) over its backends
    (servers, or gates to the tier below), each instance's random streams, and with regions
    the backends of each region (an instance's scope)."""

    name: str
    config: BalancerModel
    backends: list[Server]
    placements: list[Placement]
    rngs: list[np.random.Generator]
    scopes: list[set[int]] | None
    instances: list[Balancer | None] = field(init=False)

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


class TierGate(Server):
    """Instance ``k`` of the tier below, as a backend of the tier above."""

    marks_start = False

    def __init__(
        self, clock: Clock, index: int, name: str, tier: str, below: Sequence[Balancer | None]
    ) -> None:
        super().__init__(clock, index, name, tier, 1.0, 1, None)
        self.below = below

    @property
    def active(self) -> int:
        """Requests the instance below holds."""
        balancer = self.below[self.index]
        return balancer.attempts_active if balancer is not None else 0

    def accept(self, request: Request) -> None:
        balancer = self.below[self.index]
        if balancer is None:
            self.done(request, CONNECT_FAILURE)
            return
        child = Request(request.index, request.t_arrival, request.size, request.client)
        child.session, child.path, child.headers = request.session, request.path, request.headers
        child.parent = request
        balancer.receive(child)


def answer_up(child: Request, server: int, status: int) -> None:
    """The tier below answered ``child`` (the bottom tier from ``server``, an upper one from
    an instance below): pass the answer, and the server that served it, to the request above."""
    parent = child.parent
    assert parent is not None
    parent.t_start = child.t_start
    parent.served_by = server if child.balancer.tier == BOTTOM else child.served_by
    parent.balancer.complete(parent, OK if status == OK else ERROR)
