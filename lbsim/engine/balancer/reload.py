"""Balancer reloads (HAProxy, NGINX): every ``every`` seconds a fresh process takes over.

A reload starts a new process that shares nothing with the old one: its policies start
afresh (round-robin position, smooth weights, averages) and it counts no active request,
while the old process finishes the requests it holds. Frequent reloads (endpoint churn
through a config push) therefore skew traffic towards the backends every fresh process
prefers first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lbsim.engine.balancer.dispatch import Dispatch
from lbsim.engine.balancer.eligibility import Eligibility
from lbsim.engine.balancer.pools import Pool
from lbsim.engine.clock import Clock
from lbsim.policies.base import Backend


class Reloads:
    """Reload one instance every ``every`` seconds.

    An attempt sent before the latest reload belongs to the old process: its end no longer
    touches the new process's active counts or policies. Attempts sent at the very instant
    of a reload count as the new process's.
    """

    def __init__(
        self,
        clock: Clock,
        every: float,
        dispatch: Dispatch,
        eligibility: Eligibility,
        backends: Sequence[Backend],
        log: Callable[[str, str, str], None],
    ) -> None:
        self.clock = clock
        self.every = every
        self.eligibility = eligibility
        self.backends = list(backends)
        self.log = log
        self.dispatch = dispatch
        clock.schedule(every, self._reload)

    def _reload(self, _: object) -> None:
        self.dispatch.reloaded_at = self.clock.now
        for backend in self.backends:
            backend.active = 0
        for pool in self.eligibility.pools:
            for part in (pool, *pool.parts.values()):
                _restart(part)
        self.eligibility.refresh()
        self.log("reload", "process", "reloaded")
        self.clock.schedule(self.every, self._reload)


def _restart(pool: Pool) -> None:
    """Forget the pool's policy state: the next eligible set resets the policy."""
    pool.started = False
    pool.eligible = []
