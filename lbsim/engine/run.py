"""One run of a scenario cell: clients, balancer tiers and servers on one clock.

Clients send requests; each reaches a balancer instance of the top tier (across the network
with regions), which answers it after the tiers and servers below; the run ends it and
tells the recorder. The run measures requests that arrive in [warmup, duration), follows
each of them to its end (so slow requests are not cut off), and stops when they have all
ended or at twice the duration, whichever comes first; what is still in flight then is
counted as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.engine.balancer.instance import Instance, Placement, RunStats
from lbsim.engine.clients import ClosedLoopUsers, OpenLoopClients, Requests
from lbsim.engine.clock import Clock
from lbsim.engine.faults import Faults
from lbsim.engine.geography import Geography
from lbsim.engine.messages import Endpoint
from lbsim.engine.network import Network, ZoneHops
from lbsim.engine.server import ProcessorSharingServer, Server
from lbsim.engine.settings import RunPlan
from lbsim.engine.tiers import BOTTOM, GATEWAY_ANSWERS, Tier, TierGate, answer_up
from lbsim.errors import SimulationError
from lbsim.results.assembler import Occurrence, RunAssembler, RunOutput, ServerInfo
from lbsim.results.recorder import KeepingRecorder, Recorder, Sink
from lbsim.results.tally import Tally
from lbsim.rng import streams
from lbsim.status import DROPPED, FINAL_STATUS, TIMEOUT
from lbsim.workload import ClosedUsers, Request, request_blocks

# How often in a run (a share of its duration each) a progress tick reports how far it is.
TICKS = 100


class Run:
    """The state of one run: what reaches the balancers, and how each request ends."""

    def __init__(
        self,
        plan: RunPlan,
        seed: int,
        replication: int,
        sinks: Sequence[Sink],
        tick: Callable[[float], None] | None = None,
    ) -> None:
        """Set up a run of ``plan``; ``tick(fraction)`` is told the share of the simulated
        duration done at each TICKS-th of it (for a progress bar; it changes no result: its
        events only take sequence numbers, which order events at one instant among
        themselves as before)."""
        self.plan = plan
        self.clock = clock = Clock()
        self.streams = streams(seed, replication)
        self.timeout = plan.workload.timeout
        # What runs when a client's timeout expires (bound once: it is on every request's path).
        self.expire = self._expire
        self.open = True
        self.servers = [
            (ProcessorSharingServer if s.discipline == "ps" else Server)(
                clock, k, s.name, s.group, s.speed, s.workers, s.queue, s.overload_status
            )
            for k, s in enumerate(plan.servers)
        ]
        self.events: list[tuple[float, str, str, str]] = []
        self.stats = RunStats(plan.warmup)
        self.network = Network(plan.rtt, plan.cross_zone, plan.jitter, self.streams["network"])
        # Requests and probes between zones are delayed only when the scenario gives the round trip.
        self.hops = ZoneHops(clock, self.network) if self.network.zone_one_way > 0 else None
        geo = plan.geo
        self.geo = (
            Geography(clock, geo.names, geo.client_region, geo.server_region, geo.dns, self.servers,
                      self.network, self.streams["dns"], self.log, self._entry_up)
            if geo is not None
            else None
        )  # fmt: skip
        self.present: set[int] = set()
        # Without regions, network.local is the round trip between the clients and the balancer.
        self.crossing = self.geo is None and float(plan.rtt[0][0]) > 0
        self.send: Callable[[Request], None] = self._send_across if self.crossing else self._send
        # A balancer answers the client directly unless an answer crosses tiers, regions or the
        # network.
        self.answer = (
            self.respond if len(plan.tiers) > 1 or self.geo is not None or self.crossing else self.finish
        )
        # The tiers whose instances a fault can crash.
        self.failing_tiers = {
            instance[0] for fault in plan.faults for _, instance in fault.members if instance is not None
        }
        self.tiers = self._tiers()
        self.entry = self.tiers[-1].instances
        self.n_entry = len(self.entry)
        # What takes a request that reaches each top-tier instance: the instance, or a drop
        # while it is down (kept with ``entry`` by _set_instance).
        self.reach: list[Callable[[Request], None]] = [self._dropped] * self.n_entry
        self.every_balancer: list[Instance] = []
        for tier in self.tiers:
            for i in range(len(tier.instances)):
                instance = self._instance(tier, i)
                self._set_instance(tier, i, instance)
                self.every_balancer.append(instance)
        self.tier_named = {tier.name: tier for tier in self.tiers}
        self.balancers = self.tiers[0].instances
        # With regions, each region has ``instances`` of the top tier, where its requests arrive.
        self.per_region = self.tiers[-1].config.instances
        self.cores = [b.cores for b in self.every_balancer if b.cores is not None]
        self.faults: Faults | None = None
        if plan.faults:
            draws = self.streams["faults"].spawn(len(self.servers) + 1)
            for server, server_rng in zip(self.servers, draws, strict=False):
                server.track_service(UniformDraws(server_rng))
            self.faults = Faults(
                clock, plan.faults, plan.duration, {s.name: s for s in self.servers}, draws[-1], self.log,
                self._instance_fails,
            )  # fmt: skip
        self.busy_at_leave: dict[int, float] = {}
        self._set_membership(0.0)
        changes = {t for s in plan.servers for t in (s.t_join, s.t_leave)} - {0.0, np.inf}
        for t in sorted(changes):
            clock.schedule(t, self._set_membership, t)
        clock.schedule(plan.warmup, self._start_measuring)
        clock.schedule(plan.duration, self._close)
        clock.schedule(2 * plan.duration, self._give_up)
        if tick is not None:
            self.tick = tick
            clock.schedule(plan.duration / TICKS, self._tick, 1)
        bottom = plan.tiers[0]
        watched = bool(plan.faults) or bottom.health_check is not None or bottom.outlier_detection is not None
        sample_times = np.arange(0.0, plan.duration, plan.window)
        tally = Tally(
            plan.warmup,
            plan.duration,
            plan.window,
            sample_times.size,
            len(self.servers),
            per_server_windows=watched,
            keep_failures=bool(plan.faults),
            regions=(geo.client_region, geo.server_region, len(geo.names)) if geo is not None else None,
        )
        self.recorder = (KeepingRecorder if sinks else Recorder)(tally, sinks, plan.warmup)
        self.assembler = RunAssembler(
            [ServerInfo(s.index, s.name, s.group, s.workers, spec.t_join, spec.t_leave)
             for s, spec in zip(self.servers, plan.servers, strict=True)],
            sample_times, watched,
            self.recorder,
        )  # fmt: skip
        clock.schedule(0.0, self._sample)
        clients = self._clients()
        self.users = clients if isinstance(clients, ClosedLoopUsers) else None

    def _tiers(self) -> list[Tier]:
        """Every balancer tier from the bottom up (instances not built yet): the bottom one over
        the servers, each upper one over gates to the instances of the tier below."""
        plan, geo = self.plan, self.geo
        n_regions = len(geo.names) if geo is not None else 1
        policy_rng = self.streams["policy"]
        placements = [
            Placement(s.group, s.weight, s.zone, s.max_connection_age, s.backup, s.slow_start, s.address)
            for s in plan.servers
        ]
        scopes = [{s.index for s in members} for members in geo.members] if geo else None
        bottom = plan.tiers[0]
        tiers = [
            Tier(
                BOTTOM,
                bottom,
                self.servers,
                placements,
                policy_rng.spawn(bottom.instances * n_regions),
                scopes,
            )
        ]
        for config in plan.tiers[1:]:
            below = tiers[-1]
            gates: list[Endpoint] = [
                TierGate(self.clock, k, f"{below.name}-{k}", below.instances)
                for k in range(len(below.instances))
            ]
            n = below.config.instances
            scopes = [set(range(r * n, (r + 1) * n)) for r in range(n_regions)] if geo else None
            gate_placements = [Placement(below.name, 1, None, None, False, None, gate.name) for gate in gates]
            rngs = policy_rng.spawn(config.instances * n_regions)
            tiers.append(Tier(config.name, config, gates, gate_placements, rngs, scopes))
        return tiers

    def _clients(self) -> OpenLoopClients | ClosedLoopUsers:
        """The clients, sending their requests to :meth:`send`."""
        workload = self.plan.workload
        requests = Requests(self.clock, workload.attributes, self.streams)
        process = workload.process
        if isinstance(process, ClosedUsers):
            return ClosedLoopUsers(self.clock, process, workload.size, self.streams, requests, self.send)
        blocks = request_blocks(process, workload.size, workload.clients, self.streams, self.plan.duration)
        return OpenLoopClients(self.clock, blocks, requests, self.send)

    def _set_membership(self, t: float) -> None:
        """Groups join at ``t_join`` and leave at ``t_leave`` (planned changes, not failures)."""
        present = {k for k, s in enumerate(self.plan.servers) if s.t_join <= t < s.t_leave}
        for k, spec in enumerate(self.plan.servers):
            if spec.t_leave == t:
                self.busy_at_leave[k] = self.servers[k].busy_time_until(t)
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
            self.plan.workload.connection,
            tier.next_rng(i),
            self.answer,
            self.log,
            self.stats,
            tier.scope(i),
            tier.name,
            self.hops,
            bottom=tier.name == BOTTOM,
            answers=FINAL_STATUS if tier is self.tiers[-1] else GATEWAY_ANSWERS[tier.config.emulate],
            may_fail=tier.name in self.failing_tiers,
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
        self._set_instance(tier, i, None)
        failover = tier.config.standby_failover
        delay = failover if failover is not None else occurrence.t_end - occurrence.t_start
        occurrence.t_end = occurrence.t_start + delay
        if math.isfinite(delay):
            self.clock.schedule(delay, self._instance_returns, (tier, i))

    def _instance_returns(self, entry: tuple[Tier, int]) -> None:
        tier, i = entry
        self._set_instance(tier, i, self._instance(tier, i))
        self.log(
            "balancer",
            f"{tier.name}-{i}",
            "standby took over" if tier.config.standby_failover is not None else "restarted",
        )

    def _set_instance(self, tier: Tier, i: int, instance: Instance | None) -> None:
        """Instance ``i`` of ``tier`` is now ``instance`` (None: it is down)."""
        tier.instances[i] = instance
        if tier is self.tiers[-1]:
            self.reach[i] = instance.receive if instance is not None else self._dropped

    # A request's life ------------------------------------------------------------------

    def _send(self, request: Request) -> None:
        """A client sends ``request`` now."""
        self.recorder.sent(request, self.clock.now)
        if self.timeout is not None:
            self.clock.schedule(self.timeout, self.expire, request)
        geo = self.geo
        if geo is None:
            self.reach[request.client % self.n_entry](request)
            return
        region = request.region = geo.resolve(request.client)
        delay = self.network.one_way(geo.client_region[request.client], region)
        self.clock.schedule(delay, self._crossed, request)

    def _crossed(self, request: Request) -> None:
        self.reach[request.region * self.per_region + request.client % self.per_region](request)

    def _send_across(self, request: Request) -> None:
        """A client sends ``request`` now, to a balancer half ``network.local`` away (without
        regions), plus a draw of the jitter."""
        self.recorder.sent(request, self.clock.now)
        if self.timeout is not None:
            self.clock.schedule(self.timeout, self.expire, request)
        self.clock.schedule(self.network.one_way(0, 0), self._arrived, request)

    def _arrived(self, request: Request) -> None:
        self.reach[request.client % self.n_entry](request)

    def _dropped(self, request: Request) -> None:
        """``request`` reached a top-tier instance that is down."""
        self.finish(request, -1, DROPPED)

    def respond(self, request: Request, server: int, status: int) -> None:
        """A balancer answers ``request``: to the tier above, or to the client (after crossing
        back to its region). A request below a tier is answered up once: a hedged copy's
        later answer is dropped, as a client's is."""
        if request.parent is not None:
            if request.t_done < 0:
                request.t_done = self.clock.now
                answer_up(request, server, status)
            return
        geo = self.geo
        if geo is None and not self.crossing:
            self.finish(request, server, status)
            return
        if request.t_done >= 0:
            return
        delay = (
            self.network.one_way(request.region, geo.client_region[request.client])
            if geo is not None
            else self.network.one_way(0, 0)
        )
        self.clock.schedule(delay, self._answered, (request, server, status))

    def _answered(self, entry: tuple[Request, int, int]) -> None:
        self.finish(*entry)

    def _expire(self, request: Request) -> None:
        """The client gave up on ``request``: charged to the server it was sent to, or to
        none with tiers (the top tier sent it to an instance below, not a server)."""
        self.finish(request, request.server if len(self.tiers) == 1 else -1, TIMEOUT)

    def finish(self, request: Request, server: int, status: int) -> None:
        """``request`` ended with ``status``; a request ends once (a late answer is dropped)."""
        if request.t_done >= 0:
            return
        request.t_done = self.clock.now
        self.recorder.record(request, server, status)
        if self.open:
            if self.users is not None:
                self.users.ended(request.client)
        elif not self.recorder.in_system and not self.clock.stopped:
            self.clock.stop()

    # The measured interval and the samples ---------------------------------------------

    def _busy_times(self) -> np.ndarray:
        """Busy worker-time so far of every server (up to its ``t_leave`` once it left) and
        every balancer instance's cores."""
        now = self.clock.now
        servers = [self.busy_at_leave.get(s.index, s.busy_time_until(now)) for s in self.servers]
        return np.array(servers + [c.busy_time_until(now) for c in self.cores])

    def _start_measuring(self, _: object) -> None:
        self.assembler.busy_start = self._busy_times()

    def _close(self, _: object) -> None:
        self.assembler.busy_end = self._busy_times()
        self.open = False
        if self.users is not None:
            self.users.stop()
        if not self.recorder.in_system:
            self.clock.stop()

    def _tick(self, k: int) -> None:
        self.tick(k / TICKS)
        if k < TICKS:
            self.clock.schedule(self.plan.duration / TICKS, self._tick, k + 1)

    def _give_up(self, _: object) -> None:
        if not self.clock.stopped:
            self.clock.stop()

    def _sample(self, _: object) -> None:
        active = [s.active for s in self.servers]
        if self.assembler.watched:
            first = self.balancers[0]
            eligible = {b.index for pool in first.pools.values() for b in pool.eligible} if first else set()
            t_next = self.assembler.sample(
                active, [s.fault_state() for s in self.servers], [s.index in eligible for s in self.servers]
            )
        else:
            t_next = self.assembler.sample(active)
        if t_next is not None:
            self.clock.schedule(t_next - self.clock.now, self._sample)

    def output(self) -> RunOutput:
        """Run to the end and return what the run produced."""
        self.clock.run()
        if self.recorder.in_system < 0:
            raise SimulationError(
                f"t={self.clock.now:.6g}: engine: {-self.recorder.in_system} more requests ended than began."
            )
        stats = self.stats
        return self.assembler.output(
            t_end=self.clock.now,
            busy_cores=np.array([c.workers for c in self.cores], dtype=float),
            balancer_tiers=[b.tier for b in self.every_balancer if b.cores],
            regions=list(self.plan.geo.names if self.plan.geo else ()),
            n_retries=stats.n_retries,
            n_hedges=stats.n_hedges,
            cross_zone=stats.n_cross_zone / stats.n_zoned if stats.n_zoned else 0.0,
            retry_log=stats.retry_log,
            events=self.events,
            occurrences=self.faults.occurrences if self.faults else [],
        )
