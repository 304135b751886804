"""Round robin and NGINX's smooth weighted round robin."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request


class RoundRobin(Policy):
    """Send each request to the next backend in order, cycling.

    Tie-break: none needed. Reads: nothing. Starts at the first backend and keeps its place
    across membership changes, as the notes' RoundRobinBalancer and NGINX with equal weights.
    Follows: NGINX round robin with equal weights, HAProxy static-rr.
    """

    name = "round_robin"
    rule = "the next backend in a fixed cycle, ignoring weights and load"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._next = 0
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        self._next %= len(self._backends)

    def choose(self, request: Request) -> Backend:
        backend = self._backends[self._next]
        self._next = (self._next + 1) % len(self._backends)
        return backend


class WeightedRoundRobin(Policy):
    """NGINX smooth weighted round robin: weights 5, 1, 1 give a a b a c a a.

    Rule (ngx_http_upstream_get_peer): every backend adds its weight to its current weight;
    the backend with the largest current weight wins and loses the total weight. Tie-break:
    the first backend in list order. Reads: Backend.weight. Follows: NGINX upstream round
    robin (ngx_http_upstream_round_robin.c), with effective weight equal to weight.

    The rule is O(n) per pick in NGINX; here one cycle of sum(weights) picks is computed
    once when the membership changes and then replayed, so a pick costs O(1). Weights that
    are not whole (during slow start) have no short cycle: blocks are computed as needed.
    """

    name = "weighted_round_robin"
    rule = "NGINX smooth weighted round robin: largest current weight wins and pays the total"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._backends: list[Backend] = []
        self._weights = self._start = self._end = np.zeros(0)
        self._position = 0
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        state = self._replay(self._start, self._position)[0]
        carried = {b.index: float(c) for b, c in zip(self._backends, state, strict=True)}
        self._backends = list(backends)
        self._weights = np.array([b.weight for b in self._backends], dtype=float)
        self._plan(np.array([carried.get(b.index, 0.0) for b in self._backends]))

    def _replay(self, current: np.ndarray, steps: int) -> tuple[np.ndarray, list[int]]:
        current = current.copy()
        total = self._weights.sum()
        picks = []
        for _ in range(steps):
            current += self._weights
            best = int(np.argmax(current))
            current[best] -= total
            picks.append(best)
        return current, picks

    def _plan(self, start: np.ndarray) -> None:
        self._start = start
        self._end, picks = self._replay(start, max(1, round(self._weights.sum())))
        self._cycle = [self._backends[i] for i in picks]
        self._position = 0

    def choose(self, request: Request) -> Backend:
        if self._position == len(self._cycle):
            if np.array_equal(self._end, self._start):
                self._position = 0
            else:
                self._plan(self._end)
        backend = self._cycle[self._position]
        self._position += 1
        return backend
