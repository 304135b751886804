"""Random and weighted random choice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lbsim.policies.base import Backend, Policy, smooth_pick
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


class RandomTwo(WeightedRandom):
    """Of two distinct backends drawn at random by weight, send to the one with fewer
    active requests per unit of weight; the second drawn unless it has more.

    Rule (ngx_http_upstream_get_random2_peer, NGINX 1.22-1.26): draw a backend as
    ``random`` does; draw again until another backend comes up, at most 20 more draws;
    keep the first only when second.active x first.weight > first.active x second.weight,
    so equal loads go to the second. With fewer than two backends, or no second backend
    in 20 draws, the pick falls back to NGINX's smooth weighted round robin
    (ngx_http_upstream_get_round_robin_peer). Reads: Backend.active, Backend.weight.
    Follows: NGINX ``random two least_conn`` (``random two``: least_conn is its only
    criterion in open-source NGINX).
    """

    name = "random_two"
    rule = "of two distinct backends drawn by weight, the less busy per weight (NGINX random two least_conn)"

    # ngx_http_upstream_get_random2_peer: rp->tries > 20 ends the draws.
    SECOND_DRAWS = 20

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        # The fallback's current weights, by server index, as NGINX keeps them per peer.
        self._current: dict[int, float] = {}
        super().reset(backends, rng)

    def _index(self) -> int:
        if not self._picks:
            self._picks = self._draw()
        return self._picks.pop()

    def choose(self, request: Request) -> Backend:
        backends = self._backends
        if len(backends) > 1:
            first = backends[self._index()]
            for _ in range(self.SECOND_DRAWS):
                second = backends[self._index()]
                if second is not first:
                    return first if second.active * first.weight > first.active * second.weight else second
        index = smooth_pick(self._current, ((b.index, b.weight) for b in backends))
        return next(b for b in backends if b.index == index)
