"""Pools and routes: which backends share a policy, and which pool a request goes to.

A pool is the balancer's whole fleet or a named subset of server groups, with a policy of
its own (with a locality rule, a policy per zone as well). Layer-7 routes send a request to
the pool of the first rule its path and headers match, or split sessions by weight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.engine.locality import locality_weights, zone_aware_split
from lbsim.engine.settings import Locality, Route
from lbsim.policies.base import Backend, Policy, smooth_pick
from lbsim.workload import Request, stable_uniform


class Pool:
    """Backends that share a policy: the balancer's whole fleet, or a named subset of groups.

    A pool may be split into parts, each with a policy of its own, as Envoy keeps a host
    set per locality and per priority: with a locality rule (:meth:`localize`) a zone is
    picked first; with backups as priorities (:meth:`prioritize`) a priority level is.
    """

    def __init__(
        self, name: str, policy: Policy, members: Sequence[Backend], rng: np.random.Generator
    ) -> None:
        self.name = name
        self.policy = policy
        self.members = list(members)
        self.rng = rng
        self.eligible: list[Backend] = []
        self.present: set[int] = set()
        self.started = False
        self.outstanding = 0
        self.on_dispatch = policy_hook(policy, "on_dispatch")
        self.on_complete = policy_hook(policy, "on_complete")
        # The backend for a request: the policy's choice, or its part's once split.
        self.pick: Callable[[Request], Backend] = policy.choose
        self.locality: Locality | None = None
        self.parts: dict[Any, Pool] = {}
        self.split: list[tuple[str, float]] | None = None
        self.current: dict[str, float] = {}
        self.effective: dict[str, float] = {}
        self.prioritized = False
        self.loads = [100, 0]

    def _split_into(
        self, keys: list[Any], part_of: Callable[[Backend], Any], policies: Callable[[], Policy]
    ) -> None:
        """Give each key's members (by ``part_of``) a pool with a fresh policy of its own."""
        rngs = self.rng.spawn(len(keys) + 1)
        self.parts = {
            k: Pool(str(k), policies(), [b for b in self.members if part_of(b) == k], r)
            for k, r in zip(keys, rngs, strict=False)
        }
        self.part_draws = UniformDraws(rngs[-1])
        self.part_of = part_of
        pools = [self, *self.parts.values()]
        if any(p.on_dispatch is not None for p in pools):
            self.on_dispatch = self._dispatched
        if any(p.on_complete is not None for p in pools):
            self.on_complete = self._completed
        self._own_dispatch = policy_hook(self.policy, "on_dispatch")
        self._own_complete = policy_hook(self.policy, "on_complete")

    def localize(
        self,
        locality: Locality,
        zone: str | None,
        local_count: dict[str, int],
        policies: Callable[[], Policy],
    ) -> None:
        """Pick a zone by ``locality`` for an instance in ``zone`` (``local_count``: the
        balancer instances in each zone), then a backend by a fresh policy of that zone."""
        zones = list(dict.fromkeys(b.zone for b in self.members if b.zone is not None))
        self._split_into(zones, _zone_of, policies)
        self.locality, self.zone, self.local_count = locality, zone, local_count
        self.current = dict.fromkeys(zones, 0.0)
        self.pick = self._pick_in_zone

    def prioritize(self, backup: Sequence[bool], policies: Callable[[], Policy]) -> None:
        """Envoy's priorities: primaries are level 0 and ``backup`` servers level 1, each
        with a fresh policy; a request picks a level by the loads :meth:`set_levels` gives."""
        self._split_into([0, 1], lambda b: int(backup[b.index]), policies)
        self.prioritized = True
        self.pick = self._pick_in_level

    def _dispatched(self, backend: Backend, request: Request) -> None:
        part = self.parts.get(self.part_of(backend))
        for hook in (self._own_dispatch, part.on_dispatch if part is not None else None):
            if hook is not None:
                hook(backend, request)

    def _completed(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        part = self.parts.get(self.part_of(backend))
        for hook in (self._own_complete, part.on_complete if part is not None else None):
            if hook is not None:
                hook(backend, request, latency, ok)

    def set_eligible(self, eligible: list[Backend], present: Sequence[Backend] = ()) -> None:
        """Make ``eligible`` (members, in member order) the backends the policy chooses from;
        ``present`` (the members in rotation, healthy or not) sizes the zones' health."""
        if self.locality is not None:
            self._set_zones(eligible, present)
        if [b.index for b in eligible] == [b.index for b in self.eligible]:
            return
        self.eligible = eligible
        self.present = {b.index for b in eligible}
        if not eligible:
            return
        if self.started:
            self.policy.update(eligible)
        else:
            self.policy.reset(eligible, self.rng)
            self.started = True

    def set_levels(self, levels: list[list[Backend]], loads: list[int]) -> None:
        """Priorities: each level's eligible backends and its share of requests in percent."""
        for part, eligible in zip(self.parts.values(), levels, strict=True):
            part.set_eligible(eligible)
        self.loads = loads
        chosen = {b.index for level in levels for b in level}
        self.set_eligible([b for b in self.members if b.index in chosen])

    def _set_zones(self, eligible: list[Backend], present: Sequence[Backend]) -> None:
        assert self.locality is not None
        for z, sub in self.parts.items():
            sub.set_eligible([b for b in eligible if b.zone == z])
        healthy = {z: sum(b.zone == z for b in eligible) for z in self.parts}
        if self.locality.mode == "zone_aware":
            assert self.zone is not None
            split = zone_aware_split(self.zone, self.local_count, healthy, self.locality.min_cluster_size)
            self.split = None if split is None else list(split.items())
        else:
            counts = {z: sum(b.zone == z for b in present) for z in self.parts}
            self.effective = locality_weights(
                self.locality.weights, healthy, counts, self.locality.overprovisioning
            )

    def reweigh(self) -> None:
        """Tell the policies that weights changed (slow start)."""
        self.policy.update(self.eligible)
        for sub in self.parts.values():
            if sub.eligible:
                sub.policy.update(sub.eligible)

    def _pick_in_level(self, request: Request) -> Backend:
        """The backend for ``request`` in the level drawn by the loads: Envoy's choosePriority
        with a random hash, hash % 100 + 1 against the running sum of loads."""
        first = self.loads[0]
        level = 0 if first >= 100 or (first > 0 and int(self.part_draws.next() * 100) + 1 <= first) else 1
        return self.parts[level].policy.choose(request)

    def _pick_in_zone(self, request: Request) -> Backend:
        """The backend for ``request`` in the zone the locality rule picks (any, if none)."""
        zone = self._zone()
        return self.policy.choose(request) if zone is None else self.parts[zone].policy.choose(request)

    def _zone(self) -> str | None:
        if self.split is not None:
            draw = self.part_draws.next()
            for zone, probability in self.split:
                draw -= probability
                if draw < 0:
                    return zone
            return self.split[-1][0]
        weighted = [(zone, weight) for zone, weight in self.effective.items() if weight > 0]
        if not weighted:
            return None
        # Smooth weighted round robin over zones (NGINX's rule; Envoy uses an EDF schedule).
        return smooth_pick(self.current, weighted)


class Router:
    """Layer-7 routes: the first rule whose path prefix and headers match names the pool."""

    def __init__(self, routes: Sequence[Route], pools: dict[str, Pool]) -> None:
        self.rules: list[
            tuple[str | None, tuple[tuple[str, str], ...], Pool | None, list[tuple[float, Pool]]]
        ] = []
        for route in routes:
            split: list[tuple[float, Pool]] = []
            if route.split:
                total, running = sum(route.split.values()), 0.0
                for name, weight in route.split.items():
                    running += weight / total
                    split.append((running, pools[name]))
            target = pools[route.pool] if route.pool else None
            self.rules.append((route.path_prefix, tuple((route.header or {}).items()), target, split))
        self._session_point: dict[int, float] = {}

    def pool_for(self, request: Request) -> Pool:
        """The pool of the first matching rule (the last rule matches everything)."""
        for prefix, headers, target, split in self.rules:
            if prefix is not None and not request.path.startswith(prefix):
                continue
            if any(request.headers.get(name) != value for name, value in headers):
                continue
            if target is not None:
                return target
            point = self._session_point.get(request.session)
            if point is None:
                point = self._session_point[request.session] = stable_uniform(f"split:{request.session}")
            for upper, pool in split:
                if point < upper:
                    return pool
            return split[-1][1]
        raise AssertionError("the last route matches every request")


def policy_hook(policy: Policy, hook: str) -> Callable[..., None] | None:
    """``policy``'s ``hook`` method when its class overrides the base's no-op, else None."""
    return getattr(policy, hook) if getattr(type(policy), hook) is not getattr(Policy, hook) else None


def _zone_of(backend: Backend) -> str | None:
    return backend.zone
