"""A whole scenario: run length, workload, servers, balancer, faults, geography, sweep
grid, and the look-ups of what its names (fault targets, balancer instances) refer to.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from lbsim.config.balancer import BalancerModel, TierModel
from lbsim.config.base import Duration, Model
from lbsim.config.emulate import apply_emulation
from lbsim.config.expect import ExpectModel
from lbsim.config.faults import FaultModel
from lbsim.config.geography import DnsModel, NetworkModel, RegionModel
from lbsim.config.precision import PrecisionModel
from lbsim.config.servers import ServerGroup
from lbsim.config.workload import CapacityShare, Workload
from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.limits import MAX_CELLS, MAX_REPLICATIONS
from lbsim.policies import make_policy
from lbsim.units import parse_duration
from lbsim.workload import ClosedUsers


def _warmup(value: object) -> float | str:
    """``auto``, or a duration >= 0."""
    if value == "auto":
        return "auto"
    try:
        seconds = parse_duration(value)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("must be a duration", "must be 'auto' or a duration", 1)) from None
    if seconds < 0:
        raise ConfigError(f"must be >= 0; got {shown(value)}.")
    return seconds


# Keys that set up the whole run (its name, seed, replications, checks and grid), the same in
# every cell: a sweep cannot vary them.
RUN_KEYS = ("name", "description", "seed", "replications", "precision", "expect", "sweep")


class Scenario(Model):
    """A whole scenario: run length, workload, servers, balancer, sweep grid."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    duration: Duration = Field(gt=0)
    # A duration, or "auto": each cell cut by MSER-5 over its replications (runner.auto_warmup).
    warmup: Annotated[float | str, BeforeValidator(_warmup)] = 0.0
    seed: int = Field(0, ge=0)
    replications: int = Field(1, ge=1, le=MAX_REPLICATIONS)
    precision: PrecisionModel | None = None
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
    # The checked input and where it came from (a config.loading.Source), so cells and
    # overrides start from it.
    _source: Any = PrivateAttr()
    # The cells of its sweep grid once config.sweep.expand has made them (each is checked as a
    # whole scenario, about a millisecond a cell, so the preflight and the sweep share them).
    _cells: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _emulate(cls, data: Any) -> Any:
        return apply_emulation(data) if isinstance(data, Mapping) else data

    @field_validator("servers")
    @classmethod
    def _unique_names(cls, groups: list[ServerGroup]) -> list[ServerGroup]:
        seen: set[str] = set()
        for name in (group.name for group in groups):
            if name in seen:
                raise ConfigError(f"must have unique names; got {shown(name)} twice.")
            seen.add(name)
            if name == "balancer":
                raise ConfigError("must not be named 'balancer' (the balancer's name); got 'balancer'.")
        return groups

    @field_validator("sweep")
    @classmethod
    def _non_empty_axes(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in sweep.items():
            if path.split(".")[0].split("[")[0] in RUN_KEYS:
                raise ConfigError(
                    f"must vary what a cell simulates, not the run's {', '.join(RUN_KEYS)}; "
                    f"got {shown(path)}."
                )
            if not values:
                raise ConfigError(f"must list at least one value; got an empty list for {shown(path)}.")
        cells = math.prod(len(values) for values in sweep.values())
        if cells > MAX_CELLS:
            raise ConfigError(
                f"must make at most {MAX_CELLS:,} cells; got {cells:,} "
                f"({' x '.join(str(len(values)) for values in sweep.values())} values)."
            )
        return sweep

    @model_validator(mode="after")
    def _rate_from_capacity(self) -> Scenario:
        """``rate: 80%``: 0.8 x the fleet's capacity in requests per second."""
        rate = self.workload.rate
        if not isinstance(rate, CapacityShare):
            return self
        workload = self.workload.model_copy(update={"rate": rate.share * self.capacity})
        return self.model_copy(update={"workload": workload})

    @model_validator(mode="after")
    def _replications_below_the_precision_maximum(self) -> Scenario:
        if self.precision is not None and self.replications > self.precision.max_replications:
            raise ConfigError(
                f"must be at most precision.max_replications ({self.precision.max_replications}); "
                f"got {self.replications}.",
                key="replications",
            )
        return self

    @model_validator(mode="after")
    def _warmup_inside(self) -> Scenario:
        if isinstance(self.warmup, float) and self.warmup >= self.duration:
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
                        f"got {shown(name)} in {shown(owner[name])} and {shown(pool_name)}.",
                        key=f"balancer.pools.{pool_name}.servers",
                    )
                owner[name] = pool_name
        if (
            self.balancer.locality is not None
            and self.balancer.backup_rule == "priority"
            and any(group.backup for group in self.servers)
        ):
            raise ConfigError(
                "must be absent when backups are priority levels (Envoy routes by zone within "
                "priority 0 only, which lbsim does not model); got locality and backup servers.",
                key="balancer.locality",
            )
        addresses = [a for group in self.servers for a in group.addresses or ()]
        for i, address in enumerate(addresses):
            if not address.strip() or address in addresses[:i]:
                raise ConfigError(
                    f"must be non-empty and unique across the fleet (hashing places servers by "
                    f"them); got {shown(address)} {'empty' if not address.strip() else 'twice'}.",
                    key="servers.addresses",
                )
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
                    f"must be 'crash' for a balancer target; got {shown(fault.kind)}.",
                    key=f"faults[{i}].kind",
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
                    f"must have unique names other than 'balancer' and the server groups'; "
                    f"got {shown(name)}.",
                    key="tiers",
                )
        if self.regions is None:
            network = self.network or NetworkModel()
            # network.local alone is the round trip between the clients and the balancer.
            given = {"dns": self.dns, "network.rtt": network.rtt}
            for key, value in given.items():
                if value:
                    raise ConfigError("must come with 'regions'; got no regions.", key=key)
            if network.jitter is not None and not network.local and not network.cross_zone:
                raise ConfigError(
                    "must come with a crossing to add to: regions, network.local or network.cross_zone; "
                    "got none.",
                    key="network.jitter",
                )
            for i, group in enumerate(self.servers):
                if group.region is not None:
                    raise ConfigError(
                        f"must name one of 'regions'; got {shown(group.region)} and no regions.",
                        key=f"servers[{i}].region",
                    )
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
                raise ConfigError(
                    f"must have servers in every region; got none in {shown(name)}.", key="servers"
                )
        rtt = self.network.rtt if self.network else {}
        for pair in rtt:
            a, _, b = pair.partition("-")
            if a not in names or b not in names or a == b:
                raise ConfigError(
                    f"must be keyed region-region between two regions; got {shown(pair)}.", key="network.rtt"
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
                raise ConfigError(f"must be >= 0; got {weight:g} for {shown(name)}.", key="dns.weights")
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

    @property
    def warmup_seconds(self) -> float:
        """The warm-up in seconds.

        Raises:
            ConfigError: ``warmup: auto``, which a sweep resolves per cell over its
                replications (:func:`lbsim.runner.auto_warmup`) before any run.
        """
        if isinstance(self.warmup, str):
            raise ConfigError(
                "warmup: auto is cut per cell over its replications by a sweep (lbsim run, lbsim.sweep, "
                "lbsim.run_sweep); one run needs a fixed warmup; got auto."
            )
        return self.warmup

    @property
    def capacity(self) -> float:
        """The fleet's capacity in requests per second: the sum of count x workers x speed
        over the server groups (seconds of work a second) over the mean request size (s)."""
        return self._work_per_second / self.workload.size.mean

    @property
    def _work_per_second(self) -> float:
        return sum(group.count * group.workers * group.speed for group in self.servers)

    @property
    def offered_load(self) -> float:
        """The load offered to the servers: arrival rate x mean size / the fleet's work per
        second, which is arrival rate / :attr:`capacity` (1 or more: overloaded); NaN for
        closed-loop users, whose rate follows from the run."""
        process = self.workload.process()
        if isinstance(process, ClosedUsers):
            return math.nan
        return process.mean_rate * self.workload.size.mean / self._work_per_second

    @property
    def balancer_load(self) -> float:
        """The load offered to the balancer's cores: arrival rate x processing cost /
        (instances x cores); NaN for closed-loop users."""
        process = self.workload.process()
        if isinstance(process, ClosedUsers):
            return math.nan
        balancer = self.balancer
        return process.mean_rate * balancer.cost_per_request / (balancer.instances * balancer.cores)

    def policy_label(self) -> str:
        """The policy's name as result tables show it."""
        return make_policy(self.balancer.policy).label()


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
