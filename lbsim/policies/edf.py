"""Envoy's earliest-deadline-first schedule, and its ROUND_ROBIN policy built on it."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request


class EdfSchedule:
    """Envoy's EDF scheduler (source/common/upstream/edf_scheduler.h) over ``backends``.

    Each entry's deadline is the schedule's current time + 1 / weight; a pick takes the
    earliest deadline (the earlier inserted on ties), moves the current time to it and puts
    the backend back with ``weight(backend)`` as it is now. ``picks`` picks are made when
    the schedule is built, as Envoy's createWithPicks starts a fresh schedule from a random
    point so that instances do not pick in step. O(log n) per pick.
    """

    def __init__(self, backends: Sequence[Backend], weight: Callable[[Backend], float], picks: int) -> None:
        self._backends = list(backends)
        self._weight = weight
        self._time = 0.0
        self._sequence = 0
        self._heap: list[tuple[float, int, int]] = []
        for i, backend in enumerate(self._backends):
            self._push(i, weight(backend))
        for _ in range(picks):
            self.pick()

    def _push(self, i: int, weight: float) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (self._time + 1 / weight, self._sequence, i))

    def pick(self) -> Backend:
        """The backend with the earliest deadline, put back with its current weight."""
        deadline, _, i = heapq.heappop(self._heap)
        self._time = deadline
        backend = self._backends[i]
        self._push(i, self._weight(backend))
        return backend


def random_start(backends: Sequence[Backend], uniform: Callable[[], float]) -> int:
    """How many picks a fresh schedule makes first: uniform over one period (the sum of the
    weights), which is what Envoy's seed % 429496729 picks amount to for whole weights."""
    return int(uniform() * sum(b.weight for b in backends))


class EdfRoundRobin(Policy):
    """Envoy ROUND_ROBIN: plain rotation when the weights are equal, an EDF schedule on the
    weights when they differ.

    Rule (source/extensions/load_balancing_policies/round_robin/round_robin_lb.h,
    load_balancer_impl.cc EdfLoadBalancerBase::refresh, Envoy 1.28-1.32): with equal weights
    the pick is ``hosts[rr_index++ % len(hosts)]``, the index starting at a random seed and
    kept (not reset) when the host list changes; with unequal weights an EDF schedule is
    built afresh on every change, started after a random number of picks. Weights 1 and 3
    give each cycle of 4 picks one to the first backend and three to the second. Reads:
    Backend.weight. Follows: Envoy ROUND_ROBIN.
    """

    name = "edf_round_robin"
    rule = "rotation from a random start; EDF schedule on the weights when they differ (Envoy ROUND_ROBIN)"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._uniform = UniformDraws(rng)
        self._index = int(self._uniform.next() * (1 << 32))
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        weighted = len({b.weight for b in self._backends}) > 1
        self._schedule = (
            EdfSchedule(self._backends, _weight, random_start(self._backends, self._uniform.next))
            if weighted
            else None
        )

    def choose(self, request: Request) -> Backend:
        if self._schedule is not None:
            return self._schedule.pick()
        backend = self._backends[self._index % len(self._backends)]
        self._index += 1
        return backend


def _weight(backend: Backend) -> float:
    return backend.weight
