"""Hierarchical balancing: a balancer instance of one tier, seen by the tier above as a backend.

The tier above sends a request to a gate; the gate hands a copy of it to the instance
below (a refused connection if that instance is down), and the instance's answer comes back
up as the gate's answer: ``ok``, or an error (the 502/503 a balancer returns) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from simpy import Environment

from lbsim.engine.balancer import Balancer
from lbsim.engine.recorder import CONNECT_FAILURE, ERROR, OK
from lbsim.engine.server import Server
from lbsim.workload import Request


class TierGate(Server):
    """Instance ``k`` of the tier below, as a backend of the tier above."""

    marks_start = False

    def __init__(
        self, env: Environment, index: int, name: str, tier: str, below: Sequence[Balancer | None]
    ) -> None:
        super().__init__(env, index, name, tier, 1.0, 1, None)
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
    """The tier below answered ``child``: pass the answer to the request above it."""
    parent = child.parent
    assert parent is not None
    parent.t_start = child.t_start
    parent.served_by = server if child.served_by < 0 else child.served_by
    parent.balancer.complete(parent, OK if status == OK else ERROR)
