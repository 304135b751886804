"""Clients and the requests they send: arrival processes, sizes and client addresses.

Open-loop arrivals (Poisson, deterministic, MMPP bursts, diurnal, trace replay) do not
depend on the system, so they are drawn ahead in numpy blocks; every policy therefore sees
the same arrival times, sizes and clients for a given seed. Closed-loop users (think,
send, wait) are driven by the engine, which calls back when a request ends.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lbsim.distributions import Distribution
from lbsim.errors import ConfigError, shown
from lbsim.input_files import read_input

if TYPE_CHECKING:
    from lbsim.engine.messages import Attempt, Probe


class Now(Protocol):
    """Anything that tells the current simulated time (the engine's clock)."""

    now: float


BLOCK = 65_536


NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Request:
    """A client's request: what it asks for, what a balancer can route or hash on, its outcome.

    Policies see it read-only: ``client`` (a number; its address is :func:`client_address`),
    ``session``, ``path``, ``headers`` (the client's, shared), ``size`` and ``now``, the
    current simulated time. The engine writes its outcome: ``t_start`` (when a server started
    serving it, NaN if none did), ``t_done`` (-1 until it ends) and, with regions, the
    ``region`` the client's DNS answer named. A request sent by an upper balancer tier to the
    tier below has the upper tier's attempt as ``parent``. Requests are transient: the engine
    records their outcome in columns and drops them.
    """

    __slots__ = (
        "client", "clock", "headers", "index", "parent", "path", "region", "server", "session", "size",
        "t_arrival", "t_done", "t_start",
    )  # fmt: skip

    def __init__(
        self, index: int, t_arrival: float, size: float, client: int, clock: Now | None = None
    ) -> None:
        """``clock`` (anything with a ``now``) gives :attr:`now`; without one, now is ``t_arrival``."""
        self.index = index
        self.t_arrival = t_arrival
        self.size = size
        self.client = client
        self.clock = clock
        self.session = client
        self.path = "/"
        self.headers = NO_HEADERS
        self.t_start = math.nan
        self.t_done = -1.0
        self.region = -1
        self.parent: Attempt | Probe | None = None
        # The backend of its latest attempt (-1 for none): where a client timeout leaves it.
        self.server = -1

    @property
    def now(self) -> float:
        """The current simulated time, in seconds."""
        return self.t_arrival if self.clock is None else float(self.clock.now)

    def __repr__(self) -> str:
        return (
            f"Request(index={self.index}, t_arrival={self.t_arrival:.6g}, size={self.size:.6g}, "
            f"client={self.client})"
        )


def client_address(client: int) -> str:
    """Return the IPv4 address of client number ``client`` (10.0.0.0/8, in order)."""
    return f"10.{(client >> 16) & 255}.{(client >> 8) & 255}.{client & 255}"


@dataclass(frozen=True, slots=True)
class Clients:
    """``count`` distinct client addresses, picked uniformly or Zipf-skewed with exponent ``zipf``."""

    count: int = 1000
    zipf: float = 0.0

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Return ``n`` client numbers in [0, count)."""
        if self.zipf == 0:
            return rng.integers(0, self.count, n)
        with np.errstate(over="ignore"):
            # k^zipf overflows to inf for a large exponent: its weight is 0, the limit.
            weights = 1.0 / np.arange(1, self.count + 1) ** self.zipf
        cumulative = np.cumsum(weights / weights.sum())
        return np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), self.count - 1)


def _pick(shares: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    """Indices into ``shares`` for uniform numbers ``u``; len(shares) where u falls past their sum."""
    return np.searchsorted(np.cumsum(shares), u, side="right")


def stable_uniform(text: str) -> float:
    """A number in [0, 1) that depends only on ``text`` (BLAKE2b), the same in every run."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2.0**64


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What requests carry beyond their size: sessions, paths and headers.

    Attributes:
        sessions: sessions per client; a request belongs to one of its client's sessions,
            drawn uniformly (session number = client * sessions + k).
        paths: (path, share) pairs; each request draws its path by share.
        headers: (name, ((value, share), ...)) pairs. Headers belong to clients: a client
            has a value with the given share of clients (a stable hash of the client
            decides which), or no such header when the shares sum to less than 1.
    """

    sessions: int = 1
    paths: tuple[tuple[str, float], ...] = ()
    headers: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    _by_client: dict[int, Mapping[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def session_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Session offsets (0 .. sessions - 1) for ``n`` requests."""
        return rng.integers(0, self.sessions, n)

    def path_draws(self, n: int, rng: np.random.Generator) -> list[str]:
        """Paths for ``n`` requests."""
        names = [path for path, _ in self.paths]
        return [names[i] for i in _pick(tuple(share for _, share in self.paths), rng.random(n))]

    def headers_of(self, client: int) -> Mapping[str, str]:
        """The headers client number ``client`` sends with every request."""
        found = self._by_client.get(client)
        if found is None:
            values = {}
            for name, choices in self.headers:
                u = np.array([stable_uniform(f"{name}:{client}")])
                i = int(_pick(tuple(share for _, share in choices), u)[0])
                if i < len(choices):
                    values[name] = choices[i][0]
            found = self._by_client[client] = MappingProxyType(values)
        return found


class OpenArrivals:
    """An arrival process that does not depend on the system: times drawn ahead, in blocks."""

    def times(self, rng: np.random.Generator, horizon: float) -> Iterator[np.ndarray]:
        """Yield increasing blocks of arrival instants in [0, horizon)."""
        raise NotImplementedError

    @property
    def mean_rate(self) -> float:
        """The long-run mean arrival rate, per second."""
        raise NotImplementedError

    def sizes(self) -> Iterator[np.ndarray] | None:
        """Blocks of sizes that come with the arrivals (a trace), or None to draw from ``size``."""
        return None


@dataclass(frozen=True, slots=True)
class PoissonArrivals(OpenArrivals):
    """Poisson arrivals: independent exponential gaps with mean 1 / rate."""

    rate: float

    @property
    def mean_rate(self) -> float:
        return self.rate

    def times(self, rng: np.random.Generator, horizon: float) -> Iterator[np.ndarray]:
        t = 0.0
        while t < horizon:
            block = t + np.cumsum(rng.exponential(1 / self.rate, BLOCK))
            t = float(block[-1])
            yield block[block < horizon]


@dataclass(frozen=True, slots=True)
class DeterministicArrivals(OpenArrivals):
    """One arrival every 1 / rate seconds, the first at time 0."""

    rate: float

    @property
    def mean_rate(self) -> float:
        return self.rate

    def times(self, rng: np.random.Generator, horizon: float) -> Iterator[np.ndarray]:
        n = math.ceil(horizon * self.rate - 1e-9)
        for start in range(0, n, BLOCK):
            yield np.arange(start, min(start + BLOCK, n)) / self.rate


@dataclass(frozen=True, slots=True)
class MarkovModulatedArrivals(OpenArrivals):
    """Bursty MMPP: Poisson at ``rates[i]`` while in state i; states follow in a cycle.

    The time spent in state i is exponential with mean ``stays[i]``; the run starts in state 0.
    """

    rates: tuple[float, ...]
    stays: tuple[float, ...]

    @property
    def mean_rate(self) -> float:
        return sum(r * s for r, s in zip(self.rates, self.stays, strict=True)) / sum(self.stays)

    def times(self, rng: np.random.Generator, horizon: float) -> Iterator[np.ndarray]:
        t, state = 0.0, 0
        pending: list[np.ndarray] = []
        n_pending = 0
        while t < horizon:
            t_end = min(t + rng.exponential(self.stays[state]), horizon)
            rate = self.rates[state]
            while rate > 0:
                gaps = rng.exponential(1 / rate, max(16, math.ceil((t_end - t) * rate * 1.2)))
                block = t + np.cumsum(gaps)
                inside = block[block < t_end]
                pending.append(inside)
                n_pending += inside.size
                if inside.size < block.size:
                    break
                t = float(block[-1])
            t, state = t_end, (state + 1) % len(self.rates)
            if n_pending >= BLOCK:
                yield np.concatenate(pending)
                pending, n_pending = [], 0
        if pending:
            yield np.concatenate(pending)


@dataclass(frozen=True, slots=True)
class DiurnalArrivals(OpenArrivals):
    """Poisson with a daily cycle: rate(t) = rate (1 + amplitude sin(2 pi t / period)), by thinning."""

    rate: float
    amplitude: float
    period: float

    @property
    def mean_rate(self) -> float:
        return self.rate

    def times(self, rng: np.random.Generator, horizon: float) -> Iterator[np.ndarray]:
        peak = self.rate * (1 + self.amplitude)
        for block in PoissonArrivals(peak).times(rng, horizon):
            keep = rng.random(block.size) * peak < self.rate * (
                1 + self.amplitude * np.sin(2 * np.pi * block / self.period)
            )
            yield block[keep]


@dataclass(frozen=True, slots=True)
class TraceArrivals(OpenArrivals):
    """Replay of a CSV file with a ``t_arrival`` column (seconds) and an optional ``size`` column."""

    path: str
    t_arrival: tuple[float, ...]
    size: tuple[float, ...] | None

    @classmethod
    def from_file(cls, path: Path) -> TraceArrivals:
        """Read and check the trace; raise ConfigError naming the file and line on a bad row."""
        lines = read_input(path).splitlines()
        header = [name.strip() for name in lines[0].split(",")] if lines else []
        if "t_arrival" not in header:
            raise ConfigError(f"must be a CSV file with a 't_arrival' column; got {shown(str(path))}.")
        columns: dict[str, list[float]] = {name: [] for name in header}
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            cells = line.split(",")
            try:
                for name, cell in zip(header, cells, strict=True):
                    columns[name].append(float(cell))
            except ValueError:
                # The line itself is not shown: the file could be anyone's.
                raise ConfigError(
                    f"must hold numbers in every cell; got something else at {path}:{number}."
                ) from None
        times = columns["t_arrival"]
        if any(b < a for a, b in itertools.pairwise(times)) or not all(0 <= t < math.inf for t in times):
            raise ConfigError(f"must have t_arrival finite, >= 0 and non-decreasing; got {shown(str(path))}.")
        sizes = columns.get("size")
        if sizes is not None and not all(0 <= size < math.inf for size in sizes):
            raise ConfigError(f"must have every size finite and >= 0; got {shown(str(path))}.")
        return cls(str(path), tuple(times), tuple(sizes) if sizes is not None else None)

    @property
    def mean_rate(self) -> float:
        return len(self.t_arrival) / self.t_arrival[-1] if self.t_arrival and self.t_arrival[-1] > 0 else 0.0

    def times(self, rng: np.random.Generator, horizon: float) -> Iterator[np.ndarray]:
        times = np.asarray(self.t_arrival)
        times = times[times < horizon]
        for start in range(0, times.size, BLOCK):
            yield times[start : start + BLOCK]

    def sizes(self) -> Iterator[np.ndarray] | None:
        if self.size is None:
            return None
        sizes = np.asarray(self.size)
        return (sizes[start : start + BLOCK] for start in range(0, sizes.size, BLOCK))


@dataclass(frozen=True, slots=True)
class ClosedUsers:
    """A closed loop: ``users`` users each think, send one request, wait for its end, repeat."""

    users: int
    think: Distribution


def request_blocks(
    arrivals: OpenArrivals,
    size: Distribution,
    clients: Clients,
    streams: dict[str, np.random.Generator],
    horizon: float,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield blocks of (arrival instants, sizes, clients) for an open workload.

    Sizes and clients come from their own streams in blocks of fixed length, so the k-th
    request gets the same size and client whatever else the run does.
    """
    trace_sizes = arrivals.sizes()
    size_buffer = np.empty(0)
    client_buffer = np.empty(0, dtype=np.int64)
    for times in arrivals.times(streams["arrivals"], horizon):
        n = times.size
        while size_buffer.size < n:
            fresh = next(trace_sizes) if trace_sizes is not None else size.sample(streams["sizes"], BLOCK)
            size_buffer = np.concatenate([size_buffer, fresh])
        while client_buffer.size < n:
            client_buffer = np.concatenate([client_buffer, clients.draw(streams["attributes"], BLOCK)])
        yield times, size_buffer[:n], client_buffer[:n]
        size_buffer, client_buffer = size_buffer[n:], client_buffer[n:]
