"""The balancer's own work: ``cores`` that spend ``cost`` seconds per request, plus TLS.

A request that opens a client connection also pays the TLS handshake. The cores serve
first-come first-served, so a request's finish time is known when it arrives (the earliest
free core, then its cost): one event per request, at the finish.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from lbsim.engine.balancer.stage import Stage
from lbsim.engine.clock import Clock
from lbsim.engine.messages import Attempt
from lbsim.status import DROPPED

if TYPE_CHECKING:
    from lbsim.engine.balancer.instance import Instance


class Cores(Stage):
    """``cores`` FCFS cores."""

    def __init__(
        self,
        clock: Clock,
        cores: int,
        cost: float,
        handshake: float,
        owner: Instance,
    ) -> None:
        self.clock = clock
        self.workers = cores
        self.cost = cost
        self.handshake = handshake
        self.owner = owner
        # When each core is next free.
        self.free = [0.0] * cores
        self.assigned = 0.0
        # What runs when a core is done with an attempt (bound once: it is on every request's path).
        self.done = self._done

    def send(self, attempt: Attempt) -> None:
        now = self.clock.now
        free = self.free
        connection = attempt.connection
        cost = self.cost
        if connection is not None and connection.first is attempt.request:
            cost += self.handshake
        start = free[0] if free[0] > now else now
        heapq.heapreplace(free, start + cost)
        self.assigned += cost
        self.clock.schedule_at(start + cost, self.done, attempt)

    def _done(self, attempt: Attempt) -> None:
        if self.owner.dead:
            self.owner.deliver(attempt.request, -1, DROPPED)
            return
        self.forward(attempt)

    def busy_time_until(self, t: float) -> float:
        """Busy core-seconds from time 0 to ``t`` (t >= the last arrival): all work assigned,
        less what the cores still owe after ``t`` (a core is busy from ``t`` until it is free)."""
        return self.assigned - sum(max(0.0, free - t) for free in self.free)
