"""Failure injection: crashes, hangs, slowdowns and error bursts at scheduled or random times.

A scheduled fault (``at``, ``duration``) hits its target once; a random one (``mtbf``,
``mttr``) alternates up and down times drawn from its distributions over the whole run,
independently for each member of a group target. Faults of one kind that overlap on a server
add up to one: it is crashed or hung until the last of them ends, and slowed down or
erroring as the latest started of those still on says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lbsim.engine.clock import Clock
from lbsim.engine.server import Server
from lbsim.engine.settings import Fault
from lbsim.results.assembler import Occurrence


class Faults:
    """Schedules every fault occurrence of a run and applies it to servers or balancers."""

    def __init__(
        self,
        clock: Clock,
        faults: Sequence[Fault],
        horizon: float,
        servers: dict[str, Server],
        rng: np.random.Generator,
        log: Callable[[str, str, str], None],
        balancer_fails: Callable[[Occurrence], None],
    ) -> None:
        """Schedule ``faults`` over [0, ``horizon``) seconds, drawing random ones from ``rng``."""
        self.clock = clock
        self.servers = servers
        self.log = log
        self.balancer_fails = balancer_fails
        self.occurrences: list[Occurrence] = []
        # The faults of each kind on at each server, in the order they started.
        self.on: dict[tuple[str, str], list[Fault]] = {}
        for fault, fault_rng in zip(faults, rng.spawn(len(faults)), strict=True):
            members = fault.members
            for (names, instance), group_rng in zip(members, fault_rng.spawn(len(members)), strict=True):
                target = names[0] if len(names) == 1 else fault.target
                for t_start, t_end in _windows(fault, group_rng, horizon):
                    occurrence = Occurrence(target, fault.kind, names, t_start, t_end, instance)
                    self._schedule(fault, occurrence)

    def _schedule(self, fault: Fault, occurrence: Occurrence) -> None:
        self.occurrences.append(occurrence)
        self.clock.schedule(occurrence.t_start, self._start, (fault, occurrence))
        if occurrence.instance is None and math.isfinite(occurrence.t_end):
            self.clock.schedule(occurrence.t_end, self._end, (fault, occurrence))

    def _start(self, entry: tuple[Fault, Occurrence]) -> None:
        fault, occurrence = entry
        self.log("fault", occurrence.target, f"{fault.kind} starts")
        if occurrence.instance is not None:
            self.balancer_fails(occurrence)
            return
        for name in occurrence.servers:
            on = self.on.setdefault((name, fault.kind), [])
            on.append(fault)
            server = self.servers[name]
            if fault.kind == "crash":
                if len(on) == 1:
                    server.crash()
            elif fault.kind == "hang":
                if len(on) == 1:
                    server.hang()
            else:
                _degrade(server, fault)

    def _end(self, entry: tuple[Fault, Occurrence]) -> None:
        fault, occurrence = entry
        self.log("fault", occurrence.target, f"{fault.kind} ends")
        for name in occurrence.servers:
            on = self.on[name, fault.kind]
            on.remove(fault)
            server = self.servers[name]
            if on:
                if fault.kind in ("slow", "errors"):
                    _degrade(server, on[-1])
            elif fault.kind == "crash":
                server.recover()
            elif fault.kind == "hang":
                server.unhang()
            elif fault.kind == "slow":
                server.set_slowdown(1.0)
            else:
                server.set_errors(0.0, 0.0)


def _degrade(server: Server, fault: Fault) -> None:
    """Slow ``server`` down, or make it answer errors, as ``fault`` says."""
    if fault.kind == "slow":
        assert fault.factor is not None
        server.set_slowdown(fault.factor)
    else:
        assert fault.probability is not None
        server.set_errors(fault.probability, fault.latency)


def _windows(fault: Fault, rng: np.random.Generator, horizon: float) -> list[tuple[float, float]]:
    if fault.at is not None:
        return [(fault.at, fault.at + fault.duration if fault.duration is not None else math.inf)]
    assert fault.mtbf is not None and fault.mttr is not None
    windows: list[tuple[float, float]] = []
    t = 0.0
    while True:
        t += float(fault.mtbf.sample(rng, 1)[0])
        if t >= horizon:
            return windows
        down = float(fault.mttr.sample(rng, 1)[0])
        windows.append((t, t + down))
        t += down
