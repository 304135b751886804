"""One balancer instance: its processing cores, its pools and their policies, its routes,
its client connections and its session table.

Each instance keeps its own policy state and its own view of the backends (``active``
counts only its own requests), as NGINX workers without a shared zone or Envoy sidecars
do. A request goes through the cores (processing cost, TLS), is routed to a pool, gets a
backend (pinned per connection at layer 4, chosen per request at layer 7, or taken from
the session table) and is sent to that server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.engine.clock import Clock
from lbsim.engine.health import CircuitBreakers, HealthChecker, Log, OutlierDetector
from lbsim.engine.locality import locality_weights, zone_aware_split
from lbsim.engine.network import ZoneHops
from lbsim.engine.recorder import CONNECT_FAILURE, DROPPED, ERROR, NO_BACKEND, OK, REJECTED, RESET, TIMEOUT
from lbsim.engine.server import Server
from lbsim.policies.base import Backend, Policy, smooth_pick
from lbsim.scenario import (
    BalancerModel,
    ConnectionModel,
    LocalityModel,
    PoolModel,
    RouteModel,
    SlowStartModel,
)
from lbsim.workload import Request, stable_uniform

Finish = Callable[[Request, int, int], None]


class Placement(NamedTuple):
    """What the balancer knows of a server besides the server itself."""

    group: str
    weight: int
    zone: str | None
    max_connection_age: float | None
    backup: bool
    slow_start: SlowStartModel | None


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


class Call:
    """One client request that a balancer may try several times (retries, hedges)."""

    __slots__ = ("live", "request", "retries", "tried")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.live: list[Request] = []
        self.tried: set[int] = set()
        self.retries = 0


# What a failed attempt is, in the words of retries.on.
_CAUSE = {
    CONNECT_FAILURE: "connect_failure",
    ERROR: "error",
    RESET: "error",
    TIMEOUT: "timeout",
    REJECTED: "rejected",
}


def final_status(status: int) -> int:
    """The status a client sees: a refused or reset connection is an error."""
    return ERROR if status in (CONNECT_FAILURE, RESET) else status


class Processing(Server):
    """The balancer's cores: each request takes ``cost`` seconds of one core, plus TLS work.

    A request that opens a client connection also pays the TLS handshake.
    """

    marks_start = False

    def __init__(self, clock: Clock, name: str, cores: int, cost: float, handshake: float) -> None:
        super().__init__(clock, -1, name, "balancer", 1.0, cores, None)
        self.cost = cost
        self.handshake = handshake

    def service_time(self, request: Request) -> float:
        connection = request.connection
        if connection is not None and connection.first is request:
            return self.cost + self.handshake
        return self.cost


class Pool:
    """Backends that share a policy: the balancer's whole fleet, or a named subset of groups.

    With a locality rule (:meth:`localize`), a zone is picked first and a policy of that
    zone's own picks the backend, as Envoy keeps a host set per locality.
    """

    def __init__(
        self, name: str, policy: Policy, members: Sequence[Backend], rng: np.random.Generator
    ) -> None:
        self.name = name
        self.policy = policy
        self.members = list(members)
        self.rng = rng
        self.eligible: list[Backend] = []
        self.present: set[int] = set()
        self.started = False
        self.outstanding = 0
        self.on_dispatch = policy_hook(policy, "on_dispatch")
        self.on_complete = policy_hook(policy, "on_complete")
        # The backend for a request: the policy's choice, or its zone's once localized.
        self.pick: Callable[[Request], Backend] = policy.choose
        self.locality: LocalityModel | None = None
        self.zones: dict[str, Pool] = {}
        self.split: list[tuple[str, float]] | None = None
        self.current: dict[str, float] = {}
        self.effective: dict[str, float] = {}

    def localize(
        self,
        locality: LocalityModel,
        zone: str | None,
        local_share: dict[str, float],
        policies: Callable[[], Policy],
    ) -> None:
        """Pick a zone by ``locality`` for an instance in ``zone`` (``local_share``: the share
        of instances in each zone), then a backend by a fresh policy of that zone."""
        zones = list(dict.fromkeys(b.zone for b in self.members if b.zone is not None))
        rngs = self.rng.spawn(len(zones) + 1)
        self.zones = {
            z: Pool(z, policies(), [b for b in self.members if b.zone == z], r)
            for z, r in zip(zones, rngs, strict=False)
        }
        self.locality_draws = UniformDraws(rngs[-1])
        self.locality, self.zone, self.local_share = locality, zone, local_share
        self.current = dict.fromkeys(zones, 0.0)
        self.pick = self._pick_in_zone
        pools = [self, *self.zones.values()]
        if any(p.on_dispatch is not None for p in pools):
            self.on_dispatch = self._dispatched
        if any(p.on_complete is not None for p in pools):
            self.on_complete = self._completed
        self._own_dispatch = policy_hook(self.policy, "on_dispatch")
        self._own_complete = policy_hook(self.policy, "on_complete")

    def _dispatched(self, backend: Backend, request: Request) -> None:
        for hook in (self._own_dispatch, self.zones[backend.zone].on_dispatch if backend.zone else None):
            if hook is not None:
                hook(backend, request)

    def _completed(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        for hook in (self._own_complete, self.zones[backend.zone].on_complete if backend.zone else None):
            if hook is not None:
                hook(backend, request, latency, ok)

    def set_eligible(self, eligible: list[Backend], present: Sequence[Backend] = ()) -> None:
        """Make ``eligible`` (members, in member order) the backends the policy chooses from;
        ``present`` (the members in rotation, healthy or not) sizes the zones' health."""
        if self.locality is not None:
            self._set_zones(eligible, present)
        if [b.index for b in eligible] == [b.index for b in self.eligible]:
            return
        self.eligible = eligible
        self.present = {b.index for b in eligible}
        if not eligible:
            return
        if self.started:
            self.policy.update(eligible)
        else:
            self.policy.reset(eligible, self.rng)
            self.started = True

    def _set_zones(self, eligible: list[Backend], present: Sequence[Backend]) -> None:
        assert self.locality is not None
        for z, sub in self.zones.items():
            sub.set_eligible([b for b in eligible if b.zone == z])
        healthy = {z: sum(b.zone == z for b in eligible) for z in self.zones}
        if self.locality.mode == "zone_aware":
            assert self.zone is not None
            split = zone_aware_split(self.zone, self.local_share, healthy, self.locality.min_cluster_size)
            self.split = None if split is None else list(split.items())
        else:
            counts = {z: sum(b.zone == z for b in present) for z in self.zones}
            self.effective = locality_weights(
                self.locality.weights, healthy, counts, self.locality.overprovisioning
            )

    def reweigh(self) -> None:
        """Tell the policies that weights changed (slow start)."""
        self.policy.update(self.eligible)
        for sub in self.zones.values():
            if sub.eligible:
                sub.policy.update(sub.eligible)

    def _pick_in_zone(self, request: Request) -> Backend:
        """The backend for ``request`` in the zone the locality rule picks (any, if none)."""
        zone = self._zone()
        return self.policy.choose(request) if zone is None else self.zones[zone].policy.choose(request)

    def _zone(self) -> str | None:
        if self.split is not None:
            draw = self.locality_draws.next()
            for zone, probability in self.split:
                draw -= probability
                if draw < 0:
                    return zone
            return self.split[-1][0]
        weighted = [(zone, weight) for zone, weight in self.effective.items() if weight > 0]
        if not weighted:
            return None
        # Smooth weighted round robin over zones (NGINX's rule; Envoy uses an EDF schedule).
        return smooth_pick(self.current, weighted)


class Router:
    """Layer-7 routes: the first rule whose path prefix and headers match names the pool."""

    def __init__(self, routes: Sequence[RouteModel], pools: dict[str, Pool]) -> None:
        self.rules: list[
            tuple[str | None, tuple[tuple[str, str], ...], Pool | None, list[tuple[float, Pool]]]
        ] = []
        for route in routes:
            split: list[tuple[float, Pool]] = []
            if route.split:
                total, running = sum(route.split.values()), 0.0
                for name, weight in route.split.items():
                    running += weight / total
                    split.append((running, pools[name]))
            target = pools[route.pool] if route.pool else None
            self.rules.append((route.path_prefix, tuple((route.header or {}).items()), target, split))
        self._session_point: dict[int, float] = {}

    def pool_for(self, request: Request) -> Pool:
        """The pool of the first matching rule (the last rule matches everything)."""
        for prefix, headers, target, split in self.rules:
            if prefix is not None and not request.path.startswith(prefix):
                continue
            if any(request.headers.get(name) != value for name, value in headers):
                continue
            if target is not None:
                return target
            point = self._session_point.get(request.session)
            if point is None:
                point = self._session_point[request.session] = stable_uniform(f"split:{request.session}")
            for upper, pool in split:
                if point < upper:
                    return pool
            return split[-1][1]
        raise AssertionError("the last route matches every request")


class Connection:
    """A client's connection to one balancer instance (and at layer 4, to one backend)."""

    __slots__ = ("backend", "client", "counted", "first", "n_left", "open", "outstanding", "pool", "t_open")

    def __init__(self, client: int, n_left: int, first: Request, t_open: float) -> None:
        self.client = client
        self.n_left = n_left
        self.first = first
        self.t_open = t_open
        self.open = True
        self.outstanding = 0
        self.backend: Backend | None = None
        self.pool: Pool | None = None
        self.counted = False


class Balancer:
    """One balancer instance."""

    def __init__(
        self,
        clock: Clock,
        index: int,
        config: BalancerModel,
        servers: Sequence[Server],
        placements: Sequence[Placement],
        connection: ConnectionModel,
        rng: np.random.Generator,
        finish: Finish,
        log: Log,
        stats: RunStats,
        scope: set[int] | None = None,
        tier: str = "balancer",
        hops: ZoneHops | None = None,
    ) -> None:
        """Build instance ``index`` in front of ``servers`` (placed as ``placements`` say);
        with ``scope`` (a region's servers), only those servers are ever members. With
        ``hops``, requests and probes to another zone than the instance's cross between zones."""
        self.clock = clock
        self.scope = scope
        self.tier = tier
        self.index = index
        self.layer = config.layer
        self.servers = list(servers)
        self.finish = finish
        self.log = log
        self.stats = stats
        self.connection_requests = connection.requests or 0
        self.connection_lifetime = connection.lifetime
        self.max_age = [p.max_connection_age for p in placements]
        self.backup = [p.backup for p in placements]
        self.slow_start = [p.slow_start for p in placements]
        self.base_weight = [p.weight for p in placements]
        self.usable: set[int] = set()
        pool_rng, self.age_rng, health_rng, self.retry_rng = rng.spawn(4)
        backends = [
            Backend(server.index, server.name, p.weight, p.zone, server)
            for server, p in zip(servers, placements, strict=True)
        ]
        # The instance's zone: instances take the listed zones in turn (in each region).
        own = index % config.instances
        self.zone = config.zones[own % len(config.zones)] if config.zones else None
        local_share = {
            z: sum(config.zones[j % len(config.zones)] == z for j in range(config.instances))
            / config.instances
            for z in config.zones
        }
        pool_specs: dict[str, PoolModel | None] = dict(config.pools) or {"default": None}
        self.pools: dict[str, Pool] = {}
        self.pool_of: list[Pool] = [None] * len(servers)  # type: ignore[list-item]
        for (name, spec), one_rng in zip(pool_specs.items(), pool_rng.spawn(len(pool_specs)), strict=True):
            members = [
                b
                for b, p in zip(backends, placements, strict=True)
                if spec is None or p.group in spec.servers
            ]
            policy = config.policy_object(spec.policy if spec is not None else None)
            pool = self.pools[name] = Pool(name, policy, members, one_rng)
            if config.locality is not None:
                pool.localize(config.locality, self.zone, local_share, _policies(config, spec))
            for b in members:
                self.pool_of[b.index] = pool
        self.router = Router(config.routes, self.pools) if config.routes else None
        self.default_pool = next(iter(self.pools.values()))
        cost = config.cost_per_request + (config.tls.per_request if config.tls else 0.0)
        handshake = config.tls.handshake if config.tls else 0.0
        self.processing = (
            Processing(clock, f"{tier}-{index}", config.cores, cost, handshake)
            if cost > 0 or handshake > 0
            else None
        )
        if self.processing is not None:
            self.processing.done = self.forward
        self.track_connections = self.layer == 4 or handshake > 0
        self.connections: dict[int, Connection] = {}
        self.sticky_by_client = config.sticky is not None and config.sticky.by == "client"
        self.sticky_ttl = config.sticky.ttl if config.sticky else None
        self.sticky: dict[int, tuple[Backend, float]] | None = {} if config.sticky else None
        # Health and resilience.
        self.panic_threshold = config.panic_threshold
        self.present: set[int] = set()
        self.panicking = False
        names = [s.name for s in servers]
        self.hops = hops if self.zone is not None else None
        far = {b.index for b in backends if b.zone != self.zone} if self.hops is not None else set()
        self.checker = (
            HealthChecker(clock, config.health_check, servers, health_rng, self._changed, self._log,
                          scope, far, self.hops)
            if config.health_check
            else None
        )  # fmt: skip
        self.detector = (
            OutlierDetector(clock, config.outlier_detection, servers, self._changed, self._log)
            if config.outlier_detection
            else None
        )
        breaker = config.circuit_breaker
        self.breakers = (
            CircuitBreakers(clock, breaker, names, self._log)
            if breaker and breaker.failure_threshold
            else None
        )
        self.max_requests = breaker.max_requests if breaker else None
        self.max_pending = breaker.max_pending if breaker else None
        self.passive = self.detector is not None or self.breakers is not None
        retries = config.retries
        self.retries = retries
        self.retry_on = set(retries.on) if retries else set()
        self.retries_active = 0
        self.attempts_active = 0
        self.dead = False

    def fail(self) -> None:
        """This instance crashed: what it holds and what reaches it from now on is dropped."""
        self.dead = True
        if self.checker is not None:
            self.checker.stopped = True

    def _log(self, component: str, subject: str, event: str) -> None:
        self.log(f"{self.tier}-{self.index}/{component}", subject, event)

    # Which backends may be chosen ---------------------------------------------------

    def set_present(self, indices: set[int]) -> None:
        """The servers whose index is in ``indices`` (and in the scope) are members."""
        self.present = indices if self.scope is None else indices & self.scope
        self.refresh()

    def _changed(self, index: int) -> None:
        self.refresh()

    def available(self, index: int) -> bool:
        """Whether health checks and passive health let this instance use server ``index``."""
        if self.checker is not None and not self.checker.up[index]:
            return False
        return self.detector is None or index not in self.detector.out

    def _ramp(self, backend: Backend, pool: Pool, step: int) -> None:
        """Slow start: set the weight for step ``step`` of 20 and schedule the next step."""
        config = self.slow_start[backend.index]
        assert config is not None
        steps = 20
        if step > steps:
            backend.weight = self.base_weight[backend.index]
        elif config.style == "haproxy":
            # HAProxy: linear, recomputed every max(1 s, window / 20), from one step up.
            backend.weight = self.base_weight[backend.index] * step / steps
        else:
            # Envoy: weight x max(min_weight_percent, (t / window)^(1 / aggression)).
            factor = max(config.min_weight_percent / 100, (step / steps) ** (1 / config.aggression))
            backend.weight = self.base_weight[backend.index] * factor
        if backend.index in pool.present:
            pool.reweigh()
        if step <= steps:
            interval = max(1.0, config.window / steps) if config.style == "haproxy" else config.window / steps
            self.clock.schedule(interval, lambda args: self._ramp(*args), (backend, pool, step + 1))

    def refresh(self) -> None:
        """Recompute each pool's eligible backends.

        Healthy primaries are used while they are at least ``panic_threshold`` percent of
        the present primaries. With none healthy, healthy backups are used (NGINX and
        HAProxy ``backup``). Below the threshold otherwise, the pool panics and uses every
        present primary, healthy or not (Envoy's panic mode; a threshold of 0 disables it).
        """
        panicking = False
        usable = {i for i in self.present if self.available(i)}
        returning = usable - self.usable if self.clock.now > 0 else set()
        self.usable = usable
        for pool in self.pools.values():
            present = [b for b in pool.members if b.index in self.present]
            primaries = [b for b in present if not self.backup[b.index]]
            healthy = [b for b in primaries if self.available(b.index)]
            backups = [b for b in present if self.backup[b.index] and self.available(b.index)]
            if healthy and 100 * len(healthy) >= self.panic_threshold * len(primaries):
                pool.set_eligible(healthy, present)
            elif not healthy and backups:
                pool.set_eligible(backups, present)
            elif primaries and self.panic_threshold > 0:
                panicking = True
                pool.set_eligible(primaries, present)
            else:
                pool.set_eligible(healthy, present)
            for backend in pool.members:
                if backend.index in returning and self.slow_start[backend.index] is not None:
                    self._ramp(backend, pool, 1)
        if panicking != self.panicking:
            self.panicking = panicking
            self._log("panic", "pool", "on" if panicking else "off")

    # The path of a request ---------------------------------------------------------

    def receive(self, request: Request) -> None:
        """A client sends ``request`` to this instance."""
        request.balancer = self
        if self.track_connections:
            self._connect(request)
        processing = self.processing
        if processing is None:
            self.forward(request)
        elif (
            self.max_pending is not None
            and processing.busy == processing.workers
            and len(processing.waiting) >= self.max_pending
        ):
            self._ended(request, -1, REJECTED)
        else:
            processing.accept(request)

    def forward(self, request: Request, status: int = OK) -> None:
        """Route ``request`` and send it to a backend (after processing, when there is any)."""
        if self.dead:
            self.finish(request, -1, DROPPED)
            return
        request.t_sent = self.clock.now
        if self.retries is None:
            self._send(request, None)
            return
        call = Call(request)
        self._try(call)
        if self.retries.hedge is not None:
            self.clock.schedule(self.retries.hedge, self._hedge, call)

    def _send(self, attempt: Request, call: Call | None) -> None:
        pool = self.default_pool if self.router is None else self.router.pool_for(attempt)
        if not pool.eligible:
            self._ended(attempt, -1, NO_BACKEND)
            return
        if self.layer == 4:
            backend = self._pinned(attempt, pool)
        else:
            backend = self._choose(attempt, pool, call.tried if call is not None else ())
        if call is not None:
            call.tried.add(backend.index)
        attempt.backend = backend
        if self.breakers is not None and not self.breakers.allows(backend.index):
            self._ended(attempt, backend.index, REJECTED)
            return
        if self.max_requests is not None and pool.outstanding >= self.max_requests:
            self._ended(attempt, backend.index, REJECTED)
            return
        if self.layer == 7:
            backend.active += 1
            if pool.on_dispatch is not None:
                pool.on_dispatch(backend, attempt)
        pool.outstanding += 1
        self.attempts_active += 1
        if self.zone is not None:
            crossed = backend.zone != self.zone
            if attempt.t_arrival >= self.stats.warmup:
                self.stats.n_zoned += 1
                self.stats.n_cross_zone += crossed
            if crossed and self.hops is not None:
                self.hops.send(self.servers[backend.index], attempt)
                return
        self.servers[backend.index].accept(attempt)

    def _choose(self, request: Request, pool: Pool, tried: set[int] | tuple[()]) -> Backend:
        backend = self._remembered(request, pool) if self.sticky is not None else None
        if backend is not None and backend.index not in tried:
            return backend
        backend = pool.pick(request)
        if tried and backend.index in tried:
            # A retry goes to a backend not tried yet (Envoy's previous_hosts predicate,
            # NGINX's per-request tried set): ask the policy again a few times, then take
            # the least busy untried backend, as NGINX's scan skipping tried peers would.
            for _ in range(3):
                backend = pool.pick(request)
                if backend.index not in tried:
                    break
            else:
                untried = [b for b in pool.eligible if b.index not in tried]
                if untried:
                    backend = min(untried, key=lambda b: b.active)
        if self.sticky is not None:
            key = request.client if self.sticky_by_client else request.session
            self.sticky[key] = (backend, self.clock.now)
        return backend

    def _remembered(self, request: Request, pool: Pool) -> Backend | None:
        assert self.sticky is not None
        key = request.client if self.sticky_by_client else request.session
        entry = self.sticky.get(key)
        if entry is None:
            return None
        backend, t_last = entry
        now = self.clock.now
        if backend.index not in pool.present or (
            self.sticky_ttl is not None and now - t_last > self.sticky_ttl
        ):
            return None
        self.sticky[key] = (backend, now)
        return backend

    def complete(self, attempt: Request, status: int) -> None:
        """The backend answered ``attempt`` (or refused it) with ``status``."""
        if attempt.crossed:
            assert self.hops is not None
            self.hops.answer(attempt, status)
            return
        if self.dead:
            self.finish(attempt.call.request if attempt.call else attempt, -1, DROPPED)
            return
        call: Call | None = attempt.call
        if call is not None and attempt not in call.live:
            return  # abandoned at its try timeout, and counted out then; the answer is wasted
        backend: Backend = attempt.backend
        self._count_out(attempt, status)
        if self.passive:
            self._passive(backend.index, status, len(self.pool_of[backend.index].members))
        self._ended(attempt, backend.index, status)

    def _count_out(self, attempt: Request, status: int) -> None:
        """The attempt no longer counts as outstanding on its backend."""
        backend: Backend = attempt.backend
        pool = self.pool_of[backend.index]
        pool.outstanding -= 1
        self.attempts_active -= 1
        if self.layer == 7:
            backend.active -= 1
            if pool.on_complete is not None:
                pool.on_complete(backend, attempt, self.clock.now - attempt.t_sent, status == OK)

    def _passive(self, index: int, status: int, pool_size: int) -> None:
        if self.detector is not None:
            # NGINX's default proxy_next_upstream counts connection errors and timeouts, not 5xx.
            nginx_failure = status in (CONNECT_FAILURE, RESET, TIMEOUT)
            self.detector.result(index, nginx_failure if self.detector.nginx else status != OK, pool_size)
        if self.breakers is not None:
            self.breakers.result(index, status != OK)

    def _ended(self, attempt: Request, index: int, status: int) -> None:
        call: Call | None = attempt.call
        if call is None:
            self._release(attempt)
            self.finish(attempt, index, final_status(status))
            return
        call.live.remove(attempt)
        if attempt.retry:
            self.retries_active -= 1
        request = call.request
        if request.t_done >= 0:
            return  # the client gave up, or another attempt answered first
        if status == OK:
            self._finish_call(call, attempt, index, OK)
        elif call.live:
            return  # a hedged copy is still out
        elif self._may_retry(call, status):
            self._schedule_retry(call, index)
        else:
            self._finish_call(call, attempt, index, final_status(status))

    def _finish_call(self, call: Call, attempt: Request, index: int, status: int) -> None:
        """End the client's request with the outcome of its last (or winning) attempt."""
        call.request.t_start = attempt.t_start
        call.request.served_by = attempt.served_by
        self._release(call.request)
        self.finish(call.request, index, status)

    # Retries and hedging -----------------------------------------------------------

    def _try(self, call: Call, retry: bool = False) -> None:
        request = call.request
        attempt = Request(request.index, request.t_arrival, request.size, request.client)
        attempt.session, attempt.path, attempt.headers = request.session, request.path, request.headers
        attempt.connection, attempt.balancer, attempt.t_sent = request.connection, self, self.clock.now
        attempt.call, attempt.retry = call, retry
        call.live.append(attempt)
        assert self.retries is not None
        if self.retries.try_timeout is not None:
            self.clock.schedule(self.retries.try_timeout, self._try_expired, attempt)
        self._send(attempt, call)

    def _try_expired(self, attempt: Request) -> None:
        call: Call = attempt.call
        if attempt in call.live and not self.dead:
            backend: Backend = attempt.backend
            # Envoy resets the upstream stream: the attempt stops counting as active now,
            # though the server, which is not told, may still work on it.
            self._count_out(attempt, TIMEOUT)
            if self.passive:
                self._passive(backend.index, TIMEOUT, len(self.pool_of[backend.index].members))
            self._ended(attempt, backend.index, TIMEOUT)

    def _may_retry(self, call: Call, status: int) -> bool:
        retries = self.retries
        assert retries is not None
        if _CAUSE.get(status) not in self.retry_on or call.retries >= retries.max:
            return False
        if retries.budget is None:
            return True
        # Envoy's retry budget: concurrent retries <= max(min, budget x active requests).
        allowed = max(retries.min_retry_concurrency, retries.budget * self.attempts_active)
        return self.retries_active < allowed

    def _schedule_retry(self, call: Call, index: int) -> None:
        retries = self.retries
        assert retries is not None
        call.retries += 1
        self.retries_active += 1
        self.stats.n_retries += 1
        self.stats.retry_log.append((self.clock.now, index))
        # Envoy: full jitter, retry n waits U[0, (2^n - 1) x base), capped at 10 x base.
        cap = retries.max_backoff if retries.max_backoff is not None else 10 * retries.backoff
        delay = float(self.retry_rng.uniform(0, min(cap, (2**call.retries - 1) * retries.backoff)))
        self.clock.schedule(delay, self._retry, call)

    def _retry(self, call: Call) -> None:
        if call.request.t_done >= 0 or self.dead:
            self.retries_active -= 1
            if self.dead:
                self.finish(call.request, -1, DROPPED)
            return
        self._try(call, retry=True)

    def _hedge(self, call: Call) -> None:
        if call.request.t_done >= 0 or len(call.live) != 1 or self.dead:
            return
        self.stats.n_hedges += 1
        self._try(call)

    # Client connections -------------------------------------------------------------

    def _connect(self, request: Request) -> None:
        connection = self.connections.get(request.client)
        if connection is None or not connection.open:
            connection = Connection(request.client, self.connection_requests, request, self.clock.now)
            self.connections[request.client] = connection
            if self.connection_lifetime is not None:
                self._close_at(connection, self.connection_lifetime)
        request.connection = connection
        connection.outstanding += 1
        if connection.n_left > 0:
            connection.n_left -= 1
            if connection.n_left == 0:
                connection.open = False

    def _release(self, request: Request) -> None:
        connection: Connection | None = request.connection
        if connection is None:
            return
        connection.outstanding -= 1
        if not connection.open and connection.outstanding == 0:
            self._close(connection)

    def _close_at(self, connection: Connection, delay: float) -> None:
        self.clock.schedule(delay, self._expire, connection)

    def _expire(self, connection: Connection) -> None:
        connection.open = False
        self._close(connection)

    def _close(self, connection: Connection) -> None:
        """Layer 4: the connection no longer counts on its backend."""
        if not connection.counted:
            return
        connection.counted = False
        backend = connection.backend
        assert backend is not None and connection.pool is not None
        backend.active -= 1
        if connection.pool.on_complete is not None:
            connection.pool.on_complete(backend, connection.first, self.clock.now - connection.t_open, True)

    def _pinned(self, request: Request, pool: Pool) -> Backend:
        """Layer 4: the backend of the request's connection, chosen when the connection opens."""
        connection: Connection = request.connection
        backend = connection.backend
        if backend is not None and backend.index in pool.present:
            return backend
        self._close(connection)
        backend = pool.pick(request)
        connection.backend, connection.pool, connection.counted = backend, pool, True
        backend.active += 1
        if pool.on_dispatch is not None:
            pool.on_dispatch(backend, request)
        age = self.max_age[backend.index]
        if age is not None:
            # gRPC MAX_CONNECTION_AGE: the server closes the connection after age +-10%.
            self._close_at(connection, age * self.age_rng.uniform(0.9, 1.1))
        return backend


def _overrides(policy: Policy, hook: str) -> bool:
    return getattr(type(policy), hook) is not getattr(Policy, hook)


def _policies(config: BalancerModel, spec: PoolModel | None) -> Callable[[], Policy]:
    """A maker of fresh policy objects for a pool's zones."""
    return lambda: config.policy_object(spec.policy if spec is not None else None)


def policy_hook(policy: Policy, hook: str) -> Callable[..., None] | None:
    """``policy``'s ``hook`` method when its class overrides the base's no-op, else None."""
    return getattr(policy, hook) if _overrides(policy, hook) else None
