"""The network between clients, balancers and servers: how long a one-way crossing takes.

A crossing between regions takes half their round-trip time (``network.local`` inside one);
a hop between two zones of a region takes half ``network.cross_zone`` (zone hops are not
delayed when it is 0). Every crossing adds a draw of the ``jitter`` distribution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lbsim.distributions import Distribution
from lbsim.draws import Draws
from lbsim.engine.clock import Clock

if TYPE_CHECKING:
    from lbsim.engine.messages import Attempt, Endpoint, Probe


class Network:
    """One-way crossing times for one run, with jitter from the run's ``network`` stream."""

    def __init__(
        self, rtt: np.ndarray, cross_zone: float, jitter: Distribution | None, rng: np.random.Generator
    ) -> None:
        """``rtt[a][b]``: round trip (seconds) between regions a and b; ``cross_zone``: between
        two zones of a region; ``jitter``: added to every one-way crossing."""
        self.rtt = rtt
        self.zone_one_way = cross_zone / 2
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

    def send(self, endpoint: Endpoint, message: Attempt | Probe) -> None:
        """``message`` reaches ``endpoint`` after one hop."""
        message.crossed = True
        self.clock.schedule(self.network.zone_hop(), self._arrived, (endpoint, message))

    def _arrived(self, entry: tuple[Endpoint, Attempt | Probe]) -> None:
        endpoint, message = entry
        endpoint.accept(message)

    def answer(self, message: Attempt | Probe, status: int) -> None:
        """The answer to ``message`` reaches its sender (``message.reply_to``) after one hop."""
        message.crossed = False
        self.clock.schedule(self.network.zone_hop(), self._answered, (message, status))

    def _answered(self, entry: tuple[Attempt | Probe, int]) -> None:
        message, status = entry
        message.reply_to(message, status)
