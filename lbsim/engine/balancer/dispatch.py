"""The last stage of a balancer instance: pick the pool and the backend, guard, send, count.

Going down it routes the attempt to a pool (503 when the pool has no eligible backend),
chooses a backend (the pool's policy, or a layer-4 connection's backend, or a sticky or
untried one), lets circuit breakers refuse it, with Envoy's cluster limits lets it wait for
a connection (:mod:`~lbsim.engine.balancer.upstream`), counts it as active and hands it to
the server. The server's answer comes back here first: the attempt
stops counting and passive health checks see the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lbsim.engine.balancer.pools import Pool, Router
from lbsim.engine.balancer.stage import Stage
from lbsim.engine.balancer.upstream import UpstreamPools
from lbsim.engine.clock import Clock
from lbsim.engine.health import CircuitBreakers, PassiveCheck
from lbsim.engine.messages import Attempt, Endpoint
from lbsim.engine.network import ZoneHops
from lbsim.engine.settings import CircuitBreaker
from lbsim.policies.base import Backend
from lbsim.status import DROPPED, NO_BACKEND, OK, REJECTED, TIMEOUT

if TYPE_CHECKING:
    from lbsim.engine.balancer.instance import Instance, RunStats


Choose = Callable[[Attempt, Pool], Backend]


class Dispatch(Stage):
    """Routes, chooses, guards and sends; counts attempts in and out."""

    def __init__(
        self,
        clock: Clock,
        owner: Instance,
        endpoints: Sequence[Endpoint],
        default_pool: Pool,
        pool_of: Sequence[Pool],
        router: Router | None,
        choose: Choose | None,
        layer: int,
        breakers: CircuitBreakers | None,
        limits: CircuitBreaker | None,
        detector: PassiveCheck | None,
    ) -> None:
        """``choose``: how a backend is chosen when not by the pool's policy alone (None);
        ``limits``: the circuit breaker's cluster limits (requests, pending, connections)."""
        self.clock = clock
        self.owner = owner
        self.endpoints = list(endpoints)
        # How each backend takes an attempt (its server's accept, or a zone crossing's).
        self.deliver: list[Callable[[Attempt], None]] = [endpoint.accept for endpoint in endpoints]
        self.default_pool = default_pool
        self.pool_of = list(pool_of)
        self.router = router
        self.choose = choose
        self.counts_requests = layer == 7
        self.breakers = breakers
        self.upstream = (
            UpstreamPools(
                self.pool_of, limits.max_connections, limits.max_pending, limits.max_requests,
                self._attach, self._refuse,
            )
            if limits is not None and limits.limits_clusters
            else None
        )  # fmt: skip
        self.detector = detector
        self.passive = detector is not None or breakers is not None
        # When the instance last reloaded (-1: never): attempts sent before belong to the old process.
        self.reloaded_at = -1.0

    def send(self, attempt: Attempt) -> None:
        request = attempt.request
        pool = self.default_pool if self.router is None else self.router.pool_for(request)
        if not pool.eligible:
            self.reply(attempt, -1, NO_BACKEND)
            return
        backend = pool.pick(request) if self.choose is None else self.choose(attempt, pool)
        request.server = backend.index
        if attempt.call is not None:
            attempt.call.tried.add(backend.index)
        attempt.backend = backend
        attempt.t_sent = self.clock.now
        if self.breakers is not None and not self.breakers.allows(backend.index):
            self.reply(attempt, backend.index, REJECTED)
            return
        if self.upstream is not None:
            self.upstream.send(attempt, pool, backend)
            return
        # _attach, inlined on the hot path.
        if self.counts_requests:
            backend.active += 1
            if pool.on_dispatch is not None:
                pool.on_dispatch(backend, request)
        pool.outstanding += 1
        self.deliver[backend.index](attempt)

    def _attach(self, attempt: Attempt, pool: Pool, backend: Backend) -> None:
        """Count ``attempt`` as active on ``backend`` and hand it over (a connection is ready)."""
        if self.counts_requests:
            backend.active += 1
            if pool.on_dispatch is not None:
                pool.on_dispatch(backend, attempt.request)
        pool.outstanding += 1
        self.deliver[backend.index](attempt)

    def _refuse(self, attempt: Attempt, index: int, status: int) -> None:
        self.reply(attempt, index, status)

    def answer_from_backend(self, attempt: Attempt, status: int) -> None:
        """The backend answered ``attempt`` (or refused it) with ``status``: it ends, unless the
        instance died since it sent it or its sender gave up on it."""
        owner = self.owner
        if owner.dead:
            owner.deliver(attempt.request, -1, DROPPED)
            return
        if attempt.abandoned:
            return  # counted out at its try timeout; the answer is wasted
        self.end(attempt, status)

    def abandon(self, attempt: Attempt) -> None:
        """The sender gave up on ``attempt`` (its try timeout): it ends now as a timeout."""
        attempt.abandoned = True
        if self.upstream is not None and self.upstream.cancel(attempt):
            assert attempt.backend is not None
            self.reply(attempt, attempt.backend.index, TIMEOUT)
            return
        self.end(attempt, TIMEOUT)

    def end(self, attempt: Attempt, status: int) -> None:
        """``attempt`` ends with ``status``: it stops counting as outstanding on its backend,
        passive health sees the outcome, and the stage before takes the answer."""
        backend = attempt.backend
        assert backend is not None
        index = backend.index
        pool = self.pool_of[index]
        pool.outstanding -= 1
        # An attempt sent before the latest reload (reload.py) was the old process's: it
        # leaves the instance, but not the new process's active counts or its policies.
        if self.counts_requests and attempt.t_sent >= self.reloaded_at:
            backend.active -= 1
            if pool.on_complete is not None:
                pool.on_complete(backend, attempt.request, self.clock.now - attempt.t_sent, status == OK)
        if self.passive:
            self._observe(index, status)
        if self.upstream is None:
            self.reply(attempt, index, status)
            return
        self.upstream.release(index, status)
        self.reply(attempt, index, status)
        self.upstream.serve(index)

    def _observe(self, index: int, status: int) -> None:
        """Passive health sees the outcome of an attempt to backend ``index``."""
        if self.detector is not None:
            self.detector.result(index, status, len(self.pool_of[index].members))
        if self.breakers is not None:
            self.breakers.result(index, status != OK)


class ZonedDispatch(Dispatch):
    """Dispatch for an instance in ``zone``: counts attempts that cross to another zone and,
    with ``hops``, sends them (and takes their answers) across."""

    def __init__(
        self,
        *args: object,
        zones: Sequence[str | None],
        zone: str,
        stats: RunStats,
        hops: ZoneHops | None,
        **kwargs: object,
    ) -> None:
        """``zones``: each backend's zone."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hops = hops
        self.deliver = [
            _ZoneCrossing(endpoint, backend_zone != zone, stats, hops).accept
            for endpoint, backend_zone in zip(self.endpoints, zones, strict=True)
        ]

    def answer_from_backend(self, attempt: Attempt, status: int) -> None:
        if attempt.crossed:
            assert self.hops is not None
            self.hops.answer(attempt, status)
            return
        super().answer_from_backend(attempt, status)


class _ZoneCrossing:
    """Sending to a backend from an instance in a zone: counted as crossing zones or not (for
    attempts of requests that arrived after warm-up), and sent across when it does."""

    def __init__(self, endpoint: Endpoint, crossed: bool, stats: RunStats, hops: ZoneHops | None) -> None:
        self.endpoint = endpoint
        self.crossed = crossed
        self.stats = stats
        self.hops = hops if crossed else None

    def accept(self, message: Attempt) -> None:
        stats = self.stats
        if message.request.t_arrival >= stats.warmup:
            stats.n_zoned += 1
            stats.n_cross_zone += self.crossed
        if self.hops is not None:
            self.hops.send(self.endpoint, message)
            return
        self.endpoint.accept(message)
