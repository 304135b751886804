"""``regions``, ``network`` and ``dns``: where clients and servers are, the round trips
between regions, and global DNS load balancing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from lbsim.config.base import Dist, Duration, Model


class RegionModel(Model):
    """A region: the share of the clients that are in it (their requests are that share of the traffic
    when clients are picked uniformly)."""

    clients: float = Field(ge=0, le=1)


class NetworkModel(Model):
    """Round-trip times between regions (``us-eu: 80ms``, either order), within a region
    (``local``; without regions, between the clients and the balancer), between two zones of a
    region (``cross_zone``: a balancer instance's requests and probes to a backend in another
    zone; 0 leaves them undelayed), and a ``jitter`` distribution added to every one-way
    crossing."""

    rtt: dict[str, Duration] = Field(default_factory=dict)
    local: Duration = Field(0.0, ge=0)
    cross_zone: Duration = Field(0.0, ge=0)
    jitter: Dist | None = None


class TtlFloorModel(Model):
    """The ``share`` of clients whose resolvers keep an answer at least ``ttl`` whatever it says."""

    share: float = Field(gt=0, le=1)
    ttl: Duration = Field(gt=0)


class RegionCheckModel(Model):
    """The DNS balancer's checks of each region, sent from ``region`` (the first region when
    not given) every ``interval``: down after ``fall`` failed checks (no server up), up again
    after ``rise`` passed ones."""

    interval: Duration = Field(10.0, gt=0)
    fall: int = Field(3, ge=1)
    rise: int = Field(2, ge=1)
    region: str | None = None


class DnsModel(Model):
    """Global DNS load balancing (GSLB): which region a client's name resolves to, and for how long.

    ``geo``: the client's own region, or the nearest healthy one by RTT. ``latency``: the
    healthy region with the lowest RTT measured by the checks (jitter included).
    ``weighted``: a healthy region at random by ``weights``.
    """

    policy: Literal["geo", "latency", "weighted"] = "geo"
    ttl: Duration = Field(60.0, gt=0)
    ttl_floor: TtlFloorModel | None = None
    weights: dict[str, float] | None = None
    health_check: RegionCheckModel = RegionCheckModel()
