"""Oracle policies: bounds that read every server's true state, which no real balancer can.

They scan the fleet on each request (O(n)); use them to see how far a real policy is from
what perfect information would give.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request


class JoinShortestQueue(Policy):
    """Send each request to the server with the fewest requests, counted over every balancer instance.

    Tie-break: uniformly at random among the tied. Reads: Backend.in_system (oracle).
    Follows: join-the-shortest-queue (Winston 1977), the optimal policy for identical
    exponential servers; a lower bound for least-connections policies.
    """

    name = "jsq"
    rule = "oracle: fewest requests at the server over all balancer instances (a bound)"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._uniform = UniformDraws(rng)
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)

    def load(self, backend: Backend) -> float:
        """What the oracle minimises."""
        return backend.in_system

    def choose(self, request: Request) -> Backend:
        best: list[Backend] = []
        least = float("inf")
        for backend in self._backends:
            load = self.load(backend)
            if load < least:
                least, best = load, [backend]
            elif load == least:
                best.append(backend)
        return best[int(self._uniform.next() * len(best))]


class LeastWorkLeft(JoinShortestQueue):
    """Send each request to the server with the least unfinished work (seconds of service owed).

    Tie-break: uniformly at random among the tied (idle servers). Reads: Backend.work_left
    (oracle). Follows: least-work-left, equivalent to a central M/G/c queue for FCFS
    servers (Harchol-Balter, Performance Modeling and Design of Computer Systems, 24.2).
    """

    name = "least_work_left"
    rule = "oracle: least unfinished work at the server (a bound)"

    def load(self, backend: Backend) -> float:
        return backend.work_left
