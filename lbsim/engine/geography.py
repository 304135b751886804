"""Regions, the network between them and global DNS load balancing (GSLB).

A client lives in a region; its resolver asks the DNS balancer which region to use and
keeps the answer for the TTL (longer, for the share of resolvers with a TTL floor; a
client's first answer has a random part of its TTL left, as a shared resolver's), so a
failed region keeps receiving its cached clients until their answers expire. The DNS
balancer checks every region on a fixed interval, from one region: a check crosses the
network to the region, sees its state on arrival and crosses back with the verdict. A
region is down after ``fall`` checks find no server up (or none of the balancer instances
its clients reach), and up again after ``rise`` checks find both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lbsim.engine.clock import Clock
from lbsim.engine.health import Log
from lbsim.engine.network import Network
from lbsim.engine.server import Server
from lbsim.engine.settings import Dns

# Weight of a new RTT sample in the DNS balancer's measured RTT (latency policy).
RTT_SMOOTHING = 0.3
# Spreads clients evenly over the TTL floor share: client k is a floor client when the
# fractional part of (k + 1) x this constant falls below the share (a low-discrepancy sequence).
_GOLDEN = (math.sqrt(5) - 1) / 2


class Geography:
    """Where each request goes and how long it travels, for one run."""

    def __init__(
        self,
        clock: Clock,
        names: Sequence[str],
        client_region: np.ndarray,
        server_region: np.ndarray,
        dns: Dns,
        servers: list[Server],
        network: Network,
        dns_rng: np.random.Generator,
        log: Log,
        entry_up: Callable[[int], bool],
    ) -> None:
        """Regions ``names``; ``client_region[k]`` is client k's region number and
        ``server_region[k]`` server k's. ``entry_up(r)``: whether some balancer instance where
        region ``r``'s requests arrive is up."""
        self.clock = clock
        self.names = list(names)
        n = len(self.names)
        self.network = network
        self.rtt = network.rtt
        self.dns_rng = dns_rng
        self.client_region = client_region.tolist()
        self.members = [[s for s in servers if server_region[s.index] == r] for r in range(n)]
        self.dns = dns
        self.ttl = dns.ttl
        self.floor_ttl = dns.floor_ttl
        self.floor_share = dns.floor_share
        self.weights = np.array(dns.weights)
        self.cache: dict[int, tuple[int, float]] = {}
        self.up = [True] * n
        self.passes = [0] * n
        self.fails = [0] * n
        self.measured = self.rtt.copy()
        self.checker = dns.health_check.region
        self.log = log
        self.entry_up = entry_up
        # By RTT from each client region: the regions in the order geo fails over to them.
        self.nearest = [self._by_distance(a) for a in range(n)]
        clock.schedule(0.0, self._check)

    def _by_distance(self, home: int) -> list[int]:
        return sorted(range(len(self.names)), key=lambda r: (r != home, float(self.rtt[home][r]), r))

    def resolve(self, client: int) -> int:
        """The region ``client``'s resolver answers with now (cached until its TTL ends)."""
        now = self.clock.now
        cached = self.cache.get(client)
        if cached is not None and cached[1] > now:
            return cached[0]
        region = self._answer(self.client_region[client])
        floor = math.modf((client + 1) * _GOLDEN)[0] < self.floor_share
        ttl = self.floor_ttl if floor else self.ttl
        if cached is None:
            # The resolver already held the answer for an earlier client: a uniformly random
            # part of its TTL is left, so caches do not all expire together.
            ttl *= 1 - float(self.dns_rng.random())
        self.cache[client] = (region, now + ttl)
        return region

    def _answer(self, home: int) -> int:
        up = [r for r in range(len(self.names)) if self.up[r]]
        if not up:
            return home
        policy = self.dns.policy
        if policy == "geo":
            return next(r for r in self.nearest[home] if self.up[r])
        if policy == "latency":
            return min(up, key=lambda r: (self.measured[home][r], r))
        weights = self.weights[up]
        return int(up[int(self.dns_rng.choice(len(up), p=weights / weights.sum()))])

    def _check(self, _: object) -> None:
        for r in range(len(self.names)):
            self.clock.schedule(self.network.one_way(self.checker, r), self._check_arrives, r)
        if self.dns.policy == "latency":
            for a in range(len(self.names)):
                for b in range(len(self.names)):
                    sample = self.rtt[a][b] + 2 * self.network.jittered()
                    self.measured[a][b] += RTT_SMOOTHING * (sample - self.measured[a][b])
        self.clock.schedule(self.dns.health_check.interval, self._check)

    def _check_arrives(self, r: int) -> None:
        alive = self.entry_up(r) and any(not s.crashed and not s.hung for s in self.members[r])
        delay = self.network.one_way(r, self.checker)
        self.clock.schedule(delay, self._verdict, (r, alive))

    def _verdict(self, entry: tuple[int, bool]) -> None:
        r, alive = entry
        config = self.dns.health_check
        if alive:
            self.passes[r], self.fails[r] = self.passes[r] + 1, 0
            if not self.up[r] and self.passes[r] >= config.rise:
                self.up[r] = True
                self.log("dns", f"region:{self.names[r]}", "up")
        else:
            self.passes[r], self.fails[r] = 0, self.fails[r] + 1
            if self.up[r] and self.fails[r] >= config.fall:
                self.up[r] = False
                self.log("dns", f"region:{self.names[r]}", "down")
