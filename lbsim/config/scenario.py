"""Scenario files: the pydantic models that check them, loading, overrides and the sweep grid.

A scenario is data: YAML read with ``yaml.safe_load``, every key checked (unknown keys are
errors, with a "did you mean"), nothing evaluated. Every mistake becomes one ConfigError
line naming the file, the key path, the rule and the value.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lbsim.distributions import Distribution, Exponential, parse_distribution
from lbsim.errors import ConfigError, UnknownNameError
from lbsim.policies import Policy, make_policy
from lbsim.results.expectations import check_metric, parse_percent
from lbsim.units import parse_duration, parse_rate
from lbsim.workload import (
    Clients,
    ClosedUsers,
    DeterministicArrivals,
    DiurnalArrivals,
    MarkovModulatedArrivals,
    OpenArrivals,
    PoissonArrivals,
    RequestAttributes,
    TraceArrivals,
)


def _distribution(value: object, info: ValidationInfo) -> Distribution:
    base_dir = (info.context or {}).get("base_dir")
    return parse_distribution(value, Path(base_dir) if base_dir else None)


def _policy(value: object) -> object:
    make_policy(value)  # type: ignore[arg-type]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Dist = Annotated[Distribution, BeforeValidator(_distribution)]
PolicySpec = Annotated[Any, BeforeValidator(_policy)]


class Model(BaseModel):
    """A part of a scenario: frozen, and every key must be known."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    raise UnknownNameError("key", str(key), cls.model_fields)
        return data


_ARRIVAL_KEYS = {
    "poisson": set(),
    "deterministic": set(),
    "mmpp": {"rates", "stays"},
    "diurnal": {"amplitude", "period"},
    "trace": {"file"},
    "closed": {"users", "think"},
}


class Arrivals(Model):
    """How requests arrive: ``poisson`` (default), ``deterministic``, ``mmpp``, ``diurnal``,
    ``trace`` or ``closed``; a bare name stands for ``{kind: name}``."""

    kind: str = "poisson"
    rates: list[Rate] | None = None
    stays: list[Duration] | None = None
    amplitude: float | None = Field(None, ge=0, le=1)
    period: Duration | None = Field(None, gt=0)
    file: str | None = None
    users: int | None = Field(None, ge=1)
    think: Dist | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _keys_of_kind(self, info: ValidationInfo) -> Arrivals:
        if self.kind not in _ARRIVAL_KEYS:
            raise ConfigError(str(UnknownNameError("arrival kind", self.kind, _ARRIVAL_KEYS)), key="kind")
        wanted = _ARRIVAL_KEYS[self.kind]
        for key in sorted(set(type(self).model_fields) - {"kind"}):
            given = getattr(self, key) is not None
            if key in wanted and not given:
                raise ConfigError(f"must be given for arrivals of kind {self.kind!r}; got nothing.", key=key)
            if given and key not in wanted:
                raise ConfigError(
                    f"must not be given for arrivals of kind {self.kind!r}; got {getattr(self, key)!r}.",
                    key=key,
                )
        if self.kind == "mmpp":
            rates, stays = self.rates or [], self.stays or []
            if len(rates) != len(stays) or not rates:
                raise ConfigError(
                    f"must have one stay per rate; got {len(rates)} rates and {len(stays)} stays.",
                    key="stays",
                )
            if min(rates) < 0 or max(rates) <= 0:
                raise ConfigError(f"must be >= 0 with one > 0; got {rates!r}.", key="rates")
            if min(stays) <= 0:
                raise ConfigError(f"must all be > 0; got {stays!r}.", key="stays")
        if self.kind == "trace" and self.file is not None:
            base_dir = (info.context or {}).get("base_dir")
            path = Path(self.file)
            if base_dir and not path.is_absolute():
                path = Path(base_dir) / path
            try:
                TraceArrivals.from_file(path)
            except ConfigError as exc:
                raise ConfigError(str(exc), key="file") from None
            object.__setattr__(self, "file", str(path.resolve()))
        return self


class ClientsModel(Model):
    """Distinct client addresses: ``count``, picked uniformly or Zipf-skewed (``zipf`` exponent)."""

    count: int = Field(1000, ge=1)
    zipf: float = Field(0.0, ge=0)
    sessions: int = Field(1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_count(cls, data: Any) -> Any:
        return {"count": data} if isinstance(data, int) and not isinstance(data, bool) else data


def _shares(value: Any) -> Any:
    if isinstance(value, Mapping):
        for key, share in value.items():
            if isinstance(share, bool) or not isinstance(share, int | float) or share < 0:
                raise ConfigError(f"must map each name to a share >= 0; got {key!r}: {share!r}.")
        if sum(value.values()) > 1 + 1e-9:
            raise ConfigError(f"must have shares that sum to at most 1; got {sum(value.values()):g}.")
    return value


Shares = Annotated[dict[str, float], BeforeValidator(_shares)]


class ConnectionModel(Model):
    """How long a client keeps a connection to the balancer: ``requests`` per connection or a
    ``lifetime``; with neither, connections stay open for the whole run."""

    requests: int | None = Field(None, ge=1)
    lifetime: Duration | None = Field(None, gt=0)


class Workload(Model):
    """The clients: arrival process, request sizes, client addresses, request attributes."""

    arrivals: Arrivals = Arrivals()
    rate: Rate | None = Field(None, gt=0)
    size: Dist
    clients: ClientsModel = ClientsModel()
    timeout: Duration | None = Field(None, gt=0)
    paths: Shares | None = None
    headers: dict[str, Shares] | None = None
    connection: ConnectionModel = ConnectionModel()

    @field_validator("paths")
    @classmethod
    def _paths_sum_to_one(cls, paths: dict[str, float] | None) -> dict[str, float] | None:
        if paths is not None and abs(sum(paths.values()) - 1) > 1e-9:
            raise ConfigError(f"must have shares that sum to 1; got {sum(paths.values()):g}.")
        return paths

    @model_validator(mode="after")
    def _rate_of_kind(self) -> Workload:
        needs_rate = self.arrivals.kind in {"poisson", "deterministic", "diurnal"}
        if needs_rate and self.rate is None:
            raise ConfigError(
                f"must be given for arrivals of kind {self.arrivals.kind!r}; got nothing.",
                key="rate",
            )
        if not needs_rate and self.rate is not None:
            raise ConfigError(
                f"must not be given for arrivals of kind {self.arrivals.kind!r} "
                f"(their rate comes from the arrivals); got {self.rate!r}.",
                key="rate",
            )
        return self

    def process(self) -> OpenArrivals | ClosedUsers:
        """Return the arrival process this workload describes."""
        a = self.arrivals
        if a.kind == "poisson":
            return PoissonArrivals(self.rate)  # type: ignore[arg-type]
        if a.kind == "deterministic":
            return DeterministicArrivals(self.rate)  # type: ignore[arg-type]
        if a.kind == "diurnal":
            return DiurnalArrivals(self.rate, a.amplitude, a.period)  # type: ignore[arg-type]
        if a.kind == "mmpp":
            return MarkovModulatedArrivals(tuple(a.rates), tuple(a.stays))  # type: ignore[arg-type]
        if a.kind == "trace":
            return TraceArrivals.from_file(Path(a.file))  # type: ignore[arg-type]
        return ClosedUsers(a.users, a.think)  # type: ignore[arg-type]

    def clients_model(self) -> Clients:
        """Return the client population."""
        return Clients(self.clients.count, self.clients.zipf)

    def attributes(self) -> RequestAttributes:
        """Return what requests carry beyond their size."""
        return RequestAttributes(
            self.clients.sessions,
            tuple((self.paths or {}).items()),
            tuple((name, tuple(values.items())) for name, values in (self.headers or {}).items()),
        )


class SlowStartModel(Model):
    """Ramp a backend's weight up after it becomes eligible again (recovery, health, ejection end).

    ``envoy``: weight x max(min_weight_percent, (t / window)^(1 / aggression)), recomputed
    every window / 20. ``haproxy``: linear from one step to 100% over the window, in steps of
    max(1 s, window / 20).
    """

    window: Duration = Field(gt=0)
    style: Literal["envoy", "haproxy"] = "envoy"
    aggression: float = Field(1.0, gt=0)
    min_weight_percent: float = Field(10.0, ge=0, le=100)


class ServerGroup(Model):
    """A group of identical backends named ``<name>-0``, ``<name>-1``, ..."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.]*$")
    count: int = Field(1, ge=1)
    speed: float = Field(1.0, gt=0)
    workers: int = Field(1, ge=1)
    queue: int | None = Field(None, ge=0)
    discipline: Literal["fcfs", "ps"] = "fcfs"
    weight: int = Field(1, ge=1, le=256)
    zone: str | None = None
    region: str | None = None
    t_join: Duration = Field(0.0, ge=0)
    t_leave: Duration | None = Field(None, gt=0)
    max_connection_age: Duration | None = Field(None, gt=0)
    backup: bool = False
    slow_start: SlowStartModel | None = None


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
                f"must have exactly one of 'pool' and 'split'; got pool={self.pool!r}, split={self.split!r}."
            )
        if self.split is not None and (min(self.split.values()) < 0 or sum(self.split.values()) <= 0):
            raise ConfigError(f"must have weights >= 0 with a positive sum; got {self.split!r}.", key="split")
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
    one pass before it gets traffic.
    """

    interval: Duration = Field(2.0, gt=0)
    timeout: Duration = Field(1.0, gt=0)
    rise: int = Field(2, ge=1)
    fall: int = Field(3, ge=1)
    jitter: Duration = Field(0.0, ge=0)
    style: Literal["haproxy", "envoy"] = "haproxy"
    probe_size: Duration = Field(0.0005, ge=0)


class OutlierDetectionModel(Model):
    """Passive health. Envoy: eject after ``consecutive_errors``, for base_ejection x ejections
    (capped), never more than ``max_ejection_percent`` of the backends. NGINX (when
    ``max_fails`` is given): skip a backend for ``fail_timeout`` after ``max_fails`` failures."""

    consecutive_errors: int = Field(5, ge=1)
    interval: Duration = Field(10.0, gt=0)
    base_ejection: Duration = Field(30.0, gt=0)
    max_ejection: Duration = Field(300.0, gt=0)
    max_ejection_percent: float = Field(10.0, ge=0, le=100)
    always_eject_one: bool = False
    max_fails: int | None = Field(None, ge=1)
    fail_timeout: Duration = Field(10.0, gt=0)


class CircuitBreakerModel(Model):
    """Per-backend breaker (the notes' closed / open / half-open) and Envoy's request limits."""

    failure_threshold: int | None = Field(None, ge=1)
    timeout: Duration = Field(60.0, gt=0)
    max_requests: int | None = Field(None, ge=1)
    max_pending: int | None = Field(None, ge=0)


RetryOn = Literal["connect_failure", "error", "timeout", "rejected"]


class RetriesModel(Model):
    """Retries on another backend, full-jitter back-off, an optional budget, per-try timeout, hedging."""

    max: int = Field(1, ge=0)
    on: list[RetryOn] = Field(default_factory=lambda: list[RetryOn](["connect_failure"]))
    backoff: Duration = Field(0.025, ge=0)
    max_backoff: Duration | None = Field(None, ge=0)
    budget: float | None = Field(None, gt=0, le=1)
    min_retry_concurrency: int = Field(3, ge=0)
    try_timeout: Duration | None = Field(None, gt=0)
    hedge: Duration | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _on_is_not_true(cls, data: Any) -> Any:
        # YAML 1.1 reads the key `on` as the boolean true.
        if isinstance(data, Mapping) and True in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data


class StandbyModel(Model):
    """A standby balancer that takes over ``failover`` seconds after the active one fails."""

    failover: Duration = Field(3.0, ge=0)


def _duration_or_distribution(value: object, info: ValidationInfo) -> Distribution:
    try:
        return Exponential(parse_duration(value))
    except ConfigError:
        return _distribution(value, info)


TimeBetween = Annotated[Distribution, BeforeValidator(_duration_or_distribution)]
FAULT_KINDS = ("crash", "hang", "slow", "errors")


class FaultModel(Model):
    """A fault: what fails (``target``), how (``kind``) and when (``at`` + ``duration``, or
    random ``mtbf`` / ``mttr``, exponential when given as durations)."""

    target: str
    kind: str
    at: Duration | None = Field(None, ge=0)
    duration: Duration | None = Field(None, gt=0)
    mtbf: TimeBetween | None = None
    mttr: TimeBetween | None = None
    factor: float | None = Field(None, gt=1)
    probability: float | None = Field(None, gt=0, le=1)
    latency: Duration = Field(0.001, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> FaultModel:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(str(UnknownNameError("fault kind", self.kind, FAULT_KINDS)), key="kind")
        scheduled = self.at is not None or self.duration is not None
        random = self.mtbf is not None or self.mttr is not None
        if scheduled == random:
            raise ConfigError(
                "must be timed by 'at' and 'duration' or by 'mtbf' and 'mttr'; got neither or both."
            )
        for a, b in (("at", "duration"), ("mtbf", "mttr")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ConfigError(
                    f"must be given with {a!r}; got nothing.", key=b if getattr(self, a) is not None else a
                )
        if (self.kind == "slow") != (self.factor is not None):
            raise ConfigError(f"must be given for kind 'slow' only; got {self.factor!r}.", key="factor")
        if (self.kind == "errors") != (self.probability is not None):
            raise ConfigError(
                f"must be given for kind 'errors' only; got {self.probability!r}.", key="probability"
            )
        return self


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
    layer: Literal[4, 7] = 7
    instances: int = Field(1, ge=1)
    cost: Duration | None = Field(None, ge=0)
    cores: int = Field(4, ge=1)
    tls: TlsModel | None = None
    sticky: StickyModel | None = None
    pools: dict[str, PoolModel] = Field(default_factory=dict)
    routes: list[RouteModel] = Field(default_factory=list)
    health_check: HealthCheckModel | None = None
    outlier_detection: OutlierDetectionModel | None = None
    circuit_breaker: CircuitBreakerModel | None = None
    panic_threshold: float = Field(50.0, ge=0, le=100)
    retries: RetriesModel | None = None
    standby: StandbyModel | None = None
    zones: list[str] = Field(default_factory=list)
    locality: LocalityModel | None = None

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


class ExpectModel(Model):
    """An expectation about the results (data, never code); see lbsim.results.expectations."""

    metric: Annotated[str, BeforeValidator(check_metric)]
    policy: str | None = None
    where: dict[str, Any] | None = None
    below: str | None = None
    above: str | None = None
    max: float | None = None
    min: float | None = None
    within: Annotated[float, BeforeValidator(parse_percent)] | None = None
    of: float | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> ExpectModel:
        rules = [self.below or self.above, self.max is not None or self.min is not None, self.of is not None]
        if sum(bool(rule) for rule in rules) != 1:
            raise ConfigError("must have one rule: below/above a policy, max/min, or within ... of; got "
                              f"{sum(bool(rule) for rule in rules)}.")  # fmt: skip
        if (self.below or self.above) and not self.policy:
            raise ConfigError("must name the policy compared; got nothing.", key="policy")
        if (self.within is None) != (self.of is None):
            raise ConfigError("must come with 'of' (and 'of' with 'within'); got one of them.", key="within")
        return self


class TierModel(BalancerModel):
    """An upper balancer tier: its ``name`` and balancer settings; it balances over the
    instances of the tier below it (the next tier, or ``balancer``)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")

    @model_validator(mode="after")
    def _plain_tier(self) -> TierModel:
        for key in ("pools", "routes", "zones", "locality", "standby", "sticky"):
            if getattr(self, key):
                raise ConfigError(f"is not supported in an upper tier; got {getattr(self, key)!r}.", key=key)
        return self


class RegionModel(Model):
    """A region: the share of the clients that are in it (their requests are that share of the traffic
    when clients are picked uniformly)."""

    clients: float = Field(ge=0, le=1)


class NetworkModel(Model):
    """Round-trip times between regions (``us-eu: 80ms``, either order), within a region
    (``local``), between two zones of a region (``cross_zone``: a balancer instance's
    requests and probes to a backend in another zone; 0 leaves them undelayed), and a
    ``jitter`` distribution added to every one-way crossing."""

    rtt: dict[str, Duration] = Field(default_factory=dict)
    local: Duration = Field(0.0, ge=0)
    cross_zone: Duration = Field(0.0, ge=0)
    jitter: Dist | None = None


class TtlFloorModel(Model):
    """The ``share`` of clients whose resolvers keep an answer at least ``ttl`` whatever it says."""

    share: float = Field(gt=0, le=1)
    ttl: Duration = Field(gt=0)


class RegionCheckModel(Model):
    """The DNS balancer's checks of each region, sent from ``region`` (the first region when
    not given) every ``interval``: down after ``fall`` failed checks (no server up), up again
    after ``rise`` passed ones."""

    interval: Duration = Field(10.0, gt=0)
    fall: int = Field(3, ge=1)
    rise: int = Field(2, ge=1)
    region: str | None = None


class DnsModel(Model):
    """Global DNS load balancing (GSLB): which region a client's name resolves to, and for how long.

    ``geo``: the client's own region, or the nearest healthy one by RTT. ``latency``: the
    healthy region with the lowest RTT measured by the checks (jitter included).
    ``weighted``: a healthy region at random by ``weights``.
    """

    policy: Literal["geo", "latency", "weighted"] = "geo"
    ttl: Duration = Field(60.0, gt=0)
    ttl_floor: TtlFloorModel | None = None
    weights: dict[str, float] | None = None
    health_check: RegionCheckModel = RegionCheckModel()


class Scenario(Model):
    """A whole scenario: run length, workload, servers, balancer, sweep grid."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    duration: Duration = Field(gt=0)
    warmup: Duration = Field(0.0, ge=0)
    seed: int = Field(0, ge=0)
    replications: int = Field(1, ge=1)
    window: Duration | None = Field(None, gt=0)
    workload: Workload
    servers: list[ServerGroup] = Field(min_length=1)
    balancer: BalancerModel = BalancerModel()
    faults: list[FaultModel] = Field(default_factory=list)
    tiers: list[TierModel] = Field(default_factory=list)
    regions: dict[str, RegionModel] | None = None
    network: NetworkModel | None = None
    dns: DnsModel | None = None
    expect: list[ExpectModel] = Field(default_factory=list)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    # The checked input and where it came from, so cells and overrides start from it.
    _source: _Source = PrivateAttr()

    @field_validator("servers")
    @classmethod
    def _unique_names(cls, groups: list[ServerGroup]) -> list[ServerGroup]:
        names = [group.name for group in groups]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"must have unique names; got {name!r} twice.")
            if name == "balancer":
                raise ConfigError("must not be named 'balancer' (the balancer's name); got 'balancer'.")
        return groups

    @field_validator("sweep")
    @classmethod
    def _non_empty_axes(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in sweep.items():
            if not values:
                raise ConfigError(f"must list at least one value; got an empty list for {path!r}.")
        return sweep

    @model_validator(mode="after")
    def _warmup_inside(self) -> Scenario:
        if self.warmup >= self.duration:
            raise ConfigError(f"must be < duration ({self.duration:g}s); got {self.warmup:g}s.", key="warmup")
        return self

    @model_validator(mode="after")
    def _pools_name_groups(self) -> Scenario:
        groups = [group.name for group in self.servers]
        owner: dict[str, str] = {}
        for pool_name, pool in self.balancer.pools.items():
            for name in pool.servers:
                if name not in groups:
                    raise ConfigError(
                        str(UnknownNameError("server group", name, groups)),
                        key=f"balancer.pools.{pool_name}.servers",
                    )
                if name in owner:
                    raise ConfigError(
                        f"must put each server group in one pool; "
                        f"got {name!r} in {owner[name]!r} and {pool_name!r}.",
                        key=f"balancer.pools.{pool_name}.servers",
                    )
                owner[name] = pool_name
        if all(group.t_join > 0 for group in self.servers):
            raise ConfigError("must have a group present from the start (t_join 0); got none.", key="servers")
        for i, fault in enumerate(self.faults):
            targets = fault_targets(self, fault.target)
            if targets is None:
                known = [g.name for g in self.servers]
                known += ["balancer", "zone:<name>", "<group>-<k>", "<tier>-<i>"]
                raise ConfigError(
                    str(UnknownNameError("fault target", fault.target, known)), key=f"faults[{i}].target"
                )
            if balancer_instance(self, targets[0][0]) is not None and fault.kind != "crash":
                raise ConfigError(
                    f"must be 'crash' for a balancer target; got {fault.kind!r}.", key=f"faults[{i}].kind"
                )
        for i, group in enumerate(self.servers):
            if group.t_leave is not None and group.t_leave <= group.t_join:
                raise ConfigError(
                    f"must be after t_join ({group.t_join:g}s); got {group.t_leave:g}s.",
                    key=f"servers[{i}].t_leave",
                )
        return self

    @model_validator(mode="after")
    def _geography(self) -> Scenario:
        names = [tier.name for tier in self.tiers]
        taken = {"balancer"} | {group.name for group in self.servers}
        for name in names:
            if names.count(name) > 1 or name in taken:
                raise ConfigError(
                    f"must have unique names other than 'balancer' and the server groups'; got {name!r}.",
                    key="tiers",
                )
        if self.regions is None:
            network = self.network or NetworkModel()
            given = {"dns": self.dns, "network.rtt": network.rtt, "network.local": network.local}
            for key, value in given.items():
                if value:
                    raise ConfigError("must come with 'regions'; got no regions.", key=key)
            for i, group in enumerate(self.servers):
                if group.region is not None:
                    raise ConfigError(f"must name one of 'regions'; got {group.region!r} and no regions.",
                                      key=f"servers[{i}].region")  # fmt: skip
            return self
        names = list(self.regions)
        total = sum(region.clients for region in self.regions.values())
        if abs(total - 1) > 1e-9:
            raise ConfigError(f"must have client shares that sum to 1; got {total:g}.", key="regions")
        for i, group in enumerate(self.servers):
            if group.region not in names:
                raise ConfigError(
                    str(UnknownNameError("region", str(group.region), names)), key=f"servers[{i}].region"
                )
        for name in names:
            if not any(group.region == name for group in self.servers):
                raise ConfigError(f"must have servers in every region; got none in {name!r}.", key="servers")
        rtt = self.network.rtt if self.network else {}
        for pair in rtt:
            a, _, b = pair.partition("-")
            if a not in names or b not in names or a == b:
                raise ConfigError(
                    f"must be keyed region-region between two regions; got {pair!r}.", key="network.rtt"
                )
        for a, b in itertools.combinations(names, 2):
            if f"{a}-{b}" not in rtt and f"{b}-{a}" not in rtt:
                raise ConfigError(f"must give the RTT between every two regions; got none for {a}-{b}.",
                                  key="network.rtt")  # fmt: skip
        checker = self.dns.health_check.region if self.dns else None
        if checker is not None and checker not in names:
            raise ConfigError(str(UnknownNameError("region", checker, names)), key="dns.health_check.region")
        weights = self.dns.weights if self.dns else None
        for name, weight in (weights or {}).items():
            if name not in names:
                raise ConfigError(str(UnknownNameError("region", name, names)), key="dns.weights")
            if weight < 0:
                raise ConfigError(f"must be >= 0; got {weight:g} for {name!r}.", key="dns.weights")
        if weights is not None and not any(weights.get(name, 1.0) > 0 for name in names):
            raise ConfigError("must give some region a positive weight; got none.", key="dns.weights")
        return self

    def rtt(self, a: str, b: str) -> float:
        """Round-trip time between regions ``a`` and ``b`` (``network.local`` within one)."""
        network = self.network or NetworkModel()
        if a == b:
            return network.local
        return network.rtt.get(f"{a}-{b}", network.rtt.get(f"{b}-{a}", 0.0))

    @property
    def tier_instances(self) -> dict[str, int]:
        """Instances in all of each balancer tier, bottom (``balancer``) first: a tier's
        ``instances`` in each region (or in all)."""
        regions = len(self.regions) if self.regions else 1
        tiers = [("balancer", self.balancer), *((tier.name, tier) for tier in reversed(self.tiers))]
        return {name: config.instances * regions for name, config in tiers}

    @property
    def window_length(self) -> float:
        """Width of a time-series window: ``window``, or a hundredth of the duration."""
        return self.window if self.window is not None else self.duration / 100

    def policy_label(self) -> str:
        """The policy's name as result tables show it."""
        return make_policy(self.balancer.policy).label()


@dataclass(frozen=True, slots=True)
class Cell:
    """One point of a sweep grid: the values of the swept keys and the resolved scenario."""

    index: int
    values: dict[str, Any]
    scenario: Scenario


def parse_key_path(path: str) -> list[str | int]:
    """Split ``servers[0].count`` into ``['servers', 0, 'count']``."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*", path):
        raise ConfigError(f"must be a key path such as 'servers[0].count'; got {path!r}.")
    tokens: list[str | int] = []
    for part in path.split("."):
        name, *indices = re.split(r"[\[\]]+", part.rstrip("]"))
        tokens.append(name)
        tokens.extend(int(i) for i in indices)
    return tokens


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a deep copy of ``data`` with the key at ``path`` set to ``value``."""
    tokens = parse_key_path(path)
    data = copy.deepcopy(data)
    node: Any = data
    for depth, token in enumerate(tokens[:-1]):
        nxt = tokens[depth + 1]
        node = _child(node, token, path, list if isinstance(nxt, int) else dict)
    last = tokens[-1]
    if isinstance(last, int):
        _check_index(node, last, path)
    elif not isinstance(node, dict):
        raise ConfigError(f"must lead to a mapping before {last!r}; got {node!r}.")
    node[last] = value
    return data


def written(scenario: Scenario, path: str) -> Any:
    """The value at ``path`` as the scenario's source wrote it (None when absent), before
    parsing: what an override must extend to keep the rest as it was."""
    try:
        return copy.deepcopy(get_path(scenario._source.data, path))
    except (KeyError, IndexError):
        return None


def get_path(data: Any, path: str) -> Any:
    """Return the value at ``path`` in a scenario or a plain mapping."""
    node = data
    for token in parse_key_path(path):
        node = node[token] if isinstance(token, int) or isinstance(node, Mapping) else getattr(node, token)
    return node


def _child(node: Any, token: str | int, path: str, kind: type) -> Any:
    if isinstance(token, int):
        _check_index(node, token, path)
        return node[token]
    if not isinstance(node, dict):
        raise ConfigError(f"must lead to a mapping before {token!r}; got {node!r}.")
    if node.get(token) is None:
        node[token] = kind()
    return node[token]


def _check_index(node: Any, index: int, path: str) -> None:
    if not isinstance(node, list):
        raise ConfigError(f"must index a list; got {node!r}.")
    if index >= len(node):
        raise ConfigError(f"must use an index < {len(node)}; got {index}.")


def split_values(text: str) -> list[str]:
    """Split ``a,b(c, d),e`` on the commas outside parentheses and brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts]


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """Split ``key.path=value`` given to ``option``."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"{option} must be written key.path=value; got {text!r}.")
    return path.strip(), value


def load_scenario(
    source: str | Path | Mapping[str, Any] | Scenario,
    *,
    overrides: Iterable[tuple[str, Any]] = (),
    sweeps: Iterable[tuple[str, list[Any]]] = (),
) -> Scenario:
    """Read, override and check a scenario.

    Args:
        source: a YAML file path, a mapping with the same keys, or a Scenario.
        overrides: (key path, value) pairs applied before checking, as ``--set``.
        sweeps: (key path, values) pairs that replace or add sweep axes, as ``--sweep``.

    Raises:
        ConfigError: one line naming the file, the key path, the rule and the value.
    """
    if isinstance(source, Scenario):
        where, base_dir, data = (
            source._source.where,
            source._source.base_dir,
            copy.deepcopy(source._source.data),
        )
    elif isinstance(source, Mapping):
        where, base_dir, data = "<scenario>", Path.cwd(), copy.deepcopy(dict(source))
    else:
        path = Path(source)
        where, base_dir = str(path), path.parent
        data = _read_yaml(path)
    try:
        for key, value in overrides:
            data = set_path(data, key, _yaml_value(value))
        for key, values in sweeps:
            sweep = dict(data.get("sweep") or {})
            sweep[key] = [_yaml_value(value) for value in values]
            data["sweep"] = sweep
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key} {exc}") from None
    scenario = _validate(_Source(data, where, base_dir))
    for key, values in scenario.sweep.items():
        for i, value in enumerate(values):
            scenario._source.cell({key: value}, f"sweep.{key}[{i}]")
    return scenario


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: the scenario file must be readable; got {exc.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(
            f"{path}: the file must be valid YAML{line}; got {getattr(exc, 'problem', exc)}."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the file must hold a mapping of scenario keys; got {type(data).__name__}."
        )
    return data


def _yaml_value(value: Any) -> Any:
    return yaml.safe_load(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class _Source:
    """A scenario's input data, the file it came from and the folder its paths are relative to."""

    data: dict[str, Any]
    where: str
    base_dir: Path

    def cell(self, values: Mapping[str, Any], label: str) -> Scenario:
        data = dict(self.data, sweep={})
        for key, value in values.items():
            try:
                data = set_path(data, key, value)
            except ConfigError as exc:
                raise ConfigError(f"{self.where}: {label}: {key} {exc}") from None
        return _validate(_Source(data, self.where, self.base_dir), label)


def expand(scenario: Scenario) -> list[Cell]:
    """Return the cells of the sweep grid (the Cartesian product of its axes), in order."""
    axes = list(scenario.sweep.items())
    cells = []
    for index, combo in enumerate(itertools.product(*(values for _, values in axes))):
        values = {key: value for (key, _), value in zip(axes, combo, strict=True)}
        cells.append(Cell(index, values, scenario._source.cell(values, f"sweep cell {index}")))
    return cells


def _validate(source: _Source, label: str = "") -> Scenario:
    try:
        scenario = Scenario.model_validate(source.data, context={"base_dir": str(source.base_dir)})
    except ValidationError as exc:
        prefix = f"{source.where}: {label}: " if label else f"{source.where}: "
        raise ConfigError(prefix + describe(exc.errors()[0])) from None
    scenario._source = source
    return scenario


def format_location(loc: Iterable[Any]) -> str:
    """Turn a pydantic location ``('servers', 1, 'workers')`` into ``servers[1].workers``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe(error: Mapping[str, Any]) -> str:
    """Turn one pydantic error into ``<key path> must be <rule>; got <value>.``"""
    loc = list(error["loc"])
    ctx = error.get("ctx") or {}
    kind = error["type"]
    value = error.get("input")
    if kind == "value_error" and isinstance(ctx.get("error"), ConfigError):
        cause = ctx["error"]
        if cause.key:
            loc.append(cause.key)
        message = str(cause)
    elif kind == "missing":
        message = "must be given; got nothing."
    else:
        message = (
            _RULES.get(kind, "must be valid ({msg})").format(msg=error["msg"], **ctx) + f"; got {value!r}."
        )
        if kind == "literal_error":
            choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
            close = difflib.get_close_matches(str(value), choices, n=1)
            if close:
                message += f" Did you mean {close[0]!r}?"
    where = format_location(loc)
    if not where:
        return message
    return f"{where} {message}" if message.startswith("must") else f"{where}: {message}"


_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be one of {expected}",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "too_short": "must have at least {min_length} item(s)",
    "extra_forbidden": "must not be given",
}


def fault_targets(scenario: Scenario, target: str) -> list[list[str]] | None:
    """The server names a fault target covers, as groups failing together, or None if unknown.

    ``web-3``: one server. ``web``: every member, each on its own. ``zone:a`` (``region:eu``):
    every server in zone a (region eu), all at once. ``balancer-<i>`` (``<tier>-<i>``): one
    instance of the bottom balancer tier (of an upper tier); ``balancer`` (``<tier>``): its instance 0.
    """
    names = [(f"{g.name}-{i}", g) for g in scenario.servers for i in range(g.count)]
    if target in {name for name, _ in names}:
        return [[target]]
    if any(g.name == target for g in scenario.servers):
        return [[name] for name, g in names if g.name == target]
    if target.startswith("zone:"):
        members = [name for name, g in names if g.zone == target.removeprefix("zone:")]
        return [members] if members else None
    if target.startswith("region:"):
        members = [name for name, g in names if g.region == target.removeprefix("region:")]
        return [members] if members else None
    if target in scenario.tier_instances:
        return [[f"{target}-0"]]
    return [[target]] if balancer_instance(scenario, target) is not None else None


def balancer_instance(scenario: Scenario, name: str) -> tuple[str, int] | None:
    """The tier and number of the balancer instance called ``name`` (``balancer-3``,
    ``regional-1``), or None if there is none."""
    tier, _, number = name.rpartition("-")
    count = scenario.tier_instances.get(tier)
    if count is None or not number.isdigit() or int(number) >= count:
        return None
    return tier, int(number)
