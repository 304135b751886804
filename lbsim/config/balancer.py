"""``balancer`` and ``tiers``: the policy, layer, instances and processing of a balancer tier,
and every mechanism it runs (pools, routes, health checks, breakers, retries, locality).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    Field,
    model_validator,
)

from lbsim.config.base import Duration, Model, PolicySpec, on_spelled
from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.limits import MAX_CORES, MAX_INSTANCES
from lbsim.policies import Policy, make_policy


class TlsModel(Model):
    """TLS termination at the balancer: a handshake per new client connection, a cost per request."""

    handshake: Duration = Field(0.0, ge=0)
    per_request: Duration = Field(0.0, ge=0)


class StickyModel(Model):
    """Session persistence: later requests of a session (``cookie``) or client go where the first went."""

    by: Literal["cookie", "client"] = "cookie"
    ttl: Duration | None = Field(None, gt=0)


class PoolModel(Model):
    """A named subset of server groups with its own policy (default: the balancer's)."""

    servers: list[str] = Field(min_length=1)
    policy: PolicySpec | None = None


class RouteModel(Model):
    """A layer-7 rule: requests matching ``path_prefix`` and every ``header`` go to ``pool``, or
    are split between pools by weight (the session decides, so a session sees one version)."""

    path_prefix: str | None = None
    header: dict[str, str] | None = None
    pool: str | None = None
    split: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> RouteModel:
        if (self.pool is None) == (self.split is None):
            raise ConfigError(
                f"must have exactly one of 'pool' and 'split'; got pool={shown(self.pool)}, "
                f"split={shown(self.split)}."
            )
        if self.split is not None and (min(self.split.values()) < 0 or sum(self.split.values()) <= 0):
            raise ConfigError(
                f"must have weights >= 0 with a positive sum; got {shown(self.split)}.", key="split"
            )
        return self

    @property
    def unconditional(self) -> bool:
        """True when the rule matches every request."""
        return self.path_prefix is None and not self.header


class HealthCheckModel(Model):
    """Active health checks: a small ``/health`` request through each server every ``interval``.

    ``haproxy``: a health counter from 0 to rise + fall - 1, up at >= rise; a server starts
    at the lowest up level, so its first failed check takes it down. ``envoy``: down after
    ``fall`` consecutive failures, up after ``rise`` consecutive passes; a new backend needs
    one pass before it gets traffic. Without ``timeout``, an HAProxy check times out after
    ``interval`` (its ``inter``, when ``timeout check`` is not set); Envoy requires a timeout,
    so lbsim uses 1 s.
    """

    interval: Duration = Field(2.0, gt=0)
    timeout: Duration | None = Field(None, gt=0)
    rise: int = Field(2, ge=1)
    fall: int = Field(3, ge=1)
    jitter: Duration = Field(0.0, ge=0)
    style: Literal["haproxy", "envoy"] = "haproxy"
    probe_size: Duration = Field(0.0005, ge=0)

    @property
    def check_timeout(self) -> float:
        """Seconds a check may take: ``timeout``, or the style's default."""
        if self.timeout is not None:
            return self.timeout
        return self.interval if self.style == "haproxy" else 1.0


NginxFailure = Literal["error", "timeout", "http_500", "http_502", "http_503", "http_504", "http_429"]
# The keys of NGINX's passive checks; the other outlier_detection keys are Envoy's.
NGINX_PASSIVE_KEYS = ("max_fails", "fail_timeout", "fails_on")


class OutlierDetectionModel(Model):
    """Passive health. Envoy: eject after ``consecutive_errors``, or on the interval tick when
    a backend's success rate over the last interval is below mean - ``success_rate_stdev_factor``
    x stdev of those with at least ``success_rate_request_volume`` requests (with at least
    ``success_rate_minimum_hosts`` of them; ``success_rate: false`` is Envoy's
    enforcing_success_rate 0), for base_ejection x ejections (capped), never more than
    ``max_ejection_percent`` of the backends. NGINX (when
    ``max_fails`` is given): skip a backend for ``fail_timeout`` (whole seconds) after
    ``max_fails`` failures (0: never, as NGINX's max_fails=0); connection errors and timeouts
    always count, 500, 502, 503, 504 and 429 answers when ``fails_on`` names them (NGINX's
    proxy_next_upstream; 502 and 504 come from a balancer tier below, 429 from a server whose
    ``overload_status`` is 429)."""

    @property
    def active(self) -> bool:
        """Whether a passive check runs at all (not NGINX's max_fails=0)."""
        return self.max_fails != 0

    consecutive_errors: int = Field(5, ge=1)
    interval: Duration = Field(10.0, gt=0)
    base_ejection: Duration = Field(30.0, gt=0)
    max_ejection: Duration = Field(300.0, gt=0)
    max_ejection_percent: float = Field(10.0, ge=0, le=100)
    always_eject_one: bool = False
    success_rate: bool = True
    success_rate_minimum_hosts: int = Field(5, ge=1)
    success_rate_request_volume: int = Field(100, ge=1)
    success_rate_stdev_factor: float = Field(1.9, gt=0)
    # NGINX's max_fails=0 turns its passive checks off.
    max_fails: int | None = Field(None, ge=0)
    fail_timeout: Duration = Field(10.0, gt=0)
    fails_on: tuple[NginxFailure, ...] = ("error", "timeout")

    @model_validator(mode="after")
    def _one_detector(self) -> OutlierDetectionModel:
        # Envoy's keys and NGINX's (with max_fails) belong to two detectors; one runs.
        nginx = sorted(self.model_fields_set & set(NGINX_PASSIVE_KEYS) - {"max_fails"})
        envoy = sorted(self.model_fields_set - set(NGINX_PASSIVE_KEYS))
        if self.max_fails is None and nginx:
            raise ConfigError(
                f"must come with max_fails (NGINX's passive checks; without it Envoy's detector "
                f"runs); got {shown(getattr(self, nginx[0]))}.",
                key=nginx[0],
            )
        if self.max_fails is not None and envoy:
            raise ConfigError(
                f"must be left out with max_fails (it is Envoy's; NGINX's passive checks run); "
                f"got {shown(getattr(self, envoy[0]))}.",
                key=envoy[0],
            )
        return self

    @model_validator(mode="after")
    def _nginx_seconds(self) -> OutlierDetectionModel:
        if self.max_fails is not None and self.fail_timeout != int(self.fail_timeout):
            raise ConfigError(
                f"must be whole seconds, as NGINX parses it; got {self.fail_timeout:g} s.", key="fail_timeout"
            )
        return self


class CircuitBreakerModel(Model):
    """Per-backend breaker (the notes' closed / open / half-open) and Envoy's cluster limits
    on its HTTP/1.1 connection pools: requests out, requests waiting for a connection,
    connections open (see ``lbsim.engine.balancer.upstream``)."""

    failure_threshold: int | None = Field(None, ge=1)
    timeout: Duration = Field(60.0, gt=0)
    max_requests: int | None = Field(None, ge=1)
    max_pending: int | None = Field(None, ge=0)
    max_connections: int | None = Field(None, ge=1)


# ``error``: a 5xx answer (500, or a 502 or 504 from a tier below) or a reset (Envoy's 5xx);
# ``reset``: a server that fails while holding the attempt only (NGINX's ``error`` after the
# request was sent); ``rejected``: a 503 (queue full, or a limit); ``http_429``: a 429.
RetryOn = Literal["connect_failure", "error", "reset", "timeout", "rejected", "http_429"]


class RetriesModel(Model):
    """Retries on another backend, full-jitter back-off, at most ``max_concurrent`` at once or
    an optional budget, per-try timeout, hedging. ``same_server`` with ``turnaround``: HAProxy's
    ``retries`` without ``option redispatch``, each retry to the server that failed after a
    fixed ``turnaround`` (min(timeout connect, 1 s)) instead of the back-off."""

    max: int = Field(1, ge=0)
    on: list[RetryOn] = Field(default_factory=lambda: list[RetryOn](["connect_failure"]))
    backoff: Duration = Field(0.025, ge=0)
    max_backoff: Duration | None = Field(None, ge=0)
    budget: float | None = Field(None, gt=0, le=1)
    min_retry_concurrency: int = Field(3, ge=0)
    # Envoy's max_retries circuit breaker (default 3 per cluster); a budget overrides it; null
    # for no limit on concurrent retries (NGINX, HAProxy).
    max_concurrent: int | None = Field(3, ge=0)
    try_timeout: Duration | None = Field(None, gt=0)
    hedge: Duration | None = Field(None, gt=0)
    same_server: bool = False
    turnaround: Duration | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _on_is_not_true(cls, data: Any) -> Any:
        return on_spelled(data) if isinstance(data, Mapping) else data


class ReloadModel(Model):
    """Reload every balancer instance every ``every`` seconds (HAProxy, NGINX): a fresh
    process takes over with its policies started afresh and no active request counted."""

    # At least 1 ms: a real reload takes that long, and each one is an event in the results.
    every: Duration = Field(ge=0.001)


class StandbyModel(Model):
    """A standby balancer that takes over ``failover`` seconds after the active one fails."""

    failover: Duration = Field(3.0, ge=0)


# Processing per request when ``cost`` is not given: layer 4 forwards bytes, layer 7 parses
# HTTP. Orders of magnitude only (an Envoy sidecar spends about 350 us of CPU per request,
# TLS included, per istio.io's performance page).
DEFAULT_COST = {4: 10e-6, 7: 100e-6}


class LocalityModel(Model):
    """How a balancer instance picks a zone before a backend (Envoy), given its own zone.

    ``zone_aware``: stay in the instance's zone while its share of the healthy backends is
    at least its share of the instances, else keep upstream%/local% of the traffic local and
    spill the rest to zones with residual capacity; off below ``min_cluster_size`` healthy
    backends. ``weighted``: zones in smooth weighted round robin by
    weight x min(1, overprovisioning x healthy / present).
    """

    mode: Literal["zone_aware", "weighted"] = "zone_aware"
    min_cluster_size: int = Field(6, ge=1)
    overprovisioning: float = Field(1.4, gt=0)
    weights: dict[str, float] = Field(default_factory=dict)


class BalancerModel(Model):
    """The balancer tier: policy, layer, instances, processing capacity, routing, persistence."""

    policy: PolicySpec = "round_robin"
    emulate: Literal["envoy", "nginx", "haproxy"] | None = None
    layer: Literal[4, 7] = 7
    instances: int = Field(1, ge=1, le=MAX_INSTANCES)
    cost: Duration | None = Field(None, ge=0)
    cores: int = Field(4, ge=1, le=MAX_CORES)
    tls: TlsModel | None = None
    sticky: StickyModel | None = None
    pools: dict[str, PoolModel] = Field(default_factory=dict)
    routes: list[RouteModel] = Field(default_factory=list)
    health_check: HealthCheckModel | None = None
    outlier_detection: OutlierDetectionModel | None = None
    circuit_breaker: CircuitBreakerModel | None = None
    panic_threshold: float = Field(50.0, ge=0, le=100)
    backups: Literal["priority", "last_resort"] | None = None
    retries: RetriesModel | None = None
    standby: StandbyModel | None = None
    reload: ReloadModel | None = None
    zones: list[str] = Field(default_factory=list)
    locality: LocalityModel | None = None

    @property
    def backup_rule(self) -> str:
        """How backup servers share traffic: ``backups``, else Envoy's ``priority`` levels
        where there is a panic threshold (Envoy's mechanism) and ``last_resort`` (NGINX,
        HAProxy: only when no primary is available) where there is none."""
        if self.backups is not None:
            return self.backups
        return "priority" if self.panic_threshold > 0 else "last_resort"

    @property
    def cost_per_request(self) -> float:
        """Processing seconds per request, the layer's default unless ``cost`` is given."""
        return DEFAULT_COST[self.layer] if self.cost is None else self.cost

    def policy_object(self, spec: Any = None) -> Policy:
        """Return a fresh policy object for one run (``spec``, or the balancer's policy)."""
        return copy.deepcopy(make_policy(self.policy if spec is None else spec))

    @model_validator(mode="after")
    def _locality_needs_zones(self) -> BalancerModel:
        if self.locality is not None and self.locality.mode == "zone_aware" and not self.zones:
            raise ConfigError("must list the instances' zones for zone-aware routing; got none.", key="zones")
        return self

    @model_validator(mode="after")
    def _routes_use_pools(self) -> BalancerModel:
        if self.routes and not self.pools:
            raise ConfigError("must come with 'pools' to route to; got routes but no pools.", key="routes")
        if self.pools and not self.routes:
            raise ConfigError("must be given when pools are; got pools but no routes.", key="routes")
        if self.layer == 4 and self.routes:
            raise ConfigError(
                "must be absent at layer 4, which cannot see requests; got routes.", key="routes"
            )
        if self.layer == 4 and self.reload is not None:
            raise ConfigError(
                "must be absent at layer 4, where the old process keeps its connections; got reload.",
                key="reload",
            )
        breaker = self.circuit_breaker
        for key in ("max_connections", "max_pending"):
            if self.layer == 4 and breaker is not None and getattr(breaker, key) is not None:
                raise ConfigError(
                    "must be absent at layer 4: it limits HTTP/1.1 connection pools, and a layer-4 "
                    "connection is the client's own.",
                    key=f"circuit_breaker.{key}",
                )
        if breaker is not None and breaker.max_pending is not None and breaker.max_connections is None:
            raise ConfigError(
                "must come with max_connections: it bounds the requests waiting for a "
                "connection, and none waits without it (Envoy's default is 1024).",
                key="circuit_breaker.max_pending",
            )
        if self.layer == 4 and self.sticky is not None:
            raise ConfigError(
                "must be absent at layer 4, where connections are pinned already; got sticky.", key="sticky"
            )
        for i, route in enumerate(self.routes):
            for name in [route.pool] if route.pool else list(route.split or {}):
                if name not in self.pools:
                    raise ConfigError(str(UnknownNameError("pool", name, self.pools)), key=f"routes[{i}]")
        if self.routes and not self.routes[-1].unconditional:
            raise ConfigError("must end with a rule without conditions (the default).", key="routes")
        return self


class TierModel(BalancerModel):
    """An upper balancer tier: its ``name`` and balancer settings; it balances over the
    instances of the tier below it (the next tier, or ``balancer``)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")

    @model_validator(mode="after")
    def _plain_tier(self) -> TierModel:
        for key in ("pools", "routes", "zones", "locality", "standby", "sticky", "emulate"):
            if getattr(self, key):
                raise ConfigError(
                    f"is not supported in an upper tier; got {shown(getattr(self, key))}.", key=key
                )
        return self
