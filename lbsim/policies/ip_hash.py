"""Hash of the client address: the notes' modulo rule, or NGINX's ``ip_hash``."""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
from collections.abc import Sequence

import numpy as np

from lbsim.policies.base import Backend, Policy, require, smooth_pick
from lbsim.workload import Request, client_address

STYLES = ("notes", "nginx")


class IpHash(Policy):
    """Send a client's requests to the backend its address hashes to.

    ``style: notes`` (the notes' IPHashBalancer; HAProxy ``balance source`` with the default
    map-based hash-type behaves the same way): md5(client address) mod n over the eligible
    backends in fleet order. When n changes, about (n - 1) / n of the clients move: the
    weakness consistent hashing fixes.

    ``style: nginx`` (ngx_http_upstream_ip_hash_module.c, NGINX 1.22-1.26): from 89, the
    hash takes each of the first three octets of the IPv4 address, hash = (hash x 113 +
    octet) % 6271; hash % (total weight) walks the servers in configuration order by weight.
    If that server is unavailable, the hash takes the three octets again and the walk
    repeats, up to 20 times, then round robin decides. A whole /24 goes to one server (lbsim
    numbers clients 10.a.b.c in order, so clients 0-255 share one). The servers walked are
    every backend this policy has seen, in fleet order (NGINX's configured list).

    Tie-break: none needed. Reads: the request's client address, Backend.weight (nginx).
    """

    name = "ip_hash"
    rule = "the client address's hash picks the backend: md5 mod n, or NGINX's /24 hash over weights"

    def __init__(self, style: str = "notes") -> None:
        require(style in STYLES, "ip_hash", "style", f"one of {', '.join(STYLES)}", style)
        self.style = style

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._known: dict[int, Backend] = {}
        self._current: dict[int, float] = {}
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = sorted(backends, key=lambda b: b.index)
        self._eligible = {b.index for b in backends}
        self._known.update({b.index: b for b in backends})
        self._configured = [self._known[i] for i in sorted(self._known)]
        self._bounds = list(itertools.accumulate(b.weight for b in self._configured))

    def choose(self, request: Request) -> Backend:
        if self.style == "notes":
            return self._backends[address_hash(request.client) % len(self._backends)]
        octets = [int(part) for part in client_address(request.client).split(".")[:3]]
        h = 89
        for _ in range(20):
            for octet in octets:
                h = (h * 113 + octet) % 6271
            w = h % round(self._bounds[-1])
            backend = self._configured[bisect.bisect_right(self._bounds, w)]
            if backend.index in self._eligible:
                return backend
        # ngx_http_upstream_get_round_robin_peer after 20 tries.
        index = smooth_pick(self._current, ((b.index, b.weight) for b in self._backends))
        return next(b for b in self._backends if b.index == index)


@functools.lru_cache(maxsize=1 << 20)
def address_hash(client: int) -> int:
    """Return md5 of the client's address as an integer, as the notes' IPHashBalancer does."""
    return int(hashlib.md5(client_address(client).encode()).hexdigest(), 16)
