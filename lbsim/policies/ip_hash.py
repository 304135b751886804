"""Hash of the client address, modulo the number of backends (the notes' IPHashBalancer)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request, client_address


class IpHash(Policy):
    """Send a client's requests to backend md5(client address) mod n.

    Tie-break: none needed. Reads: the request's client address; the eligible backends in
    fleet order. When n changes, about (n - 1) / n of the clients move: the weakness that
    consistent hashing fixes. Follows: the notes' IPHashBalancer (HAProxy ``balance
    source`` with the default map-based hash-type behaves the same way).
    """

    name = "ip_hash"
    rule = "md5 of the client address modulo the number of eligible backends"

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = sorted(backends, key=lambda b: b.index)

    def choose(self, request: Request) -> Backend:
        return self._backends[address_hash(request.client) % len(self._backends)]


@functools.lru_cache(maxsize=1 << 20)
def address_hash(client: int) -> int:
    """Return md5 of the client's address as an integer, as the notes' IPHashBalancer does."""
    return int(hashlib.md5(client_address(client).encode()).hexdigest(), 16)
