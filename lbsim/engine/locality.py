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
    local_share: dict[str, float],
    healthy: dict[str, int],
    min_cluster_size: int,
) -> dict[str, float] | None:
    """The probability of each zone for requests from an instance in ``local_zone``, or None
    when zone-aware routing is off (fewer than ``min_cluster_size`` healthy backends, fewer
    than two zones, or none healthy in the local zone).

    ``local_share[z]`` is the share of the balancer instances in zone z (Envoy's local%),
    ``healthy[z]`` the healthy backends in zone z. With upstream% = healthy[z] / total: if
    upstream%[local] >= local%[local], everything stays local; otherwise upstream%/local% of
    it does, and the rest goes to the other zones in proportion to their residual capacity
    max(0, upstream% - local%).
    """
    total = sum(healthy.values())
    if total < min_cluster_size or len([z for z in healthy if healthy[z]]) < 2 or not healthy.get(local_zone):
        return None
    upstream = {z: n / total for z, n in healthy.items()}
    local = local_share.get(local_zone, 0.0)
    if upstream[local_zone] >= local:
        return {local_zone: 1.0}
    residual = {
        z: max(0.0, upstream[z] - local_share.get(z, 0.0)) for z in healthy if z != local_zone and healthy[z]
    }
    spill = sum(residual.values())
    stay = upstream[local_zone] / local
    split = {local_zone: stay if spill > 0 else 1.0}
    for z, r in residual.items():
        if spill > 0 and r > 0:
            split[z] = (1 - stay) * r / spill
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
