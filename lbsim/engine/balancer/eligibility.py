"""Which backends a balancer instance may choose: membership, health, panic, backups, slow start.

Planned membership, active health checks and passive ejection decide whether a server is
usable; each pool then gets its eligible backends from the rule below, and a server that
comes back ramps its weight up (slow start). None of this runs per request: it runs when a
server's state changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from lbsim.engine.balancer.pools import Pool
from lbsim.engine.clock import Clock
from lbsim.engine.health import HealthChecker, PassiveCheck
from lbsim.engine.priority import priority_loads
from lbsim.engine.settings import SlowStart
from lbsim.policies.base import Backend

# Slow start raises a returning backend's weight in this many steps.
SLOW_START_STEPS = 20


class Eligibility:
    """The eligible backends of every pool of one instance, kept up to date.

    With ``backups`` ``priority`` (Envoy), primaries and backups are priority levels 0 and
    1: each level's share of requests and its panic follow Envoy's rule
    (:func:`lbsim.engine.priority.priority_loads`); a level in panic uses every present
    member, healthy or not. With ``last_resort`` (NGINX and HAProxy ``backup``), healthy
    primaries are used while they are at least ``panic_threshold`` percent of the present
    primaries; with none healthy, healthy backups; below the threshold otherwise, every
    present primary (a threshold of 0, as NGINX and HAProxy have, disables that).
    """

    def __init__(
        self,
        clock: Clock,
        pools: Sequence[Pool],
        backup: Sequence[bool],
        slow_start: Sequence[SlowStart | None],
        base_weight: Sequence[int],
        panic_threshold: float,
        backups: str,
        scope: set[int] | None,
        log: Callable[[str, str, str], None],
    ) -> None:
        self.clock = clock
        self.pools = list(pools)
        self.backup = list(backup)
        self.slow_start = list(slow_start)
        self.base_weight = list(base_weight)
        self.panic_threshold = panic_threshold
        self.priority = backups == "priority"
        self.scope = scope
        self.log = log
        self.checker: HealthChecker | None = None
        self.detector: PassiveCheck | None = None
        self.present: set[int] = set()
        self.usable: set[int] = set()
        self.panicking = False

    def set_present(self, indices: set[int]) -> None:
        """The servers whose index is in ``indices`` (and in the scope) are members."""
        self.present = indices if self.scope is None else indices & self.scope
        self.refresh()

    def changed(self, index: int) -> None:
        """Server ``index``'s health changed."""
        self.refresh()

    def available(self, index: int) -> bool:
        """Whether health checks and passive health let this instance use server ``index``."""
        if self.checker is not None and not self.checker.up[index]:
            return False
        return self.detector is None or index not in self.detector.out

    def refresh(self) -> None:
        """Recompute each pool's eligible backends."""
        panicking = False
        usable = {i for i in self.present if self.available(i)}
        returning = usable - self.usable if self.clock.now > 0 else set()
        self.usable = usable
        for pool in self.pools:
            present = [b for b in pool.members if b.index in self.present]
            primaries = [b for b in present if not self.backup[b.index]]
            healthy = [b for b in primaries if self.available(b.index)]
            backups = [b for b in present if self.backup[b.index] and self.available(b.index)]
            if self.priority:
                panicking |= self._set_levels(pool, present)
            elif healthy and 100 * len(healthy) >= self.panic_threshold * len(primaries):
                pool.set_eligible(healthy, present)
            elif not healthy and backups:
                pool.set_eligible(backups, present)
            elif primaries and self.panic_threshold > 0:
                panicking = True
                pool.set_eligible(primaries, present)
            else:
                pool.set_eligible(healthy, present)
            for backend in pool.members:
                if backend.index in returning and self.slow_start[backend.index] is not None:
                    self._ramp((backend, pool, 1))
        if panicking != self.panicking:
            self.panicking = panicking
            self.log("panic", "pool", "on" if panicking else "off")

    def _set_levels(self, pool: Pool, present: list[Backend]) -> bool:
        """Envoy's priority rule for ``pool``; whether a level with members and traffic is in
        panic (Envoy flags an empty level too, but it has nothing to spread traffic over)."""
        levels = (
            [[b for b in present if not self.backup[b.index]], [b for b in present if self.backup[b.index]]]
            if pool.prioritized
            else [present]
        )
        healthy = [[b for b in level if self.available(b.index)] for level in levels]
        loads, panic = priority_loads(
            [len(h) for h in healthy], [len(level) for level in levels], self.panic_threshold
        )
        chosen = [level if panic[p] else healthy[p] for p, level in enumerate(levels)]
        if pool.prioritized:
            pool.set_levels(chosen, loads)
        else:
            pool.set_eligible(chosen[0], present)
        return any(panic[p] and loads[p] > 0 and levels[p] for p in range(len(levels)))

    def _ramp(self, step_of: tuple[Backend, Pool, int]) -> None:
        """Slow start: set the weight for ``step`` (from 1) and schedule the next one."""
        backend, pool, step = step_of
        config = self.slow_start[backend.index]
        assert config is not None
        base = self.base_weight[backend.index]
        if config.style == "haproxy":
            # HAProxy (server.c server_recalc_eweight, from server_warmup every second: its
            # MAX(1000, slowstart / 20) mixes seconds and milliseconds): t whole seconds after
            # the return, S the window rounded up to seconds, weight x ((16 t + S) // S) / 16.
            elapsed, window = step - 1, math.ceil(config.window)
            done = elapsed >= window
            backend.weight = base if done else base * ((16 * elapsed + window) // window) / 16
            interval = 1.0
        else:
            # Envoy: weight x max(min_weight_percent, (t / window)^(1 / aggression)), here in
            # 20 steps of window / 20.
            done = step > SLOW_START_STEPS
            factor = max(
                config.min_weight_percent / 100, (step / SLOW_START_STEPS) ** (1 / config.aggression)
            )
            backend.weight = base if done else base * factor
            interval = config.window / SLOW_START_STEPS
        if backend.index in pool.present:
            pool.reweigh()
        if not done:
            self.clock.schedule(interval, self._ramp, (backend, pool, step + 1))
