"""Latency-aware policies: NGINX least_time and Finagle/Linkerd peak-EWMA."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy, number, require, whole
from lbsim.policies.least_connections import nginx_least
from lbsim.policies.power_of_choices import distinct_sample
from lbsim.workload import Request


class LeastResponseTime(Policy):
    """Send each request to the backend with the least rt x (1 + active) / weight.

    Rule (ngx_http_upstream_least_time_module.c, ``least_time last_byte``, NGINX 1.31;
    NGINX Plus before): rt is the backend's average response time in whole milliseconds,
    avg = round(0.05 v + 0.95 avg) (ngx_http_upstream_response_time_avg; the first sample,
    or any while avg is 0, seeds it), updated by successful attempts only. For the pick,
    rt is halved once per ``fail_timeout`` + 1 seconds since the backend was last chosen
    or failed (``checked``; never: rt 0), then capped at 5000 ms or else raised to the next
    multiple of 20 ms above it (0 -> 20, 20 -> 40), so a backend without a sample counts
    as 20 ms. The least rt x (1 + active) / weight wins; ties by smooth weighted round
    robin, as least_conn (:func:`nginx_least`). Times in whole seconds as ngx_time() keeps
    them. Reads: Backend.active, Backend.weight, response times seen by this instance.
    Not modelled: a 5xx answer that proxy_next_upstream does not retry counts as a success
    in NGINX and as a failure here. O(n) a pick, as NGINX.
    """

    name = "least_response_time"
    rule = "least rt x (1 + active) / weight, rt in whole ms and 20 ms steps (NGINX least_time)"

    def __init__(self, fail_timeout: int = 10) -> None:
        require(
            whole(fail_timeout, 1, 10**9),
            "least_response_time",
            "fail_timeout",
            "whole seconds from 1 to 10^9",
            fail_timeout,
        )
        self.fail_timeout = fail_timeout

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._average: dict[int, int] = {}
        self._checked: dict[int, int] = {}
        self._current: dict[int, float] = {}
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)

    def _eta(self, backend: Backend, now: int) -> int:
        """ngx_http_upstream_least_time_eta: rt x (1 + conns), rt decayed, capped, stepped."""
        rt = self._average.get(backend.index, 0)
        checked = self._checked.get(backend.index)
        idle = now - checked if checked is not None else None
        if idle is None or idle > self.fail_timeout:
            shift = 64 if idle is None else idle // (self.fail_timeout + 1)
            rt = rt >> shift if shift < 64 else 0
        rt = 5000 if rt > 5000 else rt + 20 - rt % 20
        return rt * (1 + backend.active)

    def choose(self, request: Request) -> Backend:
        now = math.floor(request.now)
        backends = self._backends
        best = nginx_least(backends, [self._eta(b, now) for b in backends], self._current)
        checked = self._checked.get(best.index)
        if checked is None or now - checked > self.fail_timeout:
            self._checked[best.index] = now
        return best

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        if not ok:
            # A failure sets checked to now (ngx_http_upstream_free_round_robin_peer).
            self._checked[backend.index] = math.floor(request.now)
            return
        v = int(latency * 1000)
        average = self._average.get(backend.index, 0)
        self._average[backend.index] = int(0.5 + v * 0.05 + average * 0.95) if average else v


class PeakEwma(Policy):
    """Of two distinct random backends, send to the one with the lower peak-EWMA cost.

    Rule (tower's PeakEwma, used by Linkerd; Finagle's PeakEwma): cost = rtt x (active + 1).
    The rtt estimate jumps to any sample above it (the "peak") and otherwise moves toward
    the sample with weight 1 - exp(-dt / decay); reading the cost first decays the estimate
    toward zero the same way. A backend starts at ``default_rtt``, which decays like any
    estimate from the moment it joins (tower's RttEstimate::new at construction; test
    ``default_decay``), so an unused newcomer becomes cheap over time; lbsim takes the
    join time as the first pick after the backend appears. Every response
    counts, errors included: a backend that fails fast looks fast and attracts traffic, the
    known failure mode of latency-based balancing. Tie-break: the first of the two. Reads:
    Backend.active, response times seen by this instance. Follows: Linkerd2 (decay 10 s,
    default_rtt 30 ms), Finagle p2cPeakEwma.
    """

    name = "peak_ewma"
    rule = "of two distinct random backends, least peak-EWMA(rtt) x (active + 1) (Linkerd, Finagle)"

    def __init__(self, decay: float = 10.0, default_rtt: float = 0.030) -> None:
        require(
            number(decay, 0) and decay > 0,
            "peak_ewma",
            "decay",
            "a number of seconds > 0",
            decay,
        )
        require(
            number(default_rtt, 0),
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
        # Backends seen for the first time: their default estimate starts at the next pick.
        self._joining = [b.index for b in backends if b.index not in self._estimate]

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
        return self._observe(backend, 0.0, now) * (backend.active + 1)

    def choose(self, request: Request) -> Backend:
        now = request.now
        if self._joining:
            for index in self._joining:
                self._estimate.setdefault(index, (self.default_rtt, now))
            self._joining = []
        backends = self._backends
        if len(backends) == 1:
            return backends[0]
        first, second = (backends[i] for i in distinct_sample(len(backends), 2, self._uniform.next))
        return second if self._cost(second, now) < self._cost(first, now) else first

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        self._observe(backend, latency, request.now)
