"""Least connections (NGINX least_conn) and weighted least connections (HAProxy leastconn).

Both keep the backends ordered by load in heaps updated on dispatch and completion, so a
pick costs O(log n) instead of a scan of every backend.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from lbsim.policies.base import Backend, Policy, smooth_pick
from lbsim.workload import Request


class LeastConnections(Policy):
    """Send each request to the backend with the fewest active requests per unit of weight.

    Rule (ngx_http_upstream_get_least_conn_peer, NGINX 1.22-1.26): the backend with the
    least active / weight (compared as active_a x weight_b < active_b x weight_a), the first
    in list order unless another has the same ratio; then smooth weighted round robin among
    the tied: each adds its weight to its current weight, the largest wins (the first on
    equal values) and loses the tied weights' sum. A backend with no tie is taken without
    touching current weights. Reads: Backend.active (this instance's own count),
    Backend.weight. Follows: NGINX least_conn (effective weight equal to weight).

    With equal weights, backends are kept in buckets by active count; inside a bucket, a
    heap orders them by current weight stored relative to a bucket offset, so "every tied
    backend adds 1" is one addition to the offset: O(log n) a pick. With unequal weights a
    pick scans the backends as NGINX does, O(n).
    """

    name = "least_connections"
    rule = "least active / weight; ties by smooth weighted round robin among the tied (NGINX least_conn)"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._backends: list[Backend] = []
        self._weighted = False
        self._current: dict[int, float] = {}
        self._stored: list[int] = []
        self._level: list[int] = []
        self._offset: list[int] = []
        super().reset(backends, rng)

    def _current_weights(self) -> dict[int, float]:
        """Each backend's current weight (by server index), whichever way it is kept."""
        if self._weighted:
            return self._current
        return {b.index: self._stored[i] + self._offset[self._level[i]] for i, b in enumerate(self._backends)}

    def update(self, backends: Sequence[Backend]) -> None:
        previous = self._current_weights()
        self._backends = list(backends)
        self._position = {b.index: i for i, b in enumerate(self._backends)}
        self._weighted = len({b.weight for b in self._backends}) > 1
        if self._weighted:
            self._current = previous
            return
        n = len(self._backends)
        self._level = [b.active for b in self._backends]
        self._version = [0] * n
        self._stored = [int(previous.get(b.index, 0)) for b in self._backends]
        # Per active count (a level): how many backends are at it, their heap (by current
        # weight, then list order) and the offset of their current weights.
        self._size: list[int] = []
        self._offset = []
        self._heaps: list[list[tuple[int, int, int]]] = []
        self._grow(max(self._level))
        for i, level in enumerate(self._level):
            self._size[level] += 1
            self._heaps[level].append((-self._stored[i], i, 0))
        for heap in self._heaps:
            heapq.heapify(heap)
        self._min = min(self._level)

    def _grow(self, level: int) -> None:
        """Make room for backends with ``level`` active requests."""
        grow = level + 1 - len(self._size)
        self._size.extend([0] * grow)
        self._offset.extend([0] * grow)
        self._heaps.extend([] for _ in range(grow))

    def choose(self, request: Request) -> Backend:
        if self._weighted:
            return nginx_least(self._backends, [b.active for b in self._backends], self._current)
        level = self._min
        heap = self._heaps[level]
        version = self._version
        while version[heap[0][1]] != heap[0][2]:
            heapq.heappop(heap)  # a backend that moved on since
        i = heap[0][1]
        tied = self._size[level]
        if tied > 1:
            self._offset[level] += 1
            self._stored[i] -= tied
            version[i] += 1
            heapq.heapreplace(heap, (-self._stored[i], i, version[i]))
        return self._backends[i]

    def _follow(self, backend: Backend, request: Request, latency: float = 0.0, ok: bool = True) -> None:
        """``backend``'s active count changed (a dispatch or a completion): it moves to the
        bucket of its new count, keeping its current weight."""
        i = self._position.get(backend.index)
        if i is None or self._weighted:
            return
        level = backend.active
        size, offset, stored = self._size, self._offset, self._stored
        old = self._level[i]
        absolute = stored[i] + offset[old]
        self._version[i] += 1
        left = size[old] = size[old] - 1
        if not left:
            self._heaps[old] = []
            offset[old] = 0
        if level >= len(size):
            self._grow(level)
        stored[i] = absolute - offset[level]
        n = size[level] = size[level] + 1
        heap = self._heaps[level]
        self._level[i] = level
        heapq.heappush(heap, (-stored[i], i, self._version[i]))
        if len(heap) > 4 * n + 16:
            # Drop the entries of backends that moved on (their version is old).
            version = self._version
            heap[:] = [entry for entry in heap if version[entry[1]] == entry[2]]
            heapq.heapify(heap)
        if level < self._min or (old == self._min and not left):
            self._min = level

    on_dispatch = on_complete = _follow


def nginx_least(
    backends: Sequence[Backend], load: Sequence[int | float], current: dict[int, float]
) -> Backend:
    """The backend NGINX's least_conn and least_time pick (their two loops): the least
    load / weight, compared as load_a x weight_b < load_b x weight_a, the first in order
    unless another ties; then smooth weighted round robin (:func:`smooth_pick`) among the
    tied, from the first of them on, with ``current`` weights kept by server index. O(n)."""
    best, many = 0, False
    for i in range(1, len(backends)):
        left, right = load[i] * backends[best].weight, load[best] * backends[i].weight
        if left < right:
            best, many = i, False
        elif left == right:
            many = True
    if not many:
        return backends[best]
    first = backends[best]
    tied = {
        b.index: b
        for i, b in enumerate(backends[best:], best)
        if load[i] * first.weight == load[best] * b.weight
    }
    return tied[smooth_pick(current, ((index, b.weight) for index, b in tied.items()))]


class WeightedLeastConnections(Policy):
    """Send each request to the backend with the least active requests per unit of weight.

    Rule (HAProxy lb_fwlc.c, fwlc_queue_srv): key = 0 for a backend with no active request,
    else floor((active + 1) * 4096 / (16 * weight)); the smallest key wins, so idle backends are
    used first. Tie-break: among equal keys, the backend that took that key earliest (the
    ebtree keeps equal keys in insertion order), which rotates tied backends. Reads:
    Backend.active, Backend.weight. Follows: HAProxy ``balance leastconn``.
    """

    name = "weighted_least_connections"
    rule = "least (active + 1) / weight, idle backends first (HAProxy leastconn)"

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        self._position = {b.index: i for i, b in enumerate(self._backends)}
        self._version = [0] * len(self._backends)
        self._heap: list[tuple[float, int, int, int]] = []
        self._sequence = 0
        for i in range(len(self._backends)):
            self._push(i)

    def _push(self, i: int) -> None:
        backend = self._backends[i]
        # fwlc_queue_srv: (inflight + 1) * SRV_EWGHT_MAX / eweight in unsigned integers (floor),
        # SRV_EWGHT_MAX = 4096 and eweight = 16 x weight.
        key: float = (backend.active + 1) * 4096 // (16 * backend.weight) if backend.active else 0
        self._version[i] += 1
        self._sequence += 1
        heapq.heappush(self._heap, (key, self._sequence, i, self._version[i]))
        if len(self._heap) > 4 * len(self._backends) + 16:
            version = self._version
            self._heap = [entry for entry in self._heap if version[entry[2]] == entry[3]]
            heapq.heapify(self._heap)

    def choose(self, request: Request) -> Backend:
        heap = self._heap
        version = self._version
        while version[heap[0][2]] != heap[0][3]:
            heapq.heappop(heap)
        return self._backends[heap[0][2]]

    def on_dispatch(self, backend: Backend, request: Request) -> None:
        i = self._position.get(backend.index)
        if i is not None:
            self._push(i)

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        i = self._position.get(backend.index)
        if i is not None:
            self._push(i)
