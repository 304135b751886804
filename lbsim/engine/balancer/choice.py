"""How a backend is chosen at layer 7 beyond the policy: session persistence and retries.

A sticky session goes back to the backend it used last (while that backend is present and
the entry has not expired); a retry goes to a backend not tried yet. Otherwise the pool's
policy chooses.
"""

from __future__ import annotations

from lbsim.engine.balancer.pools import Pool
from lbsim.engine.clock import Clock
from lbsim.engine.messages import Attempt
from lbsim.engine.settings import Sticky
from lbsim.policies.base import Backend

# A retry asks the policy this many more times for an untried backend before taking the
# least busy untried one.
RETRY_PICKS = 3


class Choice:
    """Chooses with a session table when ``sticky`` is given (by client or by session, entries
    kept ``ttl`` seconds after their last use, forever when None), and avoiding tried backends."""

    def __init__(self, clock: Clock, sticky: Sticky | None) -> None:
        self.clock = clock
        self.table: dict[int, tuple[Backend, float]] | None = {} if sticky is not None else None
        self.by_client = sticky is not None and sticky.by == "client"
        self.ttl = sticky.ttl if sticky is not None else None

    def __call__(self, attempt: Attempt, pool: Pool) -> Backend:
        request = attempt.request
        if attempt.call is not None and attempt.call.pinned is not None:
            return attempt.call.pinned  # a retry to the same server (HAProxy)
        tried: set[int] | tuple[()] = attempt.call.tried if attempt.call is not None else ()
        backend = self._remembered(attempt, pool) if self.table is not None else None
        if backend is not None and backend.index not in tried:
            return backend
        backend = pool.pick(request)
        if tried and backend.index in tried:
            # A retry goes to a backend not tried yet (Envoy's previous_hosts predicate,
            # NGINX's per-request tried set): ask the policy again a few times, then take
            # the least busy untried backend, as NGINX's scan skipping tried peers would.
            for _ in range(RETRY_PICKS):
                backend = pool.pick(request)
                if backend.index not in tried:
                    break
            else:
                untried = [b for b in pool.eligible if b.index not in tried]
                if untried:
                    backend = min(untried, key=lambda b: b.active)
        if self.table is not None:
            key = request.client if self.by_client else request.session
            self.table[key] = (backend, self.clock.now)
        return backend

    def _remembered(self, attempt: Attempt, pool: Pool) -> Backend | None:
        assert self.table is not None
        request = attempt.request
        key = request.client if self.by_client else request.session
        entry = self.table.get(key)
        if entry is None:
            return None
        backend, t_last = entry
        now = self.clock.now
        if backend.index not in pool.present or (self.ttl is not None and now - t_last > self.ttl):
            return None
        self.table[key] = (backend, now)
        return backend
