"""How a balancer instance learns that a backend is unwell, and what it does about it.

Active health checks send a small request through each server every interval (so a hung or
overloaded server fails them by timeout); passive outlier detection watches live traffic
(Envoy's consecutive errors and ejections, or NGINX's max_fails / fail_timeout); circuit
breakers stop sending to a failing backend for a while (the notes' closed / open /
half-open). Each calls back ``changed(server index)`` when a backend's availability flips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lbsim.engine.clock import Clock
from lbsim.engine.messages import Attempt, Endpoint, Probe
from lbsim.engine.network import ZoneHops
from lbsim.engine.settings import CircuitBreaker, HealthCheck, OutlierDetection
from lbsim.status import (
    BAD_GATEWAY,
    CONNECT_FAILURE,
    ERROR,
    GATEWAY_TIMEOUT,
    OK,
    REJECTED,
    RESET,
    TIMEOUT,
    TOO_MANY_REQUESTS,
)

Log = Callable[[str, str, str], None]
Changed = Callable[[int], None]


class HealthChecker:
    """Active checks of every server by one balancer instance (HAProxy or Envoy rules)."""

    def __init__(
        self,
        clock: Clock,
        config: HealthCheck,
        endpoints: Sequence[Endpoint],
        names: Sequence[str],
        rng: np.random.Generator,
        changed: Changed,
        log: Log,
        scope: set[int] | None = None,
        far: set[int] | None = None,
        hops: ZoneHops | None = None,
    ) -> None:
        """Check the servers whose index is in ``scope`` (all when None); probes to those in
        ``far`` (another zone) cross between zones by ``hops``."""
        self.clock = clock
        self.config = config
        self.endpoints = list(endpoints)
        self.names = list(names)
        self.rng = rng
        self.changed = changed
        self.log = log
        self.haproxy = config.style == "haproxy"
        top = config.rise + config.fall - 1
        # HAProxy starts a server at the lowest up level; Envoy starts it failed, pending a pass.
        n = len(self.endpoints)
        self.health = [config.rise] * n
        self.ever_up = [self.haproxy] * n
        self.top = top
        self.passes = [0] * n
        self.fails = [0] * n
        self.up = [self.haproxy] * n
        self.far = far or set()
        self.hops = hops
        self.outstanding: dict[int, Probe] = {}
        self.n_probes = 0
        self.stopped = False
        for index in range(n) if scope is None else [k for k in range(n) if k in scope]:
            # HAProxy spreads the first checks over an interval; Envoy checks new hosts at once.
            first = float(rng.uniform(0, config.interval)) if self.haproxy else 0.0
            clock.schedule(first, self._probe, index)

    def _probe(self, index: int) -> None:
        if self.stopped:
            return
        config = self.config
        self.n_probes += 1
        probe = Probe(-self.n_probes, index, config.probe_size, self.clock.now, self.complete)
        self.outstanding[index] = probe
        self.clock.schedule(config.timeout, self._timed_out, probe)
        jitter = float(self.rng.uniform(0, config.jitter)) if config.jitter else 0.0
        self.clock.schedule(config.interval + jitter, self._probe, index)
        if index in self.far:
            assert self.hops is not None
            self.hops.send(self.endpoints[index], probe)
            return
        self.endpoints[index].accept(probe)

    def complete(self, probe: Probe, status: int) -> None:
        """The server answered a probe (its answer crosses back first, from another zone)."""
        if probe.crossed:
            assert self.hops is not None
            self.hops.answer(probe, status)
            return
        index = probe.server
        if self.outstanding.get(index) is probe:
            del self.outstanding[index]
            self._result(index, status == OK, status == ERROR)

    def _timed_out(self, probe: Probe) -> None:
        index = probe.server
        if self.outstanding.get(index) is probe:
            del self.outstanding[index]
            self._result(index, False, False)

    def _result(self, index: int, passed: bool, bad_status: bool) -> None:
        config = self.config
        was_up = self.up[index]
        if self.haproxy:
            health = self.health[index]
            if passed:
                health = self.top if health + 1 >= config.rise else health + 1
            else:
                health = health - 1 if health - 1 >= config.rise else 0
            self.health[index] = health
            self.up[index] = health >= config.rise
        elif passed:
            self.fails[index] = 0
            self.passes[index] += 1
            # A new host (never up) needs one pass; a host that went down needs `rise`.
            if not was_up and (self.passes[index] >= config.rise or not self.ever_up[index]):
                self.up[index] = True
                self.ever_up[index] = True
        else:
            self.passes[index] = 0
            self.fails[index] += 1
            # Envoy: an unexpected HTTP status fails the host at once; timeouts and refused
            # connections count toward the unhealthy threshold.
            if was_up and (bad_status or self.fails[index] >= config.fall):
                self.up[index] = False
        if self.up[index] != was_up:
            self.log("health_check", self.names[index], "up" if self.up[index] else "down")
            self.changed(index)


class PassiveCheck:
    """Passive health from live responses: :meth:`result` sees each attempt's outcome; the
    servers taken out are in ``out``, and ``changed(index)`` is called when that flips."""

    def __init__(
        self, clock: Clock, config: OutlierDetection, names: Sequence[str], changed: Changed, log: Log
    ) -> None:
        self.clock = clock
        self.config = config
        self.names = list(names)
        self.changed = changed
        self.log = log
        self.out: set[int] = set()

    def watch(self, index: int, deliver: Callable[[Attempt], None]) -> Callable[[Attempt], None]:
        """How attempts reach server ``index``: ``deliver``, or a wrapper that sees each pick
        first (for a check that must; the others add nothing per request)."""
        return deliver

    def result(self, index: int, status: int, pool_size: int) -> None:
        """An attempt to server ``index`` ended with ``status``; ``pool_size`` servers share its pool."""
        raise NotImplementedError


class OutlierDetector(PassiveCheck):
    """Envoy's outlier detection: eject a backend after ``consecutive_errors`` failed responses
    in a row; unejected on the detector's ``interval`` tick once min(base_ejection x its
    ejection count, max(max_ejection, base_ejection)) has passed, its consecutive count reset
    (outlier_detection_impl.cc, checkHostForUneject); each tick a backend that is not ejected
    has its ejection count lowered by one.

    Success rate (processSuccessRateEjections, successRateEjectionThreshold): on each tick,
    after unejecting, each backend's success percentage over the interval just ended is
    taken if it had at least ``success_rate_request_volume`` answers and is not ejected;
    with at least ``success_rate_minimum_hosts`` such backends, those below mean -
    ``success_rate_stdev_factor`` x stdev (population) are ejected, within the
    max_ejection_percent limit. Rates 50, 100, 100, 100, 100: mean 90, stdev 20, threshold
    52 (Envoy's own example). Every answer but OK and 429 is a failure (5xx, and local-origin
    errors mapped to 5xx when split_external_local_origin_errors is off, the default); a 429
    is not a 5xx, so it counts as a success and ends a run of errors (putHttpResponseCode)."""

    def __init__(
        self, clock: Clock, config: OutlierDetection, names: Sequence[str], changed: Changed, log: Log
    ) -> None:
        super().__init__(clock, config, names, changed, log)
        n = len(self.names)
        self.consecutive = [0] * n
        self.ejections = [0] * n
        self.t_ejected = [0.0] * n
        # Answers and successes in the current interval (Envoy's SuccessRateAccumulator).
        self.answered = [0] * n
        self.succeeded = [0] * n
        clock.schedule(config.interval, self._tick)

    def result(self, index: int, status: int, pool_size: int) -> None:
        """An attempt to server ``index`` ended with ``status`` (any but OK and 429 counts as an error)."""
        self.answered[index] += 1
        if status in (OK, TOO_MANY_REQUESTS):
            self.succeeded[index] += 1
            self.consecutive[index] = 0
            return
        self.consecutive[index] += 1
        if index in self.out:
            return
        if self.consecutive[index] >= self.config.consecutive_errors and self._may_eject():
            self.consecutive[index] = 0
            self._eject(index)

    def _eject(self, index: int) -> None:
        self.ejections[index] += 1
        self.t_ejected[index] = self.clock.now
        self.out.add(index)
        self.log("outlier_detection", self.names[index], "ejected")
        self.changed(index)

    def _may_eject(self) -> bool:
        # Modern Envoy (PR #27909): strict limit, (ejected + 1) / hosts <= max%; with
        # always_eject_one, the first ejection is always allowed (PR #34796).
        ejected = len(self.out)
        if self.config.always_eject_one and ejected == 0:
            return True
        return (ejected + 1) * 100 <= self.config.max_ejection_percent * len(self.names)

    def _tick(self, _: object) -> None:
        config = self.config
        now = self.clock.now
        cap = max(config.max_ejection, config.base_ejection)
        for index, count in enumerate(self.ejections):
            if index in self.out:
                if min(config.base_ejection * count, cap) <= now - self.t_ejected[index]:
                    self.out.discard(index)
                    self.consecutive[index] = 0
                    self.log("outlier_detection", self.names[index], "returned")
                    self.changed(index)
            elif count:
                self.ejections[index] -= 1
        if config.success_rate:
            self._success_rate_ejections()
        self.answered = [0] * len(self.names)
        self.succeeded = [0] * len(self.names)
        self.clock.schedule(config.interval, self._tick)

    def _success_rate_ejections(self) -> None:
        config = self.config
        rates = [
            (index, 100.0 * self.succeeded[index] / answered)
            for index, answered in enumerate(self.answered)
            if answered >= config.success_rate_request_volume and index not in self.out
        ]
        if not rates or len(rates) < config.success_rate_minimum_hosts:
            return
        mean = sum(rate for _, rate in rates) / len(rates)
        stdev = math.sqrt(sum((rate - mean) ** 2 for _, rate in rates) / len(rates))
        threshold = mean - config.success_rate_stdev_factor * stdev
        for index, rate in rates:
            if rate < threshold and self._may_eject():
                self._eject(index)


# The attempt statuses each of NGINX's proxy_next_upstream cases covers.
NGINX_FAILURES = {
    "error": (CONNECT_FAILURE, RESET),
    "timeout": (TIMEOUT,),
    "http_500": (ERROR,),
    "http_502": (BAD_GATEWAY,),
    "http_503": (REJECTED,),
    "http_504": (GATEWAY_TIMEOUT,),
    "http_429": (TOO_MANY_REQUESTS,),
}


class MaxFails(PassiveCheck):
    """NGINX's passive checks (``max_fails`` / ``fail_timeout`` on an upstream server).

    Rule (ngx_http_upstream_round_robin.c, NGINX 1.22-1.26, times in whole seconds as
    ngx_time() keeps them): a failed attempt adds one to the server's ``fails`` and sets
    ``accessed`` and ``checked`` to now; a successful one resets ``fails`` only when the
    server was picked since its last failure at least ``fail_timeout`` later (``accessed <
    checked``). The server is skipped while ``fails >= max_fails`` and ``now - checked <=
    fail_timeout``; a pick at ``now - checked > fail_timeout`` sets ``checked`` to now, so
    after a quiet ``fail_timeout`` a failed server gets one trial request at a time. Which
    outcomes are failures follows ``proxy_next_upstream``: connection errors and timeouts
    always, 500, 502, 503, 504 and 429 answers when ``fails_on`` names them. An upstream of one server is
    never marked (``peers->single``).
    """

    def __init__(
        self, clock: Clock, config: OutlierDetection, names: Sequence[str], changed: Changed, log: Log
    ) -> None:
        super().__init__(clock, config, names, changed, log)
        assert config.max_fails is not None
        self.max_fails = config.max_fails
        self.fail_timeout = math.floor(config.fail_timeout)
        self.failures = {s for case in ("error", "timeout", *config.fails_on) for s in NGINX_FAILURES[case]}
        n = len(self.names)
        self.fails = [0] * n
        self.accessed = [0] * n
        self.checked = [0] * n

    def watch(self, index: int, deliver: Callable[[Attempt], None]) -> Callable[[Attempt], None]:
        """``deliver``, first telling this check of each pick (NGINX updates ``checked`` there)."""

        def picked(attempt: Attempt) -> None:
            now = math.floor(self.clock.now)
            if now - self.checked[index] > self.fail_timeout:
                self.checked[index] = now
                if self.fails[index] >= self.max_fails:
                    self._skip(index, "trial")
            deliver(attempt)

        return picked

    def result(self, index: int, status: int, pool_size: int) -> None:
        """An attempt to server ``index`` ended with ``status``; ``pool_size`` servers share its upstream."""
        if pool_size == 1:
            return
        if status in self.failures:
            now = math.floor(self.clock.now)
            self.fails[index] += 1
            self.accessed[index] = self.checked[index] = now
            if self.fails[index] >= self.max_fails:
                self._skip(index, "marked")
        elif self.accessed[index] < self.checked[index]:
            self.fails[index] = 0
            if index in self.out:
                self._use(index)

    def _skip(self, index: int, event: str) -> None:
        """Skip server ``index`` until ``now - checked > fail_timeout``."""
        self.log("max_fails", self.names[index], event)
        if index not in self.out:
            self.out.add(index)
            self.changed(index)
        self.clock.schedule_at(
            self.checked[index] + self.fail_timeout + 1, self._quiet, (index, self.checked[index])
        )

    def _quiet(self, entry: tuple[int, int]) -> None:
        index, checked = entry
        if checked == self.checked[index] and index in self.out:
            self._use(index)

    def _use(self, index: int) -> None:
        self.out.discard(index)
        self.log("max_fails", self.names[index], "returned")
        self.changed(index)


class CircuitBreakers:
    """The notes' circuit breaker, one per backend: closed, open after ``failure_threshold``
    consecutive failures, half-open once ``timeout`` has passed since the last failure (every
    request is let through as a trial), closed again on a success, open again on a failure."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, clock: Clock, config: CircuitBreaker, names: Sequence[str], log: Log) -> None:
        self.clock = clock
        self.threshold = config.failure_threshold or math.inf
        self.timeout = config.timeout
        self.names = list(names)
        self.log = log
        self.state = [self.CLOSED] * len(self.names)
        self.failures = [0] * len(self.names)
        self.t_failure = [0.0] * len(self.names)

    def allows(self, index: int) -> bool:
        """May a request go to backend ``index`` now?"""
        if self.state[index] != self.OPEN:
            return True
        if self.clock.now - self.t_failure[index] >= self.timeout:
            self._set(index, self.HALF_OPEN)
            return True
        return False

    def result(self, index: int, failed: bool) -> None:
        """Record the outcome of a request to backend ``index``."""
        if failed:
            self.failures[index] += 1
            self.t_failure[index] = self.clock.now
            if self.failures[index] >= self.threshold and self.state[index] != self.OPEN:
                self._set(index, self.OPEN)
        else:
            self.failures[index] = 0
            if self.state[index] != self.CLOSED:
                self._set(index, self.CLOSED)

    def _set(self, index: int, state: str) -> None:
        self.state[index] = state
        self.log("circuit_breaker", self.names[index], state)
