"""The one seam between a scenario file and the engine: a validated scenario in, runtime
objects out (servers, their placements, balancer tiers, clients).

Every other engine module works on what this module builds and never reads the scenario's
configuration classes.
"""

from __future__ import annotations

import numpy as np

from lbsim.config.scenario import Scenario
from lbsim.engine.balancer.instance import Placement
from lbsim.engine.clients import ClosedLoopUsers, OpenLoopClients, Requests, Send
from lbsim.engine.clock import Clock
from lbsim.engine.geography import Geography
from lbsim.engine.messages import Endpoint
from lbsim.engine.server import ProcessorSharingServer, Server
from lbsim.engine.tiers import BOTTOM, Tier, TierGate
from lbsim.workload import ClosedUsers, request_blocks


def servers(
    clock: Clock, scenario: Scenario
) -> tuple[list[Server], list[Placement], list[tuple[float, float]]]:
    """Every server of the scenario in index order, what the balancers know of each, and
    when each is a member (from ``t_join`` until ``t_leave``, inf when it never leaves)."""
    built: list[Server] = []
    placements: list[Placement] = []
    membership: list[tuple[float, float]] = []
    for group in scenario.servers:
        kind = ProcessorSharingServer if group.discipline == "ps" else Server
        for i in range(group.count):
            built.append(
                kind(
                    clock,
                    len(built),
                    f"{group.name}-{i}",
                    group.name,
                    group.speed,
                    group.workers,
                    group.queue,
                )
            )
            placements.append(
                Placement(
                    group.name,
                    group.weight,
                    group.zone,
                    group.max_connection_age,
                    group.backup,
                    group.slow_start,
                )
            )
            membership.append((group.t_join, np.inf if group.t_leave is None else group.t_leave))
    return built, placements, membership


def tiers(
    clock: Clock,
    scenario: Scenario,
    servers: list[Server],
    placements: list[Placement],
    policy_rng: np.random.Generator,
    geo: Geography | None,
) -> list[Tier]:
    """Every balancer tier from the bottom up (instances not built yet): the bottom one over
    the servers, each upper one over gates to the instances of the tier below."""
    n_regions = len(scenario.regions) if scenario.regions else 1
    scopes = [{s.index for s in members} for members in geo.members] if geo else None
    counts = scenario.tier_instances
    built = [Tier(BOTTOM, scenario.balancer, servers, placements, policy_rng.spawn(counts[BOTTOM]), scopes)]
    for config in reversed(scenario.tiers):
        below = built[-1]
        gates: list[Endpoint] = [
            TierGate(clock, k, f"{below.name}-{k}", below.instances) for k in range(len(below.instances))
        ]
        n = below.config.instances
        scopes = [set(range(r * n, (r + 1) * n)) for r in range(n_regions)] if geo else None
        gate_placements = [Placement(below.name, 1, None, None, False, None)] * len(gates)
        rngs = policy_rng.spawn(counts[config.name])
        built.append(Tier(config.name, config, gates, gate_placements, rngs, scopes))
    return built


def clients(
    clock: Clock, scenario: Scenario, streams: dict[str, np.random.Generator], send: Send
) -> OpenLoopClients | ClosedLoopUsers:
    """The scenario's clients, sending their requests to ``send``."""
    workload = scenario.workload
    requests = Requests(clock, workload.attributes(), streams)
    process = workload.process()
    if isinstance(process, ClosedUsers):
        return ClosedLoopUsers(clock, process, workload.size, streams, requests, send)
    blocks = request_blocks(process, workload.size, workload.clients_model(), streams, scenario.duration)
    return OpenLoopClients(clock, blocks, requests, send)
