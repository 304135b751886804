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
from simpy import Environment, Event, Timeout

from lbsim.engine.recorder import NO_BACKEND, OK
from lbsim.engine.server import Server
from lbsim.policies.base import Backend, Policy
from lbsim.scenario import BalancerModel, ConnectionModel, PoolModel, RouteModel
from lbsim.workload import Request, stable_uniform

Finish = Callable[[Request, int, int], None]


class Placement(NamedTuple):
    """What the balancer knows of a server besides the server itself."""

    group: str
    weight: int
    zone: str | None
    max_connection_age: float | None


class Processing(Server):
    """The balancer's cores: each request takes ``cost`` seconds of one core, plus TLS work.

    A request that opens a client connection also pays the TLS handshake.
    """

    marks_start = False

    def __init__(self, env: Environment, name: str, cores: int, cost: float, handshake: float) -> None:
        super().__init__(env, -1, name, "balancer", 1.0, cores, None)
        self.cost = cost
        self.handshake = handshake

    def service_time(self, request: Request) -> float:
        connection = request.connection
        if connection is not None and connection.first is request:
            return self.cost + self.handshake
        return self.cost


class Pool:
    """Backends that share a policy: the balancer's whole fleet, or a named subset of groups."""

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
        self.on_dispatch = policy.on_dispatch if _overrides(policy, "on_dispatch") else None
        self.on_complete = policy.on_complete if _overrides(policy, "on_complete") else None

    def set_eligible(self, indices: set[int]) -> None:
        """Make the members whose server index is in ``indices`` the eligible ones."""
        eligible = [b for b in self.members if b.index in indices]
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
        env: Environment,
        index: int,
        config: BalancerModel,
        servers: Sequence[Server],
        placements: Sequence[Placement],
        connection: ConnectionModel,
        rng: np.random.Generator,
        finish: Finish,
    ) -> None:
        """Build instance ``index`` in front of ``servers`` (placed as ``placements`` say)."""
        self.env = env
        self.index = index
        self.layer = config.layer
        self.servers = list(servers)
        self.finish = finish
        self.connection_requests = connection.requests or 0
        self.connection_lifetime = connection.lifetime
        self.max_age = [p.max_connection_age for p in placements]
        self.age_rng = rng.spawn(1)[0]
        backends = [
            Backend(server.index, server.name, p.weight, p.zone, server)
            for server, p in zip(servers, placements, strict=True)
        ]
        pool_specs: dict[str, PoolModel | None] = dict(config.pools) or {"default": None}
        rngs = rng.spawn(len(pool_specs))
        self.pools: dict[str, Pool] = {}
        self.pool_of: list[Pool] = [None] * len(servers)  # type: ignore[list-item]
        for (name, spec), pool_rng in zip(pool_specs.items(), rngs, strict=True):
            members = [
                b
                for b, p in zip(backends, placements, strict=True)
                if spec is None or p.group in spec.servers
            ]
            policy = config.policy_object(spec.policy if spec is not None else None)
            pool = self.pools[name] = Pool(name, policy, members, pool_rng)
            for b in members:
                self.pool_of[b.index] = pool
        self.router = Router(config.routes, self.pools) if config.routes else None
        self.default_pool = next(iter(self.pools.values()))
        cost = config.cost_per_request + (config.tls.per_request if config.tls else 0.0)
        handshake = config.tls.handshake if config.tls else 0.0
        self.processing = (
            Processing(env, f"balancer-{index}", config.cores, cost, handshake)
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

    def set_eligible(self, indices: set[int]) -> None:
        """The servers whose index is in ``indices`` may now receive requests."""
        for pool in self.pools.values():
            pool.set_eligible(indices)

    # The path of a request ---------------------------------------------------------

    def receive(self, request: Request) -> None:
        """A client sends ``request`` to this instance."""
        request.balancer = self
        if self.track_connections:
            self._connect(request)
        if self.processing is not None:
            self.processing.accept(request)
        else:
            self.forward(request)

    def forward(self, request: Request, status: int = OK) -> None:
        """Route ``request`` and send it to a backend (after processing, when there is any)."""
        request.t_sent = self.env.now
        pool = self.default_pool if self.router is None else self.router.pool_for(request)
        backend = self._pinned(request, pool) if self.layer == 4 else self._choose(request, pool)
        if backend is None:
            self._release(request)
            self.finish(request, -1, NO_BACKEND)
            return
        request.backend = backend
        self.servers[backend.index].accept(request)

    def _choose(self, request: Request, pool: Pool) -> Backend | None:
        if not pool.eligible:
            return None
        backend = self._remembered(request, pool) if self.sticky is not None else None
        if backend is None:
            backend = pool.policy.choose(request)
            if self.sticky is not None:
                key = request.client if self.sticky_by_client else request.session
                self.sticky[key] = (backend, self.env.now)
        backend.active += 1
        if pool.on_dispatch is not None:
            pool.on_dispatch(backend, request)
        return backend

    def _remembered(self, request: Request, pool: Pool) -> Backend | None:
        assert self.sticky is not None
        key = request.client if self.sticky_by_client else request.session
        entry = self.sticky.get(key)
        if entry is None:
            return None
        backend, t_last = entry
        now = self.env.now
        if backend.index not in pool.present or (
            self.sticky_ttl is not None and now - t_last > self.sticky_ttl
        ):
            return None
        self.sticky[key] = (backend, now)
        return backend

    def complete(self, request: Request, status: int) -> None:
        """The backend answered ``request`` (or refused it) with ``status``."""
        backend: Backend = request.backend
        if self.layer == 7:
            backend.active -= 1
            pool = self.pool_of[backend.index]
            if pool.on_complete is not None:
                pool.on_complete(backend, request, self.env.now - request.t_sent, status == OK)
        self._release(request)
        self.finish(request, backend.index, status)

    # Client connections -------------------------------------------------------------

    def _connect(self, request: Request) -> None:
        connection = self.connections.get(request.client)
        if connection is None or not connection.open:
            connection = Connection(request.client, self.connection_requests, request, self.env.now)
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
        Timeout(self.env, delay, connection).callbacks.append(self._expire)

    def _expire(self, event: Event) -> None:
        connection: Connection = event._value
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
            connection.pool.on_complete(backend, connection.first, self.env.now - connection.t_open, True)

    def _pinned(self, request: Request, pool: Pool) -> Backend | None:
        """Layer 4: the backend of the request's connection, chosen when the connection opens."""
        connection: Connection = request.connection
        backend = connection.backend
        if backend is not None and backend.index in pool.present:
            return backend
        if not pool.eligible:
            return None
        self._close(connection)
        backend = pool.policy.choose(request)
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


def instance_of(client: int, instances: int) -> int:
    """The balancer instance a client's requests go to."""
    return client % instances
