"""Consistent hashing: ketama ring hash and Maglev, with optional bounded load.

Both follow Envoy's construction. With ``hash: xxhash64`` they hash as Envoy does (xxHash64,
seed 0, over each server's address, ``<address>_<i>`` for ring points), so a key lands on
the backend Envoy would pick; the default, 64-bit BLAKE2b, builds the same rings and tables
and moves as many keys, but places a key elsewhere.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import zlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import xxhash

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy, number, require, whole
from lbsim.workload import Request, client_address

KEYS = ("client", "session", "path")


@functools.lru_cache(maxsize=1 << 20)
def hash64(text: str, seed: int = 0) -> int:
    """A 64-bit hash of ``text`` (BLAKE2b with ``seed`` as its salt)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8, salt=seed.to_bytes(16, "big"))
    return int.from_bytes(digest.digest(), "big")


@functools.lru_cache(maxsize=1 << 20)
def xxhash64(text: str, seed: int = 0) -> int:
    """Envoy's HashUtil::xxHash64: XXH64 of the UTF-8 bytes of ``text`` with ``seed``."""
    return xxhash.xxh64_intdigest(text.encode(), seed)


def crc32(text: str, seed: int = 0) -> int:
    """NGINX's ngx_crc32_long: the standard CRC-32 of the UTF-8 bytes of ``text`` (32 bits;
    ``seed`` is not used)."""
    return zlib.crc32(text.encode())


# The hash functions a hash policy can use, by name.
HASHES: dict[str, Callable[..., int]] = {"blake2b": hash64, "xxhash64": xxhash64, "crc32": crc32}
# How ring_hash builds its ring: lbsim's fixed ketama ring, Envoy's, or NGINX's.
RINGS = ("ketama", "envoy", "nginx")

# Envoy's maximum_ring_size default (8M entries).
MAX_RING_SIZE = 8 * 1024 * 1024
# Envoy's largest Maglev table (maglev.proto: table_size is a prime up to 5000011).
MAX_TABLE_SIZE = 5_000_011


def envoy_probe_order(h: int, n: int) -> Iterator[int]:
    """Host positions 0..n-1 in the order Envoy's bounded-load hashing tries them for hash
    ``h``: a Fisher-Yates shuffle drawing from C++'s std::mt19937 seeded with ``h`` (mod
    2^32), each draw x in [0, k) as output // (2^32 // k), redrawn while >= k
    (thread_aware_lb_impl.cc). numpy's legacy seeding is std::mt19937's init_genrand."""
    state = np.random.RandomState(h & 0xFFFFFFFF)
    draws: list[int] = []
    order = list(range(n))
    for i in range(n):
        k = n - i
        j = k
        while j >= k:
            if not draws:
                draws = state.randint(0, 1 << 32, size=16, dtype=np.uint32).tolist()[::-1]
            j = draws.pop() // ((1 << 32) // k)
        order[i], order[i + j] = order[i + j], order[i]
        yield order[i]


def request_key(request: Request, key: str) -> str | None:
    """The text a hash policy hashes for ``request``: client address, session, path or a header."""
    if key == "client":
        return client_address(request.client)
    if key == "session":
        return f"session-{request.session}"
    if key == "path":
        return request.path
    return request.headers.get(key.removeprefix("header:"))


class HashPolicy(Policy):
    """Common part of the consistent-hash policies: the key, bounded load, membership."""

    def __init__(
        self, key: str = "client", balance_factor: float | None = None, hash: str = "blake2b"
    ) -> None:
        require(hash in HASHES, self.name, "hash", f"one of {', '.join(HASHES)}", hash)
        require(
            key in KEYS or (key.startswith("header:") and len(key) > 7),
            self.name,
            "key",
            "'client', 'session', 'path' or 'header:<name>'",
            key,
        )
        require(
            balance_factor is None
            or (number(balance_factor, 1) and abs(balance_factor * 100 - round(balance_factor * 100)) < 1e-9),
            self.name,
            "balance_factor",
            "a number >= 1 in whole percent, as Envoy's hash_balance_factor (1.25: at most 125% of the mean)",
            balance_factor,
        )
        self.key = key
        self.balance_factor = balance_factor
        self.hash = hash

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._uniform = UniformDraws(rng)
        self._hash = HASHES[self.hash]
        self._total_active = 0
        # Envoy's hash_balance_factor: a whole percentage.
        self._percent = round(self.balance_factor * 100) if self.balance_factor is not None else 0
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        # Envoy probes overloaded hosts' alternatives in host-set (configuration) order.
        self._hosts = list(backends)
        self._backends = sorted(backends, key=lambda b: b.address)
        self._total_weight = sum(b.weight for b in self._backends)
        self._total_active = sum(b.active for b in self._backends)
        self.build()

    def build(self) -> None:
        """Build the lookup structure over the backends (``_backends``, in address order)."""
        raise NotImplementedError

    def lookup(self, h: int) -> int:
        """The position (in address order) of the backend for hash ``h``."""
        raise NotImplementedError

    def choose(self, request: Request) -> Backend:
        text = request_key(request, self.key)
        # Envoy: with no value to hash, a random hash is used.
        h = self._hash(text) if text is not None else int(self._uniform.next() * 2.0**64)
        backend = self._backends[self.lookup(h)]
        if self.balance_factor is not None and self._overload(backend) > 1.0:
            backend = self._least_overloaded(h, backend)
        return backend

    def _overload(self, backend: Backend) -> float:
        """Envoy's hostOverloadFactor: the backend's active requests per slot it is allowed,
        with ceil((all active + 1) x factor%) slots shared by weight (at least 1 each)."""
        total_slots = ((self._total_active + 1) * self._percent + 99) // 100
        return backend.active / max(math.ceil(total_slots * (backend.weight / self._total_weight)), 1)

    def _least_overloaded(self, h: int, home: Backend) -> Backend:
        """Envoy BoundedLoadHashingLoadBalancer::chooseHost once ``home`` is overloaded: the
        other backends in :func:`envoy_probe_order`; the first with overload <= 1 wins, else
        the least overloaded (``home`` on a tie). O(n), only under overload."""
        best, least = home, self._overload(home)
        for i in envoy_probe_order(h, len(self._hosts)):
            other = self._hosts[i]
            if other is home:
                continue
            overload = self._overload(other)
            if overload <= 1.0:
                return other
            if overload < least:
                best, least = other, overload
        return best

    def on_dispatch(self, backend: Backend, request: Request) -> None:
        self._total_active += 1

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        self._total_active -= 1


class RingHash(HashPolicy):
    """Ketama consistent hashing: each backend owns points on a ring in proportion to its weight.

    Rule (ketama, as NGINX ``hash ... consistent``): backend b gets weight_b x k points,
    hashed as "<address>_<i>", where k points per unit of weight is fixed when the run
    starts so that the ring has at least ``min_ring_size`` points; a request goes to the
    first point at or after its hash, wrapping around. Because k stays fixed, a backend that
    leaves takes only its own arcs with it (about 1/n of keys move) and one that joins
    takes about 1/(n + 1). With ``ring: envoy`` the ring is rebuilt on every change as Envoy
    does (:func:`envoy_ring`), which moves more keys on small rings (envoyproxy/envoy#22558);
    with ``hash: xxhash64`` too it is Envoy's RING_HASH point for point (its test vectors,
    ring_hash_lb_test.cc ``Basic``). With ``ring: nginx`` and ``hash: crc32`` it is NGINX's
    ``hash ... consistent`` (:func:`nginx_ring`). Tie-break: none. Reads: the request's
    key, Backend.address, Backend.weight (Backend.active with ``balance_factor``). Follows:
    ketama, NGINX hash consistent; Envoy RING_HASH (minimum ring size 1024).
    """

    name = "ring_hash"
    rule = "hash ring (ketama, Envoy's or NGINX's): first point at or after the key's hash, points by weight"

    def __init__(
        self,
        key: str = "client",
        balance_factor: float | None = None,
        hash: str = "blake2b",
        min_ring_size: int = 1024,
        ring: str = "ketama",
    ) -> None:
        super().__init__(key, balance_factor, hash)
        require(
            whole(min_ring_size, 1, MAX_RING_SIZE),
            "ring_hash",
            "min_ring_size",
            f"an integer from 1 to {MAX_RING_SIZE} (Envoy's maximum_ring_size default)",
            min_ring_size,
        )
        require(ring in RINGS, "ring_hash", "ring", f"one of {', '.join(RINGS)}", ring)
        require(
            (ring == "nginx") == (hash == "crc32"),
            "ring_hash",
            "hash",
            f"crc32 exactly when ring is nginx (NGINX's ring and keys are CRC-32; ring is {ring!r})",
            hash,
        )
        self.min_ring_size = min_ring_size
        self.ring = ring

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._per_weight = math.ceil(self.min_ring_size / sum(b.weight for b in backends))
        super().reset(backends, rng)

    def build(self) -> None:
        # Whole points per weight unit; slow start's fractional weights round.
        hosts = tuple((b.address, max(1, round(b.weight))) for b in self._backends)
        if self.ring == "envoy":
            position = {b.index: k for k, b in enumerate(self._backends)}
            in_order = tuple((b.address, b.weight, position[b.index]) for b in self._hosts)
            self._points, self._owners = envoy_ring(in_order, self.min_ring_size, self._hash)
        elif self.ring == "nginx":
            self._points, self._owners = nginx_ring(hosts)
        else:
            self._points, self._owners = ketama_ring(hosts, self._per_weight, self._hash)

    def lookup(self, h: int) -> int:
        i = bisect.bisect_left(self._points, h)
        return self._owners[i if i < len(self._points) else 0]


@functools.lru_cache(maxsize=64)
def ketama_ring(
    hosts: tuple[tuple[str, int], ...], per_weight: int, hash_fn: Callable[[str], int] = hash64
) -> tuple[list[int], list[int]]:
    """The sorted ring points and, for each, the position of its host in ``hosts``:
    weight x ``per_weight`` points per host, hashed as "<address>_<i>"."""
    ring = sorted(
        (hash_fn(f"{address}_{i}"), position)
        for position, (address, weight) in enumerate(hosts)
        for i in range(weight * per_weight)
    )
    return [point for point, _ in ring], [owner for _, owner in ring]


@functools.lru_cache(maxsize=64)
def envoy_ring(
    hosts: tuple[tuple[str, float, int], ...], min_ring_size: int, hash_fn: Callable[[str], int]
) -> tuple[list[int], list[int]]:
    """Envoy's ring (ring_hash_lb.cc RingHashLoadBalancer::Ring), rebuilt for the current
    hosts: ``hosts`` are (address, weight, position) in host-set order. With normalized
    weights w (summing to 1), scale = min(ceil(min w x min_ring_size) / min w, 8M); each host
    in turn adds points "<address>_<i>" while a running count is below the running sum of
    scale x w. Returns the sorted points and each point's host position."""
    total = sum(weight for _, weight, _ in hosts)
    smallest = min(weight for _, weight, _ in hosts) / total
    scale = min(math.ceil(smallest * min_ring_size) / smallest, MAX_RING_SIZE)
    ring: list[tuple[int, int]] = []
    current = target = 0.0
    for address, weight, position in hosts:
        target += scale * weight / total
        i = 0
        while current < target:
            ring.append((hash_fn(f"{address}_{i}"), position))
            i += 1
            current += 1
    ring.sort(key=lambda point: point[0])
    return [point for point, _ in ring], [owner for _, owner in ring]


@functools.lru_cache(maxsize=64)
def nginx_ring(hosts: tuple[tuple[str, int], ...]) -> tuple[list[int], list[int]]:
    """NGINX's ``hash ... consistent`` points (ngx_http_upstream_hash_module.c,
    ngx_http_upstream_init_chash, NGINX 1.22-1.26): a server "host:port" (split at the last
    colon followed by digits only) gets 160 x weight points; point j is the CRC-32 of host,
    a zero byte, port and point j - 1's value as 4 little-endian bytes (0 for the first).
    Points are sorted, equal values kept once. A key goes to the first point at or after
    its CRC-32, wrapping around. NGINX keeps the ring of every configured server and walks
    past unavailable ones (up to 20 points); a ring of the available servers answers the
    same. Returns the points and each point's host position in ``hosts``."""
    ring: list[tuple[int, int]] = []
    for position, (address, weight) in enumerate(hosts):
        host, colon, port = address.rpartition(":")
        if not (colon and port.isdigit()):
            host, port = address, ""
        base = host.encode() + b"\0" + port.encode()
        previous = 0
        for _ in range(160 * weight):
            previous = zlib.crc32(base + previous.to_bytes(4, "little"))
            ring.append((previous, position))
    ring.sort(key=lambda point: point[0])
    kept = [point for k, point in enumerate(ring) if k == 0 or point[0] != ring[k - 1][0]]
    return [point for point, _ in kept], [owner for _, owner in kept]


class Maglev(HashPolicy):
    """Maglev consistent hashing: a lookup table of prime size filled by per-backend permutations.

    Rule (Envoy maglev_lb.cc, Eisenbud et al. NSDI'16): backends sorted by address; backend b
    prefers slots offset_b + j x skip_b (mod M) with offset = h1(b) mod M and
    skip = h2(b) mod (M - 1) + 1; in round r a backend takes its next free preferred slot
    if r x weight >= its target, then its target grows by the largest weight, so a backend
    of a third of the largest weight places once every three rounds; every backend places
    in round 1. Lookup: table[hash mod M], O(1). Tie-break: none. Reads: the request's key,
    Backend.weight (Backend.active with ``balance_factor``). Follows: Envoy MAGLEV
    (table_size 65537).
    """

    name = "maglev"
    rule = "Maglev table lookup: table[hash mod M] (Envoy maglev)"

    def __init__(
        self,
        key: str = "client",
        balance_factor: float | None = None,
        hash: str = "blake2b",
        table_size: int = 65537,
    ) -> None:
        super().__init__(key, balance_factor, hash)
        require(
            whole(table_size, 2, MAX_TABLE_SIZE) and _is_prime(table_size),
            "maglev",
            "table_size",
            f"a prime number up to {MAX_TABLE_SIZE} (Envoy's largest)",
            table_size,
        )
        self.table_size = table_size

    def build(self) -> None:
        hosts = tuple((b.address, max(1, round(b.weight))) for b in self._backends)
        self._table = maglev_table(hosts, self.table_size, self._hash)

    def lookup(self, h: int) -> int:
        return self._table[h % self.table_size]


@functools.lru_cache(maxsize=64)
def maglev_table(
    hosts: tuple[tuple[str, int], ...], size: int, hash_fn: Callable[..., int] = hash64
) -> list[int]:
    """The Maglev lookup table: for each slot, the position of its host in ``hosts``
    ((address, weight) in address order), as Envoy builds it."""
    offsets = [hash_fn(address) % size for address, _ in hosts]
    skips = [hash_fn(address, seed=1) % (size - 1) + 1 for address, _ in hosts]
    weights = [weight for _, weight in hosts]
    largest = max(weights)
    targets = [0.0] * len(hosts)
    nexts = [0] * len(hosts)
    table = [-1] * size
    filled = 0
    iteration = 1
    while filled < size:
        for i in range(len(hosts)):
            if iteration * weights[i] < targets[i]:
                continue
            targets[i] += largest
            slot = (offsets[i] + nexts[i] * skips[i]) % size
            while table[slot] >= 0:
                nexts[i] += 1
                slot = (offsets[i] + nexts[i] * skips[i]) % size
            table[slot] = i
            nexts[i] += 1
            filled += 1
            if filled == size:
                break
        iteration += 1
    return table


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))
