"""Latency-aware policies: NGINX least_time and Finagle/Linkerd peak-EWMA."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy, require, smooth_pick
from lbsim.policies.power_of_choices import distinct_sample
from lbsim.workload import Request

_BUCKET = 0.020  # NGINX rounds response times up to 20 ms so near-equal peers round-robin.
_CAP = 5.0  # NGINX caps the average at 5000 ms, beyond which only connections count.


class LeastResponseTime(Policy):
    """Send each request to the backend with the least rt x (1 + active) / weight.

    Rule (NGINX least_time, ngx_http_upstream_least_time_module.c): rt is an exponential
    moving average of the backend's response time, avg = 0.05 v + 0.95 avg (the first
    sample seeds it), capped at 5 s and rounded up to a 20 ms bucket; a backend with no
    sample has rt 0 and is tried first. Tie-break: smooth weighted round robin among the
    tied backends, as least_conn. Reads: Backend.active, Backend.weight, response times seen
    by this instance (``last_byte``). Not modelled: the bonus that halves rt once per
    fail_timeout for backends not chosen lately.

    Backends are grouped by key; a heap of keys finds the least group, and the tie-break
    scans that group only.
    """

    name = "least_response_time"
    rule = "least EMA(response time) x (1 + active) / weight, 20 ms buckets (NGINX least_time)"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._average: dict[int, float] = {}
        self._current: dict[int, float] = {}
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        self._position = {b.index: i for i, b in enumerate(self._backends)}
        self._key: list[float] = [0.0] * len(self._backends)
        self._groups: dict[float, set[int]] = {}
        self._keys: list[float] = []
        for i in range(len(self._backends)):
            self._place(i, first=True)

    def _key_of(self, backend: Backend) -> float:
        average = self._average.get(backend.index, 0.0)
        buckets = math.ceil(min(average, _CAP) / _BUCKET - 1e-9)
        return buckets * (1 + backend.active) / backend.weight

    def _place(self, i: int, first: bool = False) -> None:
        key = self._key_of(self._backends[i])
        if not first:
            old = self._key[i]
            if old == key:
                return
            group = self._groups[old]
            group.discard(i)
            if not group:
                del self._groups[old]
        self._key[i] = key
        if key not in self._groups:
            self._groups[key] = set()
            heapq.heappush(self._keys, key)
        self._groups[key].add(i)

    def choose(self, request: Request) -> Backend:
        while self._keys[0] not in self._groups:
            heapq.heappop(self._keys)
        tied = sorted(self._groups[self._keys[0]])
        if len(tied) == 1:
            return self._backends[tied[0]]
        backends = self._backends
        index = smooth_pick(self._current, ((backends[i].index, backends[i].weight) for i in tied))
        return backends[self._position[index]]

    def on_dispatch(self, backend: Backend, request: Request) -> None:
        i = self._position.get(backend.index)
        if i is not None:
            self._place(i)

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        previous = self._average.get(backend.index)
        self._average[backend.index] = latency if previous is None else 0.05 * latency + 0.95 * previous
        i = self._position.get(backend.index)
        if i is not None:
            self._place(i)


class PeakEwma(Policy):
    """Of two distinct random backends, send to the one with the lower peak-EWMA cost.

    Rule (tower's PeakEwma, used by Linkerd; Finagle's PeakEwma): cost = rtt x (active + 1).
    The rtt estimate jumps to any sample above it (the "peak") and otherwise moves toward
    the sample with weight 1 - exp(-dt / decay); reading the cost first decays the estimate
    toward zero the same way. A backend never measured uses ``default_rtt``. Every response
    counts, errors included: a backend that fails fast looks fast and attracts traffic, the
    known failure mode of latency-based balancing. Tie-break: the first of the two. Reads:
    Backend.active, response times seen by this instance. Follows: Linkerd2 (decay 10 s,
    default_rtt 30 ms), Finagle p2cPeakEwma.
    """

    name = "peak_ewma"
    rule = "of two distinct random backends, least peak-EWMA(rtt) x (active + 1) (Linkerd, Finagle)"

    def __init__(self, decay: float = 10.0, default_rtt: float = 0.030) -> None:
        require(
            isinstance(decay, int | float) and decay > 0,
            "peak_ewma",
            "decay",
            "a number of seconds > 0",
            decay,
        )
        require(
            isinstance(default_rtt, int | float) and default_rtt >= 0,
            "peak_ewma",
            "default_rtt",
            "a number of seconds >= 0",
            default_rtt,
        )
        self.decay = decay
        self.default_rtt = default_rtt

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._uniform = UniformDraws(rng)
        self._estimate: dict[int, tuple[float, float]] = {}
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)

    def _observe(self, backend: Backend, rtt: float, now: float) -> float:
        estimate, t_update = self._estimate.get(backend.index, (self.default_rtt, now))
        if rtt > estimate:
            estimate = rtt
        else:
            weight = math.exp(-max(now - t_update, 0.0) / self.decay)
            estimate = estimate * weight + rtt * (1 - weight)
        self._estimate[backend.index] = (estimate, now)
        return estimate

    def _cost(self, backend: Backend, now: float) -> float:
        if backend.index not in self._estimate:
            return self.default_rtt * (backend.active + 1)
        return self._observe(backend, 0.0, now) * (backend.active + 1)

    def choose(self, request: Request) -> Backend:
        backends = self._backends
        if len(backends) == 1:
            return backends[0]
        first, second = (backends[i] for i in distinct_sample(len(backends), 2, self._uniform.next))
        now = request.now
        return second if self._cost(second, now) < self._cost(first, now) else first

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        self._observe(backend, latency, request.now)
