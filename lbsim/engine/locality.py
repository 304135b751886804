"""Which zone a balancer instance sends a request to, before its policy picks a backend there.

Two Envoy rules (``zone_aware.rst``, ``locality_weight.rst``; ``load_balancer_impl.cc``):
zone-aware routing keeps traffic in the instance's zone while the zone has its share of
the healthy backends and spills the rest by residual capacity; locality-weighted balancing
weights each zone by its health, scaled by the overprovisioning factor.
"""

from __future__ import annotations

from collections.abc import Mapping


def zone_aware_split(
    local_zone: str,
    local_count: dict[str, int],
    healthy: dict[str, int],
    min_cluster_size: int,
) -> dict[str, float] | None:
    """The probability of each zone for requests from an instance in ``local_zone``, or None
    when zone-aware routing is off (fewer than ``min_cluster_size`` healthy backends, fewer
    than two zones of backends or of balancer instances).

    Rule (load_balancer_impl.cc regenerateLocalityRoutingStructures and
    tryChooseLocalLocalityHosts, Envoy 1.28-1.32, in basis points as Envoy computes them):
    local%[z] = 10000 x ``local_count[z]`` // instances and upstream%[z] = 10000 x
    ``healthy[z]`` // healthy backends. If the local zone has healthy backends and
    upstream%[local] >= local%[local], everything stays local. Otherwise upstream% x 10000
    // local% of 10000 stays local (none when the local zone has no healthy backend), and
    the rest goes to the other zones in proportion to their residual capacity
    max(0, upstream% - local%), or to any zone at random when no zone has residual capacity
    (Envoy's rounding corner; lbsim draws among zones with healthy backends, where Envoy
    could draw an empty zone and answer 503).
    """
    total = sum(healthy.values())
    instances = sum(local_count.values())
    if total < min_cluster_size or len(healthy) < 2 or sum(1 for n in local_count.values() if n) < 2:
        return None
    upstream = {z: 10000 * n // total for z, n in healthy.items()}
    local = {z: 10000 * local_count.get(z, 0) // instances for z in healthy}
    here = upstream.get(local_zone, 0)
    if here > 0 and here >= local.get(local_zone, 0):
        return {local_zone: 1.0}
    stay = here * 10000 // local[local_zone] if local.get(local_zone) else 0
    residual = {z: max(0, upstream[z] - local[z]) for z in healthy if z != local_zone}
    spill = sum(residual.values())
    away = 1 - stay / 10000
    if spill == 0:
        alive = [z for z in healthy if healthy[z]]
        split = {z: away / len(alive) for z in alive}
    else:
        split = {z: away * r / spill for z, r in residual.items() if r > 0}
    if stay:
        split[local_zone] = split.get(local_zone, 0.0) + stay / 10000
    return split


def locality_weights(
    weights: Mapping[str, float], healthy: dict[str, int], present: dict[str, int], overprovisioning: float
) -> dict[str, float]:
    """Effective weight of each zone: weight x min(1, overprovisioning x healthy / present)
    (Envoy's w_L x min(100, 140 x avail / total) / 100). Zones without healthy backends get 0."""
    return {
        z: weights.get(z, 1.0) * min(1.0, overprovisioning * healthy.get(z, 0) / present[z])
        if present[z]
        else 0.0
        for z in present
    }
