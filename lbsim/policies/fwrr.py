"""HAProxy's roundrobin: the fast weighted round robin of lb_fwrr.c."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request

# include/haproxy/backend-t.h: weights are kept 16 times finer than the user's (BE_WEIGHT_SCALE).
WEIGHT_SCALE = 16
USER_WEIGHT_RANGE = 256
EFFECTIVE_WEIGHT_MAX = USER_WEIGHT_RANGE * WEIGHT_SCALE

# A tree entry: (key, insertion number, server, the server's version when it was queued).
# HAProxy's trees are ebtrees, which keep equal keys in insertion order: the number does.
_Entry = tuple[int, int, "_Server", int]


class _Server:
    """One server's place in the rotation: lb_fwrr.c's npos, lpos and rweight."""

    __slots__ = ("backend", "eweight", "lpos", "npos", "rweight", "tree", "up", "version")

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.eweight = 0
        self.npos = self.lpos = self.rweight = 0
        self.tree: list[_Entry] | None = None
        self.up = False
        # Bumped when the server leaves its tree, so its old entry is skipped.
        self.version = 0


def effective_weight(backend: Backend) -> int:
    """HAProxy's eweight: the user weight times 16 (times the slow-start ramp, w/16, which
    makes weight x 16 whole; anything else is rounded), at least 1."""
    return max(1, round(backend.weight * WEIGHT_SCALE))


class FastWeightedRoundRobin(Policy):
    """HAProxy ``balance roundrobin``: each server's next position advances by the total
    weight / its weight; the server with the earliest position goes next, heavy servers first.

    Rule (src/lb_fwrr.c, HAProxy 2.6-2.8, the active group): weights are scaled by 16; a pick
    takes the first server of the "current" tree (keyed by 256 x next position, then by
    weight, heaviest first) unless its position is past the current one, in which case a
    server not yet placed in this window (the "init" tree, heaviest first) goes first; the
    picked server's next position advances by next_weight / eweight, the remainder carried in
    rweight; a server whose next position falls outside the window waits in the "next" tree,
    and the trees switch when the window is used up. Servers that go down, come up or change
    weight (slow start) move as fwrr_set_server_status_down/up and fwrr_update_server_weight
    move them. Weights 5, 1, 1 give a a a b a a c (real HAProxy 2.6.12 does; NGINX's smooth
    rule gives a a b a c a a). Reads: Backend.weight. Follows: HAProxy ``balance roundrobin``
    (without maxconn). O(log n) per pick.
    """

    name = "fast_weighted_round_robin"
    rule = "HAProxy roundrobin (lb_fwrr.c): earliest next position, heavy servers first"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._servers: dict[int, _Server] = {}
        self._current: list[_Entry] = []
        self._init: list[_Entry] = []
        self._next: list[_Entry] = []
        self._sequence = 0
        self._current_pos = self._current_weight = self._next_weight = 0
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        if not self._servers:
            # fwrr_init_server_groups: every server in the init tree, the window the total weight.
            for backend in backends:
                server = self._servers[backend.index] = _Server(backend)
                server.eweight, server.up = effective_weight(backend), True
                self._queue_by_weight(self._init, server)
            self._current_pos = self._current_weight = self._next_weight = sum(
                s.eweight for s in self._servers.values()
            )
            return
        present = {b.index for b in backends}
        for server in self._servers.values():
            if server.up and server.backend.index not in present:
                self._down(server)
        for backend in backends:
            server = self._servers.setdefault(backend.index, _Server(backend))
            server.backend = backend
            eweight = effective_weight(backend)
            if not server.up:
                self._up(server, eweight)
            elif eweight != server.eweight:
                self._reweight(server, eweight)

    def _down(self, server: _Server) -> None:
        """fwrr_set_server_status_down."""
        self._next_weight -= server.eweight
        server.version += 1
        server.tree, server.up = None, False

    def _up(self, server: _Server, eweight: int) -> None:
        """fwrr_set_server_status_up."""
        server.eweight, server.up = eweight, True
        self._next_weight += eweight
        server.npos = (
            self._current_pos + (self._next_weight + self._current_weight - self._current_pos) // eweight
        )
        self._queue(server)

    def _reweight(self, server: _Server, eweight: int) -> None:
        """fwrr_update_server_weight, for a server that stays up."""
        self._next_weight += eweight - server.eweight
        server.eweight = eweight
        server.version += 1
        if server.tree is self._init:
            self._queue_by_weight(self._init, server)
            return
        if server.tree is self._next:
            server.npos += self._current_weight  # fwrr_get_srv_next
        previous = server.npos
        step = self._next_weight // eweight
        server.npos = min(server.lpos + step, previous)
        server.rweight = 0
        if server.npos < self._current_pos + 2:
            server.npos = self._current_pos + step
        self._queue(server)

    def _queue_by_weight(self, tree: list[_Entry], server: _Server) -> None:
        """fwrr_queue_by_weight: heaviest first."""
        self._push(tree, EFFECTIVE_WEIGHT_MAX - server.eweight, server)

    def _queue(self, server: _Server) -> None:
        """fwrr_queue_srv: into the current tree by next position, or the next tree when the
        position falls outside this window and the next."""
        if server.npos >= 2 * self._current_weight or server.npos >= self._current_weight + self._next_weight:
            server.npos -= self._current_weight
            self._queue_by_weight(self._next, server)
            return
        key = (
            USER_WEIGHT_RANGE * server.npos
            + (EFFECTIVE_WEIGHT_MAX + server.rweight - server.eweight) // WEIGHT_SCALE
        )
        self._push(self._current, key, server)

    def _push(self, tree: list[_Entry], key: int, server: _Server) -> None:
        self._sequence += 1
        heapq.heappush(tree, (key, self._sequence, server, server.version))
        server.tree = tree

    @staticmethod
    def _first(tree: list[_Entry]) -> _Server | None:
        """The first server of ``tree`` (eb32_first), dropping entries of servers that left it."""
        while tree and tree[0][3] != tree[0][2].version:
            heapq.heappop(tree)
        return tree[0][2] if tree else None

    def _take(self) -> _Server | None:
        """fwrr_get_server_from_group, with the server taken out of its tree."""
        first = self._first(self._current)
        if first is not None and first.npos <= self._current_pos:
            heapq.heappop(self._current)
            return first
        unplaced = self._first(self._init)
        if unplaced is not None:
            heapq.heappop(self._init)
            unplaced.npos = unplaced.rweight = 0  # fwrr_get_srv_init
            return unplaced
        if first is not None:
            heapq.heappop(self._current)
        return first

    def choose(self, request: Request) -> Backend:
        """fwrr_get_next_server (no maxconn, nothing to avoid)."""
        if not self._current_weight:
            self._current_pos = self._current_weight = self._next_weight
        server = self._take()
        if server is None:
            # fwrr_switch_trees: the window is used up; the next tree becomes the init tree.
            self._init, self._next = self._next, self._init
            self._current_pos = self._current_weight = self._next_weight
            server = self._take()
            assert server is not None, "a pool with an eligible backend has a server in a tree"
        # fwrr_update_position
        if not server.npos:
            server.npos = self._current_pos
        server.lpos = server.npos
        server.npos += self._next_weight // server.eweight
        server.rweight += self._next_weight % server.eweight
        if server.rweight >= server.eweight:
            server.rweight -= server.eweight
            server.npos += 1
        self._current_pos += 1
        self._queue(server)
        return server.backend
