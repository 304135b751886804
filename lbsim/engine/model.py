"""One run of a scenario cell: clients, a balancer and servers in a SimPy environment.

Open-loop clients send requests at instants drawn ahead; closed-loop users think, send and
wait. The run measures requests that arrive in [warmup, duration), follows each of them to
its end (so slow requests are not cut off), and stops when they have all ended or at twice
the duration, whichever comes first; what is still in flight then is counted as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from simpy import Environment, Event, Timeout

from lbsim.distributions import Distribution
from lbsim.engine.balancer import Balancer
from lbsim.engine.recorder import TIMEOUT, Recorder, Records
from lbsim.engine.server import ProcessorSharingServer, Server
from lbsim.errors import SimulationError
from lbsim.policies.base import Backend
from lbsim.rng import streams
from lbsim.scenario import Scenario
from lbsim.workload import BLOCK, ClosedUsers, Request, request_blocks


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the results need to know of one server."""

    index: int
    name: str
    group: str
    workers: int


@dataclass(frozen=True, slots=True)
class RunOutput:
    """Everything one run produced: records, server busy times, samples of server load."""

    records: Records
    servers: tuple[ServerInfo, ...]
    busy_time: np.ndarray
    n_arrived: int
    t_end: float
    sample_times: np.ndarray
    active_samples: np.ndarray


class _Run:
    """The state of one run; methods are the callbacks the SimPy events call."""

    def __init__(self, scenario: Scenario, seed: int, replication: int) -> None:
        self.scenario = scenario
        self.env = env = Environment()
        self.streams = streams(seed, replication)
        self.recorder = Recorder()
        self.record = self.recorder.record
        self.warmup = scenario.warmup
        self.duration = scenario.duration
        self.timeout = scenario.workload.timeout
        self.n_started = 0
        self.n_ended = 0
        self.n_arrived = 0
        self.open = True
        self.stop = env.event()
        self.servers, weights = self._build_servers()
        self.balancer = Balancer(
            env,
            scenario.balancer.policy_object(),
            self.servers,
            weights,
            self.streams["policy"],
            self.finish,
        )
        self.busy_start = np.zeros(len(self.servers))
        self.busy_end = np.zeros(len(self.servers))
        self._at(scenario.warmup, self._start_measuring)
        self._at(scenario.duration, self._close)
        self._at(2 * scenario.duration, self._give_up)
        self.sample_times = np.arange(0.0, scenario.duration, scenario.window_length)
        self.active_samples = np.zeros((self.sample_times.size, len(self.servers)), dtype=np.int32)
        self.n_samples = 0
        self._at(0.0, self._sample)
        process = scenario.workload.process()
        self.closed = isinstance(process, ClosedUsers)
        if isinstance(process, ClosedUsers):
            self._start_users(process)
        else:
            blocks = request_blocks(
                process,
                scenario.workload.size,
                scenario.workload.clients_model(),
                self.streams,
                scenario.duration,
            )
            self._arrivals = _flatten(blocks)
            self._next_arrival()

    def _build_servers(self) -> tuple[list[Server], list[int]]:
        servers: list[Server] = []
        weights: list[int] = []
        for group in self.scenario.servers:
            kind = ProcessorSharingServer if group.discipline == "ps" else Server
            for i in range(group.count):
                servers.append(
                    kind(
                        self.env,
                        len(servers),
                        f"{group.name}-{i}",
                        group.name,
                        group.speed,
                        group.workers,
                        group.queue,
                        _unset_done,
                    )
                )
                weights.append(group.weight)
        return servers, weights

    def _at(self, t: float, callback: object) -> None:
        Timeout(self.env, t).callbacks.append(callback)  # type: ignore[arg-type]

    # Arrivals -----------------------------------------------------------------------

    def _next_arrival(self) -> None:
        arrival = next(self._arrivals, None)
        if arrival is None:
            return
        t, size, client = arrival
        self.pending = Request(self.n_started, t, size, client)
        self.n_started += 1
        Timeout(self.env, t - self.env.now).callbacks.append(self._arrive)

    def _arrive(self, _: Event) -> None:
        request = self.pending
        self._next_arrival()
        self.send(request)

    def send(self, request: Request) -> None:
        """A client sends ``request`` now."""
        if request.t_arrival >= self.warmup:
            self.n_arrived += 1
        if self.timeout is not None:
            Timeout(self.env, self.timeout, request).callbacks.append(self._expire)
        self.balancer.dispatch(request)

    def _expire(self, event: Event) -> None:
        request: Request = event._value
        backend: Backend | None = request.backend  # type: ignore[assignment]
        self.finish(request, -1 if backend is None else backend.index, TIMEOUT)

    # Closed-loop users ----------------------------------------------------------------

    def _start_users(self, users: ClosedUsers) -> None:
        self.users = users
        self.sizes = _Draws(self.scenario.workload.size, self.streams["sizes"])
        self.thinks = _Draws(users.think, self.streams["think"])
        for user in range(users.users):
            self._think(user)

    def _think(self, user: int) -> None:
        Timeout(self.env, self.thinks.next(), user).callbacks.append(self._user_sends)

    def _user_sends(self, event: Event) -> None:
        if not self.open:
            return
        request = Request(self.n_started, self.env.now, self.sizes.next(), event._value)
        self.n_started += 1
        self.send(request)

    # Ends ---------------------------------------------------------------------------

    def finish(self, request: Request, server: int, status: int) -> None:
        """``request`` ended with ``status``; a request ends once (a late answer is dropped)."""
        if request.t_done >= 0:
            return
        request.t_done = self.env.now
        self.record(request, server, status)
        self.n_ended += 1
        if self.open:
            if self.closed:
                self._think(request.client)
        elif self.n_ended == self.n_started and not self.stop.triggered:
            self.stop.succeed()

    def _start_measuring(self, _: Event) -> None:
        now = self.env.now
        self.busy_start = np.array([s.busy_time_until(now) for s in self.servers])

    def _close(self, _: Event) -> None:
        now = self.env.now
        self.busy_end = np.array([s.busy_time_until(now) for s in self.servers])
        self.open = False
        if self.n_ended == self.n_started:
            self.stop.succeed()

    def _give_up(self, _: Event) -> None:
        if not self.stop.triggered:
            self.stop.succeed()

    def _sample(self, _: Event) -> None:
        self.active_samples[self.n_samples] = [s.active for s in self.servers]
        self.n_samples += 1
        if self.n_samples < self.sample_times.size:
            self._at(self.sample_times[self.n_samples] - self.env.now, self._sample)

    def output(self) -> RunOutput:
        self.env.run(until=self.stop)
        if self.n_ended > self.n_started:
            raise SimulationError(
                f"t={self.env.now:.6g}: engine: {self.n_ended} requests ended but {self.n_started} started."
            )
        return RunOutput(
            records=self.recorder.columns(),
            servers=tuple(ServerInfo(s.index, s.name, s.group, s.workers) for s in self.servers),
            busy_time=self.busy_end - self.busy_start,
            n_arrived=self.n_arrived,
            t_end=self.env.now,
            sample_times=self.sample_times,
            active_samples=self.active_samples,
        )


class _Draws:
    """Values of a distribution drawn in blocks, handed out one at a time."""

    __slots__ = ("_buffer", "_distribution", "_rng")

    def __init__(self, distribution: Distribution, rng: np.random.Generator) -> None:
        self._distribution = distribution
        self._rng = rng
        self._buffer: list[float] = []

    def next(self) -> float:
        if not self._buffer:
            self._buffer = self._distribution.sample(self._rng, BLOCK).tolist()
            self._buffer.reverse()
        return self._buffer.pop()


def _flatten(
    blocks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> Iterator[tuple[float, float, int]]:
    for times, sizes, clients in blocks:
        yield from zip(times.tolist(), sizes.tolist(), clients.tolist(), strict=True)


def _unset_done(request: Request, status: int) -> None:
    raise SimulationError(f"request {request.index} ended at a server that no balancer owns.")


def run(scenario: Scenario, seed: int, replication: int) -> RunOutput:
    """Simulate one replication of one scenario cell (a scenario without a sweep)."""
    return _Run(scenario, seed, replication).output()
