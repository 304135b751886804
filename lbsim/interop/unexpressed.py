"""What an exported configuration leaves out: the parts of a scenario's balancer that the
real system's config cannot say, each listed in the config's comments and on stderr."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lbsim.config.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Exported:
    """A balancer configuration, and one line per part of the scenario it does not express."""

    text: str
    unexpressed: list[str]


def unexpressed(scenario: Scenario, system: str, absent: Mapping[str, str]) -> list[str]:
    """The parts of ``scenario`` no single ``system`` balancer config expresses, and the
    balancer keys of ``absent`` (key -> reason) the scenario sets."""
    balancer = scenario.balancer
    lines = []
    if scenario.tiers:
        lines.append(
            f"tiers: one config exports one balancer; the {len(scenario.tiers)} tier(s) above are left out"
        )
    if scenario.regions or scenario.dns or scenario.network:
        lines.append("regions, dns, network: the placement around the balancer is not its config")
    if balancer.pools or balancer.routes:
        lines.append(
            "balancer.pools, balancer.routes: content routing is not exported (one backend of every server)"
        )
    if balancer.tls is not None:
        lines.append("balancer.tls: certificates are the deployment's, not exported")
    if balancer.instances > 1:
        lines.append(f"balancer.instances {balancer.instances}: run one {system} per instance")
    if balancer.panic_threshold > 0 and (balancer.health_check or balancer.outlier_detection):
        lines.append(
            f"balancer.panic_threshold {balancer.panic_threshold:g}%: {system} has no panic mode (Envoy's)"
        )
    for key in ("standby", "reload"):
        if getattr(balancer, key) is not None:
            lines.append(f"balancer.{key}: the deployment's, not the config's")
    if balancer.zones:
        lines.append("balancer.zones: zones are not in the config")
    lines += [
        f"balancer.{key}: {reason}" for key, reason in absent.items() if getattr(balancer, key) is not None
    ]
    retries = balancer.retries
    if retries is not None and retries.max > 0:
        lines += [
            f"balancer.retries.{key}: {system} has none"
            for key in ("budget", "hedge", "max_concurrent")
            if getattr(retries, key) is not None
        ]
    for i, group in enumerate(scenario.servers):
        if group.max_connection_age is not None:
            lines.append(f"servers[{i}].max_connection_age: {system} closes connections by its own rules")
        if group.t_join or group.t_leave is not None:
            lines.append(f"servers[{i}].t_join, t_leave: servers joining or leaving are the deployment's")
    return lines
