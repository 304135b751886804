"""The one seam between a scenario file and the engine: a validated scenario in, a run plan of
plain values out (resolving fault targets, pools and their policies, zones, tiers, regions).

Every other engine module works on the plan (``engine.settings``) and never reads the
scenario's configuration classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from lbsim.config.balancer import BalancerModel, PoolModel
from lbsim.config.geography import DnsModel
from lbsim.config.scenario import Scenario, balancer_instance, fault_targets
from lbsim.engine import settings
from lbsim.engine.run import Run
from lbsim.policies import Policy
from lbsim.results.assembler import RunOutput
from lbsim.results.recorder import Sink
from lbsim.status import REJECTED, TOO_MANY_REQUESTS

T = TypeVar("T")


def run(
    scenario: Scenario,
    seed: int,
    replication: int,
    sinks: Sequence[Sink] = (),
    tick: Callable[[float], None] | None = None,
) -> RunOutput:
    """Simulate one replication of one scenario cell (a scenario without a sweep).

    Each sink is called with every chunk of per-request records (see ``Recorder``);
    ``tick(fraction)`` with the share of the simulated duration done, a hundred times a run.
    """
    return Run(plan(scenario), seed, replication, sinks, tick).output()


def plan(scenario: Scenario) -> settings.RunPlan:
    """What a run of ``scenario`` needs, as the engine's settings."""
    names = list(scenario.regions or ())
    network = scenario.network
    workload = scenario.workload
    return settings.RunPlan(
        warmup=scenario.warmup_seconds,
        duration=scenario.duration,
        window=scenario.window_length,
        workload=settings.Workload(
            process=workload.process(),
            size=workload.size,
            clients=workload.clients_model(),
            attributes=workload.attributes(),
            connection=settings.ConnectionLimits(
                workload.connection.requests or 0, workload.connection.lifetime
            ),
            timeout=workload.timeout,
        ),
        servers=tuple(
            settings.ServerSpec(
                f"{g.name}-{i}",
                g.name,
                g.speed,
                g.workers,
                g.queue,
                REJECTED if g.overload_status == 503 else TOO_MANY_REQUESTS,
                g.discipline,
                g.weight,
                g.zone,
                g.max_connection_age,
                g.backup,
                _copy(settings.SlowStart, g.slow_start),
                g.t_join,
                np.inf if g.t_leave is None else g.t_leave,
                g.addresses[i] if g.addresses else f"{g.name}-{i}",
            )
            for g in scenario.servers
            for i in range(g.count)
        ),
        tiers=(_tier("balancer", scenario.balancer), *(_tier(t.name, t) for t in reversed(scenario.tiers))),
        faults=tuple(_fault(scenario, fault) for fault in scenario.faults),
        rtt=np.array(
            [[scenario.rtt(a, b) for b in names] for a in names]
            if names
            else [[network.local if network else 0.0]]
        ),
        cross_zone=network.cross_zone if network else 0.0,
        jitter=network.jitter if network else None,
        geo=_geo(scenario) if scenario.regions else None,
    )


def _copy(kind: type[T], model: Any) -> T | None:
    """The settings ``kind`` with the values of the same names in ``model`` (None for None)."""
    if model is None:
        return None
    return kind(**{name: getattr(model, name) for name in kind.__dataclass_fields__})  # type: ignore[attr-defined]


def _health_check(config: BalancerModel) -> settings.HealthCheck | None:
    """The tier's active checks, their timeout resolved (an HAProxy check's default is its interval)."""
    check = _copy(settings.HealthCheck, config.health_check)
    if check is None or config.health_check is None:
        return None
    return dataclasses.replace(check, timeout=config.health_check.check_timeout)


def _tier(name: str, config: BalancerModel) -> settings.BalancerTier:
    specs: dict[str, PoolModel | None] = dict(config.pools) or {"default": None}
    retries = config.retries
    return settings.BalancerTier(
        name=name,
        emulate=config.emulate,
        layer=config.layer,
        instances=config.instances,
        zones=tuple(config.zones),
        cores=config.cores,
        cost=config.cost_per_request,
        tls_handshake=config.tls.handshake if config.tls else 0.0,
        tls_per_request=config.tls.per_request if config.tls else 0.0,
        pools=tuple(
            settings.PoolSpec(
                pool,
                tuple(spec.servers) if spec else None,
                _policy_maker(config, spec.policy if spec else None),
            )
            for pool, spec in specs.items()
        ),
        routes=tuple(settings.Route(r.path_prefix, r.header, r.pool, r.split) for r in config.routes),
        locality=_copy(settings.Locality, config.locality),
        sticky=_copy(settings.Sticky, config.sticky),
        health_check=_health_check(config),
        outlier_detection=(
            _copy(settings.OutlierDetection, config.outlier_detection)
            if config.outlier_detection is not None and config.outlier_detection.active
            else None
        ),
        circuit_breaker=_copy(settings.CircuitBreaker, config.circuit_breaker),
        panic_threshold=config.panic_threshold,
        backups=config.backup_rule,
        retries=(
            settings.Retries(
                retries.max,
                tuple(retries.on),
                retries.backoff,
                retries.max_backoff,
                retries.budget,
                retries.min_retry_concurrency,
                retries.max_concurrent,
                retries.try_timeout,
                retries.hedge,
                retries.same_server,
                retries.turnaround,
            )
            if retries
            else None
        ),
        standby_failover=config.standby.failover if config.standby else None,
        reload_every=config.reload.every if config.reload else None,
    )


def _policy_maker(config: BalancerModel, spec: Any) -> Callable[[], Policy]:
    """A maker of fresh policy objects: ``spec``'s, or the balancer's."""
    return lambda: config.policy_object(spec)


def _fault(scenario: Scenario, fault: Any) -> settings.Fault:
    groups = fault_targets(scenario, fault.target) or []
    return settings.Fault(
        target=fault.target,
        kind=fault.kind,
        at=fault.at,
        duration=fault.duration,
        mtbf=fault.mtbf,
        mttr=fault.mttr,
        factor=fault.factor,
        probability=fault.probability,
        latency=fault.latency,
        members=tuple((tuple(names), balancer_instance(scenario, names[0])) for names in groups),
    )


def _geo(scenario: Scenario) -> settings.Geo:
    assert scenario.regions is not None
    names = list(scenario.regions)
    count = scenario.workload.clients.count
    # Clients are numbered in contiguous blocks, in proportion to the regions' client shares.
    bounds = np.cumsum([region.clients for region in scenario.regions.values()])
    client_region = np.minimum(np.searchsorted(bounds, (np.arange(count) + 0.5) / count), len(bounds) - 1)
    server_region = np.array([names.index(str(g.region)) for g in scenario.servers for _ in range(g.count)])
    dns = scenario.dns or DnsModel()
    floor, check = dns.ttl_floor, dns.health_check
    return settings.Geo(
        names=tuple(names),
        client_region=client_region,
        server_region=server_region.astype(np.int64),
        dns=settings.Dns(
            policy=dns.policy,
            ttl=dns.ttl,
            floor_share=floor.share if floor else 0.0,
            floor_ttl=max(dns.ttl, floor.ttl) if floor else dns.ttl,
            weights=tuple((dns.weights or {}).get(name, 1.0) for name in names),
            health_check=settings.RegionCheck(
                check.interval,
                check.fall,
                check.rise,
                names.index(check.region) if check.region is not None else 0,
            ),
        ),
    )
