"""One run of a scenario cell: clients, a balancer and servers in a SimPy environment.

Open-loop clients send requests at instants drawn ahead; closed-loop users think, send and
wait. The run measures requests that arrive in [warmup, duration), follows each of them to
its end (so slow requests are not cut off), and stops when they have all ended or at twice
the duration, whichever comes first; what is still in flight then is counted as such.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lbsim.config.scenario import Scenario, ServerGroup
from lbsim.draws import Draws, UniformDraws
from lbsim.engine.balancer.instance import Instance, Placement, RunStats
from lbsim.engine.clock import Clock
from lbsim.engine.faults import Faults, Occurrence
from lbsim.engine.geography import Geography, client_regions, server_regions
from lbsim.engine.messages import Endpoint
from lbsim.engine.network import Network, ZoneHops
from lbsim.engine.server import ProcessorSharingServer, Server
from lbsim.engine.tiers import BOTTOM, Tier, TierGate, answer_up
from lbsim.errors import SimulationError
from lbsim.results.recorder import Recorder, Sink
from lbsim.results.tally import Tally
from lbsim.rng import streams
from lbsim.status import DROPPED, TIMEOUT
from lbsim.workload import ClosedUsers, Request, request_blocks


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the results need to know of one server."""

    index: int
    name: str
    group: str
    workers: int


@dataclass(frozen=True, slots=True)
class RunOutput:
    """Everything one run produced: the tally of its requests, busy times, samples of server load.

    ``balancer_busy_time`` holds each balancer instance's busy core-seconds after warm-up
    and ``balancer_cores`` its cores (empty when the balancer costs nothing).
    """

    tally: Tally
    servers: tuple[ServerInfo, ...]
    regions: tuple[str, ...]
    busy_time: np.ndarray
    balancer_busy_time: np.ndarray
    balancer_cores: np.ndarray
    balancer_tiers: tuple[str, ...]
    n_arrived: int
    t_end: float
    sample_times: np.ndarray
    active_samples: np.ndarray
    state_samples: np.ndarray | None
    eligible_samples: np.ndarray | None
    n_retries: int
    n_hedges: int
    cross_zone: float
    retry_log: list[tuple[float, int]]
    events: list[tuple[float, str, str, str]]
    occurrences: list[Occurrence]
    in_system_time: float


# Server states in the time series.
UP, CRASHED, HUNG, SLOW, ERRORING = range(5)


def server_state(server: Server) -> int:
    """The server's fault state as a small number (0 up, 1 crashed, 2 hung, 3 slow, 4 erroring)."""
    if server.crashed:
        return CRASHED
    if server.hung:
        return HUNG
    if server.slowdown != 1.0:
        return SLOW
    return ERRORING if server.error_probability else UP


class _Run:
    """The state of one run; methods are the callbacks the SimPy events call."""

    def __init__(self, scenario: Scenario, seed: int, replication: int, sinks: Sequence[Sink]) -> None:
        self.scenario = scenario
        self.clock = clock = Clock()
        self.streams = streams(seed, replication)
        self.warmup = scenario.warmup
        self.duration = scenario.duration
        self.timeout = scenario.workload.timeout
        self.n_started = 0
        self.n_ended = 0
        self.n_arrived = 0
        # Requests in the system (sent, not ended) integrated over time, for Little's law.
        self.in_system = 0
        self.in_system_time = 0.0
        self.t_in_system = 0.0
        self.open = True
        self.servers, self.placements = self._build_servers()
        self.events: list[tuple[float, str, str, str]] = []
        self.stats = RunStats(scenario.warmup)
        self.network = Network(scenario, self.streams["network"])
        # Requests and probes between zones are delayed only when the scenario gives the round trip.
        self.hops = ZoneHops(clock, self.network) if self.network.zone_one_way > 0 else None
        self.geo = (
            Geography(clock, scenario, self.servers, self.network, self.streams["dns"], self.log,
                      self._entry_up)
            if scenario.regions
            else None
        )  # fmt: skip
        self.present: set[int] = set()
        self.tiered = bool(scenario.tiers)
        # A balancer answers the client directly unless an answer crosses tiers or regions.
        self.answer = self.respond if self.tiered or self.geo is not None else self.finish
        self.tiers = self._build_tiers()
        self.balancers = self.tiers[0].instances
        self.entry = self.tiers[-1].instances
        self.n_entry = len(self.entry)
        # With regions, each region has ``instances`` of the top tier, where its requests arrive.
        self.per_region = self.tiers[-1].config.instances
        self.cores = [b.cores for b in self.every_balancer if b.cores is not None]
        self.faults: Faults | None = None
        if scenario.faults:
            draws = self.streams["faults"].spawn(len(self.servers) + 1)
            for server, server_rng in zip(self.servers, draws, strict=False):
                server.track_service(UniformDraws(server_rng))
            self.faults = Faults(
                clock, scenario, {s.name: s for s in self.servers}, draws[-1], self.log, self._instance_fails
            )
        self._set_membership(0.0)
        changes = {g.t_join for g in scenario.servers} | {g.t_leave for g in scenario.servers if g.t_leave}
        for t in sorted(changes - {0.0}):
            clock.schedule(t, self._set_membership, t)
        self.attributes = scenario.workload.attributes()
        self.sessions = Draws(lambda n: self.attributes.session_draws(n, self.streams["sessions"]))
        self.paths = Draws(lambda n: self.attributes.path_draws(n, self.streams["paths"]))
        self.busy_start = np.zeros(len(self.servers) + len(self.cores))
        self.busy_end = np.zeros(len(self.servers) + len(self.cores))
        self.clock.schedule(scenario.warmup, self._start_measuring)
        self.clock.schedule(scenario.duration, self._close)
        self.clock.schedule(2 * scenario.duration, self._give_up)
        self.sample_times = np.arange(0.0, scenario.duration, scenario.window_length)
        self.active_samples = np.zeros((self.sample_times.size, len(self.servers)), dtype=np.int32)
        config = scenario.balancer
        watched = (
            bool(scenario.faults) or config.health_check is not None or config.outlier_detection is not None
        )
        shape = (self.sample_times.size, len(self.servers))
        self.state_samples = np.zeros(shape, dtype=np.int8) if watched else None
        self.eligible_samples = np.zeros(shape, dtype=np.int8) if watched else None
        self.tally = Tally(
            scenario.warmup,
            scenario.window_length,
            self.sample_times.size,
            len(self.servers),
            per_server_windows=watched,
            keep_failures=bool(scenario.faults),
            regions=(
                (client_regions(scenario), server_regions(scenario), len(scenario.regions))
                if scenario.regions
                else None
            ),
        )
        self.recorder = Recorder([self.tally.fold, *sinks])
        self.record = self.recorder.record
        self.n_samples = 0
        self.clock.schedule(0.0, self._sample)
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

    def _build_servers(self) -> tuple[list[Server], list[Placement]]:
        servers: list[Server] = []
        placements: list[Placement] = []
        self._group_of: list[ServerGroup] = []
        for group in self.scenario.servers:
            kind = ProcessorSharingServer if group.discipline == "ps" else Server
            for i in range(group.count):
                servers.append(
                    kind(
                        self.clock,
                        len(servers),
                        f"{group.name}-{i}",
                        group.name,
                        group.speed,
                        group.workers,
                        group.queue,
                    )
                )
                placements.append(
                    Placement(
                        group.name,
                        group.weight,
                        group.zone,
                        group.max_connection_age,
                        group.backup,
                        group.slow_start,
                    )
                )
                self._group_of.append(group)
        return servers, placements

    def _set_membership(self, t: float) -> None:
        """Groups join at ``t_join`` and leave at ``t_leave`` (planned changes, not failures)."""
        present = {
            s.index
            for s, g in zip(self.servers, self._group_of, strict=True)
            if g.t_join <= t and (g.t_leave is None or t < g.t_leave)
        }
        self.present = present
        for balancer in self.balancers:
            if balancer is not None:
                balancer.set_present(present)

    def _build_tiers(self) -> list[Tier]:
        """Every balancer tier from the bottom up: the bottom one over the servers, each upper
        one over gates to the instances of the tier below."""
        scenario = self.scenario
        policy = self.streams["policy"]
        n_regions = len(scenario.regions) if scenario.regions else 1
        geo = self.geo
        scopes = [{s.index for s in members} for members in geo.members] if geo else None
        counts = scenario.tier_instances
        tiers = [
            Tier(
                BOTTOM, scenario.balancer, self.servers, self.placements, policy.spawn(counts[BOTTOM]), scopes
            )
        ]
        for config in reversed(scenario.tiers):
            below = tiers[-1]
            gates: list[Endpoint] = [
                TierGate(self.clock, k, f"{below.name}-{k}", below.instances)
                for k in range(len(below.instances))
            ]
            n = below.config.instances
            scopes = [set(range(r * n, (r + 1) * n)) for r in range(n_regions)] if geo else None
            placements = [Placement(below.name, 1, None, None, False, None)] * len(gates)
            rngs = policy.spawn(counts[config.name])
            tiers.append(Tier(config.name, config, gates, placements, rngs, scopes))
        self.every_balancer: list[Instance] = []
        self.balancer_tiers: list[str] = []
        for tier in tiers:
            for i in range(len(tier.instances)):
                balancer = tier.instances[i] = self._instance(tier, i)
                self.every_balancer.append(balancer)
                self.balancer_tiers.append(tier.name)
        self.tier_named = {tier.name: tier for tier in tiers}
        return tiers

    def _instance(self, tier: Tier, i: int) -> Instance:
        """A new instance ``i`` of ``tier``, with its members set."""
        balancer = Instance(
            self.clock,
            i,
            tier.config,
            tier.backends,
            tier.placements,
            self.scenario.workload.connection,
            tier.next_rng(i),
            self.answer,
            self.log,
            self.stats,
            tier.scope(i),
            tier.name,
            self.hops,
            bottom=tier.name == BOTTOM,
        )
        balancer.set_present(self.present if tier.name == BOTTOM else set(range(len(tier.backends))))
        return balancer

    def _entry_up(self, region: int) -> bool:
        n = self.per_region
        return any(b is not None for b in self.entry[region * n : (region + 1) * n])

    def log(self, component: str, subject: str, event: str) -> None:
        """Record a state change (health, ejection, fault, failover) at the current time."""
        self.events.append((self.clock.now, component, subject, event))

    def _instance_fails(self, occurrence: Occurrence) -> None:
        """The balancer instance of ``occurrence`` crashes; a standby takes over after its
        failover time (bottom tier), or the instance restarts when the fault ends."""
        assert occurrence.instance is not None
        tier_name, i = occurrence.instance
        tier = self.tier_named[tier_name]
        failed = tier.instances[i]
        if failed is None:
            return
        failed.fail()
        tier.instances[i] = None
        standby = tier.config.standby
        delay = standby.failover if standby is not None else occurrence.t_end - occurrence.t_start
        occurrence.t_end = occurrence.t_start + delay
        self.clock.schedule(delay, self._instance_returns, (tier, i))

    def _instance_returns(self, entry: tuple[Tier, int]) -> None:
        tier, i = entry
        tier.instances[i] = self._instance(tier, i)
        self.log("balancer", f"{tier.name}-{i}", "standby took over" if tier.config.standby else "restarted")

    # Arrivals -----------------------------------------------------------------------

    def _next_arrival(self) -> None:
        arrival = next(self._arrivals, None)
        if arrival is None:
            return
        t, size, client = arrival
        self.pending = self._request(t, size, client)
        self.clock.schedule(t - self.clock.now, self._arrive)

    def _request(self, t: float, size: float, client: int) -> Request:
        request = Request(self.n_started, t, size, client, self.clock)
        self.n_started += 1
        attributes = self.attributes
        if attributes.sessions > 1:
            request.session = client * attributes.sessions + self.sessions.next()
        if attributes.paths:
            request.path = self.paths.next()
        if attributes.headers:
            request.headers = attributes.headers_of(client)
        return request

    def _arrive(self, _: object) -> None:
        request = self.pending
        self._next_arrival()
        self.send(request)

    def _count_in_system(self, change: int) -> None:
        now = self.clock.now
        self.in_system_time += self.in_system * (now - self.t_in_system)
        self.in_system += change
        self.t_in_system = now

    def send(self, request: Request) -> None:
        """A client sends ``request`` now."""
        self._count_in_system(1)
        if request.t_arrival >= self.warmup:
            self.n_arrived += 1
        if self.timeout is not None:
            self.clock.schedule(self.timeout, self._expire, request)
        geo = self.geo
        if geo is None:
            self._reach(request, request.client % self.n_entry)
            return
        region = request.region = geo.resolve(request.client)
        delay = self.network.one_way(geo.client_region[request.client], region)
        self.clock.schedule(delay, self._crossed, request)

    def _crossed(self, request: Request) -> None:
        self._reach(request, request.region * self.per_region + request.client % self.per_region)

    def _reach(self, request: Request, k: int) -> None:
        """``request`` reaches balancer instance ``k`` of the top tier (dropped if it is down)."""
        balancer = self.entry[k]
        if balancer is None:
            self.finish(request, -1, DROPPED)
        else:
            balancer.receive(request)

    def respond(self, request: Request, server: int, status: int) -> None:
        """The balancer answers ``request``: to the tier above, or to the client (after crossing
        back to its region)."""
        if request.parent is not None:
            answer_up(request, server, status)
            return
        geo = self.geo
        if geo is None:
            self.finish(request, server, status)
            return
        if request.t_done >= 0:
            return
        delay = self.network.one_way(request.region, geo.client_region[request.client])
        self.clock.schedule(delay, self._answered, (request, server, status))

    def _answered(self, entry: tuple[Request, int, int]) -> None:
        self.finish(*entry)

    def _expire(self, request: Request) -> None:
        self.finish(request, request.server, TIMEOUT)

    # Closed-loop users ----------------------------------------------------------------

    def _start_users(self, users: ClosedUsers) -> None:
        self.users = users
        size, think = self.scenario.workload.size, users.think
        self.sizes = Draws(lambda n: size.sample(self.streams["sizes"], n))
        self.thinks = Draws(lambda n: think.sample(self.streams["think"], n))
        for user in range(users.users):
            self._think(user)

    def _think(self, user: int) -> None:
        self.clock.schedule(self.thinks.next(), self._user_sends, user)

    def _user_sends(self, user: int) -> None:
        if not self.open:
            return
        self.send(self._request(self.clock.now, self.sizes.next(), user))

    # Ends ---------------------------------------------------------------------------

    def finish(self, request: Request, server: int, status: int) -> None:
        """``request`` ended with ``status``; a request ends once (a late answer is dropped)."""
        if request.t_done >= 0:
            return
        request.t_done = self.clock.now
        self._count_in_system(-1)
        self.record(request, server, status)
        self.n_ended += 1
        if self.open:
            if self.closed:
                self._think(request.client)
        elif self.n_ended == self.n_started and not self.clock.stopped:
            self.clock.stop()

    def _busy_times(self) -> np.ndarray:
        now = self.clock.now
        return np.array(
            [s.busy_time_until(now) for s in self.servers] + [c.busy_time_until(now) for c in self.cores]
        )

    def _start_measuring(self, _: object) -> None:
        self.busy_start = self._busy_times()

    def _close(self, _: object) -> None:
        self.busy_end = self._busy_times()
        self.open = False
        if self.n_ended == self.n_started:
            self.clock.stop()

    def _give_up(self, _: object) -> None:
        if not self.clock.stopped:
            self.clock.stop()

    def _sample(self, _: object) -> None:
        self.active_samples[self.n_samples] = [s.active for s in self.servers]
        if self.state_samples is not None and self.eligible_samples is not None:
            self.state_samples[self.n_samples] = [server_state(s) for s in self.servers]
            first = self.balancers[0]
            eligible = {b.index for pool in first.pools.values() for b in pool.eligible} if first else set()
            self.eligible_samples[self.n_samples] = [s.index in eligible for s in self.servers]
        self.n_samples += 1
        if self.n_samples < self.sample_times.size:
            self.clock.schedule(self.sample_times[self.n_samples] - self.clock.now, self._sample)

    def output(self) -> RunOutput:
        self.clock.run()
        if self.n_ended > self.n_started:
            raise SimulationError(
                f"t={self.clock.now:.6g}: engine: {self.n_ended} requests ended but {self.n_started} started."
            )
        self.recorder.flush()
        busy = self.busy_end - self.busy_start
        n = len(self.servers)
        return RunOutput(
            tally=self.tally,
            servers=tuple(ServerInfo(s.index, s.name, s.group, s.workers) for s in self.servers),
            regions=tuple(self.scenario.regions or ()),
            busy_time=busy[:n],
            balancer_busy_time=busy[n:],
            balancer_cores=np.array([c.workers for c in self.cores], dtype=float),
            balancer_tiers=tuple(
                t for b, t in zip(self.every_balancer, self.balancer_tiers, strict=True) if b.cores
            ),
            n_arrived=self.n_arrived,
            t_end=self.clock.now,
            sample_times=self.sample_times,
            active_samples=self.active_samples,
            state_samples=self.state_samples,
            eligible_samples=self.eligible_samples,
            n_retries=self.stats.n_retries,
            n_hedges=self.stats.n_hedges,
            cross_zone=self.stats.n_cross_zone / self.stats.n_zoned if self.stats.n_zoned else 0.0,
            retry_log=self.stats.retry_log,
            events=self.events,
            occurrences=self.faults.occurrences if self.faults else [],
            in_system_time=self.in_system_time + self.in_system * (self.clock.now - self.t_in_system),
        )


def _flatten(
    blocks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> Iterator[tuple[float, float, int]]:
    for times, sizes, clients in blocks:
        yield from zip(times.tolist(), sizes.tolist(), clients.tolist(), strict=True)


def run(scenario: Scenario, seed: int, replication: int, sinks: Sequence[Sink] = ()) -> RunOutput:
    """Simulate one replication of one scenario cell (a scenario without a sweep).

    Each sink is called with every chunk of per-request records (see ``Recorder``).
    """
    return _Run(scenario, seed, replication, sinks).output()
