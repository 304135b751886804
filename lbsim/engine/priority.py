"""Envoy's priority levels: how much of the traffic each level gets, and which levels panic.

Envoy keeps backups as a lower priority (level 1 under the primaries' level 0) and spills
traffic down by health instead of waiting for every primary to fail, the way NGINX's and
HAProxy's ``backup`` servers do.
"""

from __future__ import annotations

from collections.abc import Sequence

# Envoy's default overprovisioning factor, 1.4, as Envoy keeps it (kDefaultOverProvisioningFactor).
OVERPROVISIONING = 140


def priority_loads(
    healthy: Sequence[int], hosts: Sequence[int], panic_threshold: float
) -> tuple[list[int], list[bool]]:
    """The percentage of requests each priority level gets, and whether it is in panic.

    Rule (load_balancer_impl.cc, Envoy 1.28-1.32: recalculatePerPriorityState,
    distributeLoad, recalculatePerPriorityPanic, recalculateLoadInTotalPanic, hosts counted
    unweighted): a level's health is min(100, 140 x healthy // hosts); the normalized total
    is min(100, sum of healths). Levels take min(what is left, health x 100 // normalized)
    in order, the rounding remainder going to the first level with health. A level panics
    when the normalized total is below 100 and its healthy percentage is below the
    threshold (rounded to a whole percent); a panicking level uses all its hosts. When every
    level panics, loads follow host counts instead. With a threshold of 0 and no healthy
    host anywhere, level 0 gets everything (and has nothing to pick).

    Args:
        healthy: healthy hosts per level, level 0 first.
        hosts: hosts per level (healthy or not).
        panic_threshold: percent, 0 to 100.

    Returns:
        (loads in whole percent summing to 100, panic flag per level).
    """
    levels = len(hosts)
    health = [min(100, OVERPROVISIONING * h // n) if n else 0 for h, n in zip(healthy, hosts, strict=True)]
    normalized = min(100, sum(health))
    threshold = min(100, round(panic_threshold))
    loads = [0] * levels
    if normalized > 0:
        left = 100
        for level in range(levels):
            loads[level] = min(left, health[level] * 100 // normalized)
            left -= loads[level]
        loads[next(level for level in range(levels) if health[level] > 0)] += left
    elif threshold == 0:
        return [100] + [0] * (levels - 1), [False] * levels
    panic = [
        normalized != 100 and (100 * h / n if n else 0.0) < threshold
        for h, n in zip(healthy, hosts, strict=True)
    ]
    if all(panic):
        total = sum(hosts)
        if total == 0:
            return [100] + [0] * (levels - 1), panic
        loads = [100 * n // total for n in hosts]
        loads[next(level for level in range(levels) if hosts[level])] += 100 - sum(loads)
    return loads, panic
