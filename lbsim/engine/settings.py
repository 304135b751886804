"""The settings the engine runs with: plain values, built from a scenario by ``engine.build``.

Each class holds what one mechanism needs, under the scenario's own key names (see the
scenario reference in the README for what each means and its default); times are seconds.
The engine reads these and never the scenario file's schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from lbsim.distributions import Distribution
from lbsim.policies.base import Policy
from lbsim.workload import Clients, ClosedUsers, OpenArrivals, RequestAttributes


@dataclass(frozen=True, slots=True)
class SlowStart:
    """``servers[].slow_start``: ramp a returning backend's weight up over ``window``."""

    window: float
    style: str
    aggression: float
    min_weight_percent: float


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """``balancer.health_check``: active checks, HAProxy or Envoy style."""

    interval: float
    timeout: float
    rise: int
    fall: int
    jitter: float
    style: str
    probe_size: float


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    """``balancer.outlier_detection``: Envoy ejection, or NGINX max_fails when ``max_fails`` is set."""

    consecutive_errors: int
    interval: float
    base_ejection: float
    max_ejection: float
    max_ejection_percent: float
    always_eject_one: bool
    success_rate: bool
    success_rate_minimum_hosts: int
    success_rate_request_volume: int
    success_rate_stdev_factor: float
    max_fails: int | None
    fail_timeout: float
    fails_on: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """``balancer.circuit_breaker``: per-backend breakers and Envoy's cluster limits."""

    failure_threshold: int | None
    timeout: float
    max_requests: int | None
    max_pending: int | None
    max_connections: int | None

    @property
    def limits_clusters(self) -> bool:
        """Whether any of Envoy's cluster limits is set."""
        return not (self.max_requests is None and self.max_pending is None and self.max_connections is None)


@dataclass(frozen=True, slots=True)
class Retries:
    """``balancer.retries``: Envoy's retry policy, hedging and per-try timeout."""

    max: int
    on: tuple[str, ...]
    backoff: float
    max_backoff: float | None
    budget: float | None
    min_retry_concurrency: int
    max_concurrent: int | None
    try_timeout: float | None
    hedge: float | None
    same_server: bool
    turnaround: float | None


@dataclass(frozen=True, slots=True)
class Sticky:
    """``balancer.sticky``: session persistence by ``cookie`` (session) or ``client``."""

    by: str
    ttl: float | None


@dataclass(frozen=True, slots=True)
class Route:
    """``balancer.routes[]``: a layer-7 rule naming a ``pool`` or a weighted ``split``."""

    path_prefix: str | None
    header: Mapping[str, str] | None
    pool: str | None
    split: Mapping[str, float] | None


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A pool: the server groups in it (None: every backend) and a maker of its policy."""

    name: str
    groups: tuple[str, ...] | None
    make_policy: Callable[[], Policy]


@dataclass(frozen=True, slots=True)
class Locality:
    """``balancer.locality``: Envoy zone-aware routing or locality-weighted balancing."""

    mode: str
    min_cluster_size: int
    overprovisioning: float
    weights: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """``workload.connection``: requests per client connection (0: no limit) and its lifetime."""

    requests: int
    lifetime: float | None


@dataclass(frozen=True, slots=True)
class BalancerTier:
    """One balancer tier (``balancer``, or one of ``tiers``): ``instances`` instances with
    ``cores`` cores spending ``cost`` seconds per request plus TLS (``tls_handshake`` per new
    connection, ``tls_per_request``), and every mechanism they run. ``emulate``: the system
    whose status codes it answers a tier above with (None: lbsim's own)."""

    name: str
    emulate: str | None
    layer: int
    instances: int
    zones: tuple[str, ...]
    cores: int
    cost: float
    tls_handshake: float
    tls_per_request: float
    pools: tuple[PoolSpec, ...]
    routes: tuple[Route, ...]
    locality: Locality | None
    sticky: Sticky | None
    health_check: HealthCheck | None
    outlier_detection: OutlierDetection | None
    circuit_breaker: CircuitBreaker | None
    panic_threshold: float
    backups: str
    retries: Retries | None
    standby_failover: float | None
    reload_every: float | None


@dataclass(frozen=True, slots=True)
class Fault:
    """``faults[]``, its target resolved: each group of server names that fails together
    (one per member of a group target, on its own), or one balancer instance (tier, number)."""

    target: str
    kind: str
    at: float | None
    duration: float | None
    mtbf: Distribution | None
    mttr: Distribution | None
    factor: float | None
    probability: float | None
    latency: float
    members: tuple[tuple[tuple[str, ...], tuple[str, int] | None], ...]


@dataclass(frozen=True, slots=True)
class RegionCheck:
    """``dns.health_check``: the DNS balancer's region checks, sent from region number ``region``."""

    interval: float
    fall: int
    rise: int
    region: int


@dataclass(frozen=True, slots=True)
class Dns:
    """``dns``: global DNS load balancing; ``weights`` by region number."""

    policy: str
    ttl: float
    floor_share: float
    floor_ttl: float
    weights: tuple[float, ...]
    health_check: RegionCheck


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One server of ``servers[]`` (``name`` is ``<group>-<i>``): a member from ``t_join`` until
    ``t_leave`` (inf: never leaves)."""

    name: str
    group: str
    speed: float
    workers: int
    queue: int | None
    overload_status: int
    discipline: str
    weight: int
    zone: str | None
    max_connection_age: float | None
    backup: bool
    slow_start: SlowStart | None
    t_join: float
    t_leave: float
    address: str


@dataclass(frozen=True, slots=True)
class Workload:
    """``workload``: the arrival process (open-loop arrivals or closed-loop users), request
    sizes, the client population, what requests carry, their connections and timeout."""

    process: OpenArrivals | ClosedUsers
    size: Distribution
    clients: Clients
    attributes: RequestAttributes
    connection: ConnectionLimits
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Geo:
    """``regions``, ``network`` and ``dns``: region names, each client's and server's region
    number, round trips between regions (seconds), and the DNS balancer."""

    names: tuple[str, ...]
    client_region: np.ndarray
    server_region: np.ndarray
    dns: Dns


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything one run of a scenario cell needs, as plain values (seconds throughout).

    ``tiers`` lists the balancer tiers bottom first; ``rtt`` holds the round trips between
    regions, or without regions one: ``network.local``, between the clients and the balancer
    (0: none).
    """

    warmup: float
    duration: float
    window: float
    workload: Workload
    servers: tuple[ServerSpec, ...]
    tiers: tuple[BalancerTier, ...]
    faults: tuple[Fault, ...]
    rtt: np.ndarray
    cross_zone: float
    jitter: Distribution | None
    geo: Geo | None
