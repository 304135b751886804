"""One balancer instance: its pools and their policies, and its request path as a chain of stages.

Each instance keeps its own policy state and its own view of the backends (``active``
counts only its own requests), as NGINX workers without a shared zone or Envoy sidecars
do. Its request path is built from the stages its configuration needs, in this order:
client connections, processing (cores, TLS), retries, dispatch. Answers come back up
through the stages that handle them, then to the client.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from lbsim.engine.balancer.choice import Choice
from lbsim.engine.balancer.connections import Connection, Connections
from lbsim.engine.balancer.dispatch import Dispatch, ZonedDispatch
from lbsim.engine.balancer.eligibility import Eligibility
from lbsim.engine.balancer.pools import Pool, Router
from lbsim.engine.balancer.processing import Cores
from lbsim.engine.balancer.reload import Reloads
from lbsim.engine.balancer.retries import Retries
from lbsim.engine.balancer.stage import Answer, Stage
from lbsim.engine.clock import Clock
from lbsim.engine.health import CircuitBreakers, HealthChecker, Log, MaxFails, OutlierDetector
from lbsim.engine.messages import Attempt, Endpoint
from lbsim.engine.network import ZoneHops
from lbsim.engine.settings import BalancerTier, ConnectionLimits, SlowStart
from lbsim.policies.base import Backend
from lbsim.status import DROPPED, FINAL_STATUS
from lbsim.workload import Request

# How an instance answers a request: (request, server index or -1, terminal status).
Deliver = Callable[[Request, int, int], None]


class Placement(NamedTuple):
    """What the balancer knows of a server besides the server itself."""

    group: str
    weight: int
    zone: str | None
    max_connection_age: float | None
    backup: bool
    slow_start: SlowStart | None
    address: str


class RunStats:
    """Counters the balancer instances share: retries and hedges sent, where retries came
    from, and (for instances in a zone) requests sent after ``warmup`` and how many of them
    crossed to another zone."""

    def __init__(self, warmup: float = 0.0) -> None:
        self.warmup = warmup
        self.n_retries = 0
        self.n_hedges = 0
        self.retry_log: list[tuple[float, int]] = []
        self.n_zoned = 0
        self.n_cross_zone = 0


class Instance:
    """One balancer instance of tier ``tier``."""

    def __init__(
        self,
        clock: Clock,
        index: int,
        config: BalancerTier,
        endpoints: Sequence[Endpoint],
        placements: Sequence[Placement],
        connection: ConnectionLimits,
        rng: np.random.Generator,
        deliver: Deliver,
        log: Log,
        stats: RunStats,
        scope: set[int] | None = None,
        tier: str = "balancer",
        hops: ZoneHops | None = None,
        bottom: bool = True,
        answers: Sequence[int] = FINAL_STATUS,
        may_fail: bool = True,
    ) -> None:
        """Build instance ``index`` in front of ``endpoints`` (placed as ``placements`` say);
        with ``scope`` (a region's servers), only those are ever members. With ``hops``,
        requests and probes to another zone than the instance's cross between zones.
        ``deliver`` takes every request this instance ends; a ``bottom`` instance names the
        server that answered, an upper one the server below that served it; ``answers``:
        the status it answers for each outcome (what a client sees, or what a tier above is
        answered); ``may_fail``: whether a fault of the run can crash it."""
        self.clock = clock
        self.index = index
        self.tier = tier
        self.log_to = log
        self.deliver = deliver
        self.answers = answers
        self.dead = False
        pool_rng, age_rng, health_rng, retry_rng = rng.spawn(4)
        names = [endpoint.name for endpoint in endpoints]
        backends = [
            Backend(k, endpoint.name, p.weight, p.zone, endpoint, p.address)
            for k, (endpoint, p) in enumerate(zip(endpoints, placements, strict=True))
        ]
        # The instance's zone: instances take the listed zones in turn (in each region).
        own = index % config.instances
        self.zone = config.zones[own % len(config.zones)] if config.zones else None
        self.pools, pool_of = self._pools(config, backends, placements, pool_rng)
        processing_cost = config.cost + config.tls_per_request
        handshake = config.tls_handshake
        breaker = config.circuit_breaker
        self.eligibility = Eligibility(
            clock,
            list(self.pools.values()),
            [p.backup for p in placements],
            [p.slow_start for p in placements],
            [p.weight for p in placements],
            config.panic_threshold,
            config.backups,
            scope,
            self._log,
        )
        hops = hops if self.zone is not None else None
        far = {b.index for b in backends if b.zone != self.zone} if hops is not None else set()
        self.checker = (
            HealthChecker(clock, config.health_check, endpoints, names, health_rng, self.eligibility.changed,
                          self._log, scope, far, hops)
            if config.health_check
            else None
        )  # fmt: skip
        passive = config.outlier_detection
        self.detector = (
            (MaxFails if passive.max_fails is not None else OutlierDetector)(
                clock, passive, names, self.eligibility.changed, self._log
            )
            if passive
            else None
        )
        self.eligibility.checker, self.eligibility.detector = self.checker, self.detector
        breakers = (
            CircuitBreakers(clock, breaker, names, self._log)
            if breaker and breaker.failure_threshold
            else None
        )

        # The request path: only the stages this instance's configuration needs.
        tracks_connections = config.layer == 4 or handshake > 0
        connections = (
            Connections(
                clock, connection.requests, connection.lifetime,
                [p.max_connection_age for p in placements], age_rng,
            )
            if tracks_connections
            else None
        )  # fmt: skip
        self.cores = (
            Cores(
                clock,
                config.cores,
                processing_cost,
                handshake,
                self,
            )
            if processing_cost > 0 or handshake > 0
            else None
        )
        retries = Retries(clock, config.retries, retry_rng, stats, self) if config.retries else None
        choose: Callable[[Attempt, Pool], Backend] | None
        if connections is not None and config.layer == 4:
            choose = connections.pinned
        elif config.sticky is not None or retries is not None:
            choose = Choice(clock, config.sticky)
        else:
            choose = None
        dispatch_args = (
            clock, self, endpoints, next(iter(self.pools.values())), pool_of,
            Router(config.routes, self.pools) if config.routes else None,
            choose, config.layer, breakers, breaker, self.detector,
        )  # fmt: skip
        self.dispatch = (
            ZonedDispatch(
                *dispatch_args, zones=[p.zone for p in placements], zone=self.zone, stats=stats, hops=hops
            )
            if self.zone is not None
            else Dispatch(*dispatch_args)
        )
        if self.detector is not None:
            self.dispatch.deliver = [self.detector.watch(i, d) for i, d in enumerate(self.dispatch.deliver)]
        if config.reload_every is not None:
            Reloads(clock, config.reload_every, self.dispatch, self.eligibility, backends, self._log)
        # Where backends answer this instance's attempts (bound once: it is on every request's
        # path). An answer is checked first (for a zone crossing, a crash of the instance, a
        # try timeout) only where there can be one.
        try_timeout = config.retries.try_timeout if config.retries else None
        guarded = self.zone is not None or may_fail or try_timeout is not None
        self.answered = self.dispatch.answer_from_backend if guarded else self.dispatch.end
        stages = [s for s in (connections, self.cores, retries) if s is not None] + [self.dispatch]
        self.receive_attempt = _chain(stages, self._reply_bottom if bottom else self._reply_upper)

    def _pools(
        self,
        config: BalancerTier,
        backends: list[Backend],
        placements: Sequence[Placement],
        rng: np.random.Generator,
    ) -> tuple[dict[str, Pool], list[Pool]]:
        """The instance's pools by name, and the pool of each backend."""
        local_count = {
            z: sum(config.zones[j % len(config.zones)] == z for j in range(config.instances))
            for z in config.zones
        }
        pools: dict[str, Pool] = {}
        pool_of: list[Pool] = [None] * len(backends)  # type: ignore[list-item]
        for spec, one_rng in zip(config.pools, rng.spawn(len(config.pools)), strict=True):
            members = [
                b
                for b, p in zip(backends, placements, strict=True)
                if spec.groups is None or p.group in spec.groups
            ]
            pool = pools[spec.name] = Pool(spec.name, spec.make_policy(), members, one_rng)
            if config.locality is not None:
                pool.localize(config.locality, self.zone, local_count, spec.make_policy)
            elif config.backups == "priority" and any(placements[b.index].backup for b in members):
                pool.prioritize([p.backup for p in placements], spec.make_policy)
            for b in members:
                pool_of[b.index] = pool
        return pools, pool_of

    @property
    def attempts_active(self) -> int:
        """Attempts this instance sent that have not ended, over all its pools."""
        return sum(pool.outstanding for pool in self.pools.values())

    def receive(self, request: Request) -> None:
        """A client (or the tier above) sends ``request`` to this instance."""
        self.receive_attempt(Attempt(request, self.answered))

    def attempt(self, request: Request, connection: Connection | None) -> Attempt:
        """Another attempt of ``request`` (a retry or a hedge) on the same client connection."""
        return Attempt(request, self.answered, connection)

    def _reply_bottom(self, attempt: Attempt, index: int, status: int) -> None:
        request = attempt.request
        request.t_start = attempt.t_start
        self.deliver(request, index, self.answers[status])

    def _reply_upper(self, attempt: Attempt, index: int, status: int) -> None:
        request = attempt.request
        request.t_start = attempt.t_start
        self.deliver(request, attempt.served_by, self.answers[status])

    def set_present(self, indices: set[int]) -> None:
        """The backends whose index is in ``indices`` (and in the scope) are members."""
        self.eligibility.set_present(indices)

    def fail(self) -> None:
        """This instance crashed: what it holds and what reaches it from now on is dropped."""
        self.dead = True
        if self.checker is not None:
            self.checker.stopped = True
        if self.dispatch.upstream is not None:
            for attempt in self.dispatch.upstream.drop_waiting():
                self.deliver(attempt.request, -1, DROPPED)

    def _log(self, component: str, subject: str, event: str) -> None:
        self.log_to(f"{self.tier}-{self.index}/{component}", subject, event)


def _chain(stages: Sequence[Stage], reply: Answer) -> Callable[[Attempt], None]:
    """Link ``stages`` (top first) down, and those that handle answers up to ``reply``;
    return the top stage's ``send``."""
    for above, below in itertools.pairwise(stages):
        above.forward = below.send
    for stage in stages:
        stage.reply = reply
        if type(stage).answer is not Stage.answer:
            reply = stage.answer
    return stages[0].send
