"""Power of d choices: the least loaded of a few randomly sampled backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy, number, require, whole
from lbsim.policies.edf import EdfSchedule, random_start
from lbsim.workload import Request


class PowerOfChoices(Policy):
    """Sample ``choices`` backends at random and send to the one with the fewest active requests.

    With ``replacement`` (Envoy LEAST_REQUEST, gRPC least_request) the samples are drawn
    independently, so one backend can be drawn twice and with 2 backends the busier one
    wins 25% of the time; the first sample is kept unless a later one has strictly fewer
    active requests. Without replacement (Finagle P2C, Linkerd/tower) the samples are
    distinct and in random order; ties go to the first (tower's ``aload <= bload``,
    tower/src/balance/p2c/service.rs), so to either with equal chance. When weights differ,
    Envoy's weighted rule applies: an earliest-deadline-first schedule over
    weight / (active + 1)^bias (least_request_lb.cc hostWeight), the weight sampled when the
    schedule is built and when a backend is put back (right after it is picked), started
    after a random number of picks in [0, sum of weights) to desynchronise instances. Reads:
    Backend.active, Backend.weight. Follows: Envoy least_request (choice_count 2, active_request_bias 1.0).
    """

    name = "p2c"
    rule = "least active of `choices` random backends; EDF on weight/(active+1)^bias when weights differ"

    def __init__(self, choices: int = 2, replacement: bool = True, bias: float = 1.0) -> None:
        # Each pick draws choices - 1 more backends: 1,000 bounds the work per request.
        require(whole(choices, 2, 1000), "p2c", "choices", "an integer from 2 to 1000", choices)
        require(isinstance(replacement, bool), "p2c", "replacement", "true or false", replacement)
        require(number(bias, 0), "p2c", "bias", "a number >= 0", bias)
        self.choices = choices
        self.replacement = replacement
        self.bias = bias

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._uniform = UniformDraws(rng)
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        self._schedule = (
            EdfSchedule(self._backends, self._host_weight, random_start(self._backends, self._uniform.next))
            if len({b.weight for b in self._backends}) > 1
            else None
        )

    def _host_weight(self, backend: Backend) -> float:
        """Envoy's LeastRequestLoadBalancer::hostWeight: weight / (active + 1)^bias, used both
        when the schedule is rebuilt and when a picked host is put back."""
        return backend.weight / (backend.active + 1) ** self.bias

    def choose(self, request: Request) -> Backend:
        if self._schedule is not None:
            return self._schedule.pick()
        backends = self._backends
        n = len(backends)
        uniform = self._uniform.next
        if self.replacement or n < self.choices:
            best = backends[int(uniform() * n)]
            for _ in range(self.choices - 1):
                other = backends[int(uniform() * n)]
                if other.active < best.active:
                    best = other
            return best
        return backends[_least_active(backends, distinct_sample(n, self.choices, uniform))]


def distinct_sample(n: int, k: int, uniform: Callable[[], float]) -> list[int]:
    """``k`` distinct indices in [0, n), in random order: Floyd's algorithm as rand's
    ``seq::index::sample_floyd`` runs it for tower's P2C (rand src/seq/index.rs): for j in
    n-k..n draw t in [0, j]; if t was drawn already, j takes its place; t goes last. The
    first index is therefore any of the k with equal chance, so a tie can go to either."""
    chosen: list[int] = []
    for j in range(n - k, n):
        t = int(uniform() * (j + 1))
        if t in chosen:
            chosen[chosen.index(t)] = j
        chosen.append(t)
    return chosen


def _least_active(backends: Sequence[Backend], indices: list[int]) -> int:
    best = indices[0]
    for i in indices[1:]:
        if backends[i].active < backends[best].active:
            best = i
    return best
