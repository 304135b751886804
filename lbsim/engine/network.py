"""The network between clients, balancers and servers: how long a one-way crossing takes.

A crossing between regions takes half their round-trip time (``network.local`` inside one);
a hop between two zones of a region takes half ``network.cross_zone`` (zone hops are not
delayed when it is 0). Every crossing adds a draw of the ``jitter`` distribution.
"""

from __future__ import annotations

import numpy as np

from lbsim.draws import Draws
from lbsim.engine.clock import Clock
from lbsim.engine.server import Server
from lbsim.scenario import NetworkModel, Scenario
from lbsim.workload import Request


class Network:
    """One-way crossing times for one run, with jitter from the run's ``network`` stream."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        names = list(scenario.regions or ())
        self.rtt = np.array([[scenario.rtt(a, b) for b in names] for a in names])
        network = scenario.network or NetworkModel()
        self.zone_one_way = network.cross_zone / 2
        jitter = network.jitter
        self.jitter = Draws(lambda n: jitter.sample(rng, n)) if jitter is not None else None

    def one_way(self, a: int, b: int) -> float:
        """Seconds to cross from region ``a`` to ``b``: half the RTT, plus jitter."""
        return self.rtt[a][b] / 2 + self.jittered()

    def zone_hop(self) -> float:
        """Seconds to cross from one zone of a region to another: half ``cross_zone``, plus jitter."""
        return self.zone_one_way + self.jittered()

    def jittered(self) -> float:
        """A draw of the jitter (0 without one)."""
        return self.jitter.next() if self.jitter is not None else 0.0


class ZoneHops:
    """Requests and probes a balancer instance sends to a backend in another zone of its
    region: each crosses there, and its answer crosses back before its sender sees it."""

    def __init__(self, clock: Clock, network: Network) -> None:
        self.clock = clock
        self.network = network

    def send(self, server: Server, request: Request) -> None:
        """``request`` reaches ``server`` after one hop."""
        request.crossed = True
        self.clock.schedule(self.network.zone_hop(), self._arrived, (server, request))

    def _arrived(self, entry: tuple[Server, Request]) -> None:
        server, request = entry
        server.accept(request)

    def answer(self, request: Request, status: int) -> None:
        """The answer to ``request`` reaches its sender (``request.balancer``) after one hop."""
        request.crossed = False
        self.clock.schedule(self.network.zone_hop(), self._answered, (request, status))

    def _answered(self, entry: tuple[Request, int]) -> None:
        request, status = entry
        request.balancer.complete(request, status)
