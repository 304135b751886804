"""Retries, hedged requests and per-try timeouts (Envoy's retry policy, HAProxy's retries).

A client request becomes a call that the instance may try several times: again after a
failure the retry policy covers (``on``), up to ``max`` retries, within the retry budget,
after an exponential backoff with full jitter (or, HAProxy's way, a fixed ``turnaround``
and to the same server); once more after ``hedge`` seconds without an answer; and each try
is abandoned after ``try_timeout``. The first answer that is ``ok`` ends the call, as does
the last failure when nothing is left to try.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lbsim.engine.balancer.stage import Stage
from lbsim.engine.clock import Clock
from lbsim.engine.messages import Attempt
from lbsim.engine.settings import Retries as RetryPolicy
from lbsim.status import (
    BAD_GATEWAY,
    CONNECT_FAILURE,
    DROPPED,
    ERROR,
    GATEWAY_TIMEOUT,
    OK,
    REJECTED,
    RESET,
    TIMEOUT,
    TOO_MANY_REQUESTS,
)
from lbsim.workload import Request

if TYPE_CHECKING:
    from lbsim.engine.balancer.connections import Connection
    from lbsim.engine.balancer.instance import Instance, RunStats
    from lbsim.policies.base import Backend

# What a failed attempt is, in the words of retries.on.
_CAUSE: dict[int, str] = {
    CONNECT_FAILURE: "connect_failure",
    ERROR: "error",
    RESET: "reset",
    TIMEOUT: "timeout",
    REJECTED: "rejected",
    BAD_GATEWAY: "error",
    GATEWAY_TIMEOUT: "error",
    TOO_MANY_REQUESTS: "http_429",
}


class Call:
    """One client request that a balancer may try several times (retries, hedges)."""

    __slots__ = ("connection", "live", "pinned", "request", "retries", "tried")

    def __init__(self, request: Request, connection: Connection | None) -> None:
        self.request = request
        self.connection = connection
        self.live: list[Attempt] = []
        self.tried: set[int] = set()
        self.retries = 0
        # The backend every retry goes to (HAProxy without redispatch), once one failed.
        self.pinned: Backend | None = None


class Retries(Stage):
    """The retry policy of one instance."""

    def __init__(
        self, clock: Clock, config: RetryPolicy, rng: np.random.Generator, stats: RunStats, owner: Instance
    ) -> None:
        self.clock = clock
        self.config = config
        # Envoy's 5xx condition (lbsim's ``error``) covers resets too.
        self.retry_on = set(config.on) | ({"reset"} if "error" in config.on else set())
        self.rng = rng
        self.stats = stats
        self.owner = owner
        self.retries_active = 0

    def send(self, attempt: Attempt) -> None:
        call = Call(attempt.request, attempt.connection)
        self._try(call, attempt)
        if self.config.hedge is not None:
            self.clock.schedule(self.config.hedge, self._hedge, call)

    def _try(self, call: Call, attempt: Attempt, retry: bool = False) -> None:
        attempt.call, attempt.retry = call, retry
        call.live.append(attempt)
        if self.config.try_timeout is not None:
            self.clock.schedule(self.config.try_timeout, self._try_expired, attempt)
        self.forward(attempt)

    def answer(self, attempt: Attempt, index: int, status: int) -> None:
        call = attempt.call
        assert call is not None
        call.live.remove(attempt)
        if attempt.retry:
            self.retries_active -= 1
        if call.request.t_done >= 0:
            return  # the client gave up, or another attempt answered first
        if status == OK:
            self.reply(attempt, index, OK)
        elif call.live:
            return  # a hedged copy is still out
        elif self._may_retry(call, status):
            if self.config.same_server:
                call.pinned = attempt.backend
            self._schedule_retry(call, index)
        else:
            self.reply(attempt, index, status)

    def _try_expired(self, attempt: Attempt) -> None:
        call = attempt.call
        assert call is not None
        if attempt in call.live and not self.owner.dead:
            # Envoy resets the upstream stream: the attempt stops counting as active now,
            # though the server, which is not told, may still work on it.
            self.owner.dispatch.abandon(attempt)

    def _may_retry(self, call: Call, status: int) -> bool:
        config = self.config
        if _CAUSE.get(status) not in self.retry_on or call.retries >= config.max:
            return False
        if config.budget is None:
            # Envoy's max_retries circuit breaker: retries scheduled and not yet answered
            # (router/retry_state_impl.cc: retries().canCreate() before each retry).
            return config.max_concurrent is None or self.retries_active < config.max_concurrent
        # Envoy's retry budget, which overrides that breaker: concurrent retries <= max(min,
        # budget x active requests).
        allowed = max(config.min_retry_concurrency, config.budget * self.owner.attempts_active)
        return self.retries_active < allowed

    def _schedule_retry(self, call: Call, index: int) -> None:
        call.retries += 1
        self.retries_active += 1
        self.stats.n_retries += 1
        self.stats.retry_log.append((self.clock.now, index))
        self.clock.schedule(self._delay(call.retries), self._retry, call)

    def _delay(self, retries: int) -> float:
        """Seconds before retry number ``retries``."""
        config = self.config
        if config.turnaround is not None:
            # HAProxy's turn-around timer (configuration.txt, retries): a fixed wait.
            return config.turnaround
        # Envoy: full jitter, retry n waits U[0, (2^n - 1) x base), capped at 10 x base.
        cap = config.max_backoff if config.max_backoff is not None else 10 * config.backoff
        return float(self.rng.uniform(0, min(cap, (2**retries - 1) * config.backoff)))

    def _retry(self, call: Call) -> None:
        if call.request.t_done >= 0 or self.owner.dead:
            self.retries_active -= 1
            if self.owner.dead:
                self.owner.deliver(call.request, -1, DROPPED)
            return
        self._try(call, self.owner.attempt(call.request, call.connection), retry=True)

    def _hedge(self, call: Call) -> None:
        if call.request.t_done >= 0 or len(call.live) != 1 or self.owner.dead:
            return
        self.stats.n_hedges += 1
        self._try(call, self.owner.attempt(call.request, call.connection))
