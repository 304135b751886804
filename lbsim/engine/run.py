"""One run of a scenario cell: clients, balancer tiers and servers on one clock.

Clients send requests; each reaches a balancer instance of the top tier (across the network
with regions), which answers it after the tiers and servers below; the run ends it and
tells the recorder. The run measures requests that arrive in [warmup, duration), follows
each of them to its end (so slow requests are not cut off), and stops when they have all
ended or at twice the duration, whichever comes first; what is still in flight then is
counted as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lbsim.config.scenario import Scenario
from lbsim.draws import UniformDraws
from lbsim.engine import build
from lbsim.engine.balancer.instance import Instance, RunStats
from lbsim.engine.clients import ClosedLoopUsers
from lbsim.engine.clock import Clock
from lbsim.engine.faults import Faults
from lbsim.engine.geography import Geography, client_regions, server_regions
from lbsim.engine.network import Network, ZoneHops
from lbsim.engine.tiers import BOTTOM, Tier, answer_up
from lbsim.errors import SimulationError
from lbsim.results.assembler import Occurrence, RunAssembler, RunOutput, ServerInfo
from lbsim.results.recorder import Recorder, Sink
from lbsim.results.tally import Tally
from lbsim.rng import streams
from lbsim.status import DROPPED, TIMEOUT
from lbsim.workload import Request


class Run:
    """The state of one run: what reaches the balancers, and how each request ends."""

    def __init__(self, scenario: Scenario, seed: int, replication: int, sinks: Sequence[Sink]) -> None:
        self.scenario = scenario
        self.clock = clock = Clock()
        self.streams = streams(seed, replication)
        self.timeout = scenario.workload.timeout
        self.n_started = 0
        self.n_ended = 0
        self.open = True
        self.servers, placements, self.membership = build.servers(clock, scenario)
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
        # A balancer answers the client directly unless an answer crosses tiers or regions.
        self.answer = self.respond if scenario.tiers or self.geo is not None else self.finish
        self.tiers = build.tiers(clock, scenario, self.servers, placements, self.streams["policy"], self.geo)
        self.every_balancer: list[Instance] = []
        for tier in self.tiers:
            for i in range(len(tier.instances)):
                tier.instances[i] = self._instance(tier, i)
                self.every_balancer.append(tier.instances[i])  # type: ignore[arg-type]
        self.tier_named = {tier.name: tier for tier in self.tiers}
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
        changes = {t for window in self.membership for t in window} - {0.0, np.inf}
        for t in sorted(changes):
            clock.schedule(t, self._set_membership, t)
        clock.schedule(scenario.warmup, self._start_measuring)
        clock.schedule(scenario.duration, self._close)
        clock.schedule(2 * scenario.duration, self._give_up)
        config = scenario.balancer
        watched = (
            bool(scenario.faults) or config.health_check is not None or config.outlier_detection is not None
        )
        sample_times = np.arange(0.0, scenario.duration, scenario.window_length)
        tally = Tally(
            scenario.warmup,
            scenario.window_length,
            sample_times.size,
            len(self.servers),
            per_server_windows=watched,
            keep_failures=bool(scenario.faults),
            regions=(
                (client_regions(scenario), server_regions(scenario), len(scenario.regions))
                if scenario.regions
                else None
            ),
        )
        self.recorder = Recorder(tally, sinks, scenario.warmup)
        self.assembler = RunAssembler(
            [ServerInfo(s.index, s.name, s.group, s.workers) for s in self.servers], sample_times, watched,
            self.recorder,
        )  # fmt: skip
        clock.schedule(0.0, self._sample)
        self.clients = build.clients(clock, scenario, self.streams, self.send)
        self.users = self.clients if isinstance(self.clients, ClosedLoopUsers) else None

    def _set_membership(self, t: float) -> None:
        """Groups join at ``t_join`` and leave at ``t_leave`` (planned changes, not failures)."""
        present = {k for k, (t_join, t_leave) in enumerate(self.membership) if t_join <= t < t_leave}
        self.present = present
        for balancer in self.balancers:
            if balancer is not None:
                balancer.set_present(present)

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

    # A request's life ------------------------------------------------------------------

    def send(self, request: Request) -> None:
        """A client sends ``request`` now."""
        self.n_started += 1
        self.recorder.sent(request, self.clock.now)
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
        """A balancer answers ``request``: to the tier above, or to the client (after crossing
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

    def finish(self, request: Request, server: int, status: int) -> None:
        """``request`` ended with ``status``; a request ends once (a late answer is dropped)."""
        if request.t_done >= 0:
            return
        request.t_done = self.clock.now
        self.recorder.record(request, server, status)
        self.n_ended += 1
        if self.open:
            if self.users is not None:
                self.users.ended(request.client)
        elif self.n_ended == self.n_started and not self.clock.stopped:
            self.clock.stop()

    # The measured interval and the samples ---------------------------------------------

    def _busy_times(self) -> np.ndarray:
        now = self.clock.now
        return np.array(
            [s.busy_time_until(now) for s in self.servers] + [c.busy_time_until(now) for c in self.cores]
        )

    def _start_measuring(self, _: object) -> None:
        self.assembler.busy_start = self._busy_times()

    def _close(self, _: object) -> None:
        self.assembler.busy_end = self._busy_times()
        self.open = False
        self.clients.stop()
        if self.n_ended == self.n_started:
            self.clock.stop()

    def _give_up(self, _: object) -> None:
        if not self.clock.stopped:
            self.clock.stop()

    def _sample(self, _: object) -> None:
        first = self.balancers[0]
        eligible = {b.index for pool in first.pools.values() for b in pool.eligible} if first else set()
        t_next = self.assembler.sample(
            [s.active for s in self.servers],
            [s.fault_state() for s in self.servers],
            [s.index in eligible for s in self.servers],
        )
        if t_next is not None:
            self.clock.schedule(t_next - self.clock.now, self._sample)

    def output(self) -> RunOutput:
        """Run to the end and return what the run produced."""
        self.clock.run()
        if self.n_ended > self.n_started:
            raise SimulationError(
                f"t={self.clock.now:.6g}: engine: {self.n_ended} requests ended but {self.n_started} started."
            )
        stats = self.stats
        return self.assembler.output(
            t_end=self.clock.now,
            busy_cores=np.array([c.workers for c in self.cores], dtype=float),
            balancer_tiers=[b.tier for b in self.every_balancer if b.cores],
            regions=list(self.scenario.regions or ()),
            n_retries=stats.n_retries,
            n_hedges=stats.n_hedges,
            cross_zone=stats.n_cross_zone / stats.n_zoned if stats.n_zoned else 0.0,
            retry_log=stats.retry_log,
            events=self.events,
            occurrences=self.faults.occurrences if self.faults else [],
        )


def run(scenario: Scenario, seed: int, replication: int, sinks: Sequence[Sink] = ()) -> RunOutput:
    """Simulate one replication of one scenario cell (a scenario without a sweep).

    Each sink is called with every chunk of per-request records (see ``Recorder``).
    """
    return Run(scenario, seed, replication, sinks).output()
