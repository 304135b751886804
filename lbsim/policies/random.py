"""Random and weighted random choice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request

_BLOCK = 4096


class Random(Policy):
    """Send each request to a backend drawn uniformly at random, ignoring weights.

    Tie-break: none needed. Reads: nothing. Draws are made in blocks from the policy stream.
    Follows: the notes' RandomBalancer; kube-proxy iptables mode (uniform per connection).
    """

    name = "random"
    rule = "a backend drawn uniformly at random"

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        self._picks: list[int] = []

    def _draw(self) -> list[int]:
        return self.rng.integers(0, len(self._backends), _BLOCK).tolist()

    def choose(self, request: Request) -> Backend:
        if not self._picks:
            self._picks = self._draw()
        return self._backends[self._picks.pop()]


class WeightedRandom(Random):
    """Send each request to a backend drawn at random with probability proportional to weight.

    Rule (ngx_http_upstream_random_module): x uniform in [0, total weight), then a binary
    search of the cumulative weight ranges. Tie-break: none needed. Reads: Backend.weight.
    Follows: NGINX ``random`` (without ``two``).
    """

    name = "weighted_random"
    rule = "a backend drawn at random in proportion to its weight (NGINX random)"

    def _draw(self) -> list[int]:
        upper = np.cumsum([b.weight for b in self._backends], dtype=float)
        x = self.rng.random(_BLOCK) * upper[-1]
        return np.minimum(np.searchsorted(upper, x, side="right"), len(upper) - 1).tolist()
