"""HAProxy's ``balance random``: a few random points on its consistent-hash tree, the least
served per weight of the servers they land on."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy, require, whole
from lbsim.workload import Request

_MASK = 0xFFFFFFFF
# A server has this many tree nodes per unit of weight (BE_WEIGHT_SCALE), and node keys are
# spaced by SRV_EWGHT_RANGE = 256 x 16 per server id.
_NODES_PER_WEIGHT = 16
_EWGHT_RANGE = 256 * 16


def full_hash(a: int) -> int:
    """HAProxy's __full_hash (include/haproxy/intops.h): Bob Jenkins' 32-bit integer
    avalanche hash, times 3221225473, all modulo 2^32."""
    a = ((a + 0x7ED55D16) + (a << 12)) & _MASK
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & _MASK
    a = ((a + 0x165667B1) + (a << 5)) & _MASK
    a = ((a + 0xD3A2646C) ^ (a << 9)) & _MASK
    a = ((a + 0xFD7046C5) + (a << 3)) & _MASK
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & _MASK
    return (a * 3221225473) & _MASK


class ChashRandom(Policy):
    """HAProxy ``balance random(draws)``: power of ``draws`` choices over uneven arcs.

    Rule (HAProxy 2.6-2.8, backend.c get_server_rnd, lb_chash.c): each server (id = its
    position + 1) has weight x 16 nodes on a 32-bit tree, node j keyed
    full_hash(id x 4096 + j). A draw takes a random 32-bit point and the nearer of the
    nodes just below and at-or-above it (the one below on equal distance), wrapping around,
    so servers get uneven shares of draws (4 equal servers: 28.9, 18.5, 24.3, 28.3%). Over
    ``draws`` draws, a new server replaces the best so far unless it serves more per weight
    (served x weight_best > served_best x weight), so ties go to the later draw. Reads:
    Backend.active (HAProxy's ``served``), Backend.weight. O(draws x log n).
    """

    name = "chash_random"
    rule = "HAProxy balance random: of `draws` random points on its hash tree, the least served per weight"

    def __init__(self, draws: int = 2) -> None:
        # Each pick makes ``draws`` draws: 1,000 bounds the work per request.
        require(whole(draws, 1, 1000), "chash_random", "draws", "an integer from 1 to 1000", draws)
        self.draws = draws

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._uniform = UniformDraws(rng)
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        nodes = sorted(
            (full_hash(((b.index + 1) * _EWGHT_RANGE + j) & _MASK), k)
            for k, b in enumerate(self._backends)
            for j in range(max(1, round(b.weight * _NODES_PER_WEIGHT)))
        )
        self._keys = [key for key, _ in nodes]
        self._owners = [owner for _, owner in nodes]

    def _nearest(self, h: int) -> Backend:
        """chash_get_server_hash: the nearer of the nodes around ``h``."""
        keys = self._keys
        after = bisect.bisect_left(keys, h)
        if after == len(keys):
            after = 0
        before = after - 1  # -1 wraps to the last node
        below = (h - keys[before]) & _MASK
        above = (keys[after] - h) & _MASK
        return self._backends[self._owners[before] if below <= above else self._owners[after]]

    def choose(self, request: Request) -> Backend:
        uniform = self._uniform.next
        best = self._nearest(int(uniform() * 4294967296.0))
        for _ in range(self.draws - 1):
            other = self._nearest(int(uniform() * 4294967296.0))
            if other is best or other.active * best.weight <= best.active * other.weight:
                best = other
        return best
