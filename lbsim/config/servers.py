"""``servers``: groups of identical backends, and slow start for one that returns."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from lbsim.config.base import Duration, Model
from lbsim.errors import ConfigError
from lbsim.limits import MAX_SERVERS_PER_GROUP


class SlowStartModel(Model):
    """Ramp a backend's weight up after it becomes eligible again (recovery, health, ejection end).

    ``envoy``: weight x max(min_weight_percent, (t / window)^(1 / aggression)), recomputed
    every window / 20. ``haproxy``: weight x ((16 t + S) // S) / 16 for t whole seconds and S
    the window rounded up to seconds, recomputed every second (server.c
    server_recalc_eweight and server_warmup).
    """

    window: Duration = Field(gt=0)
    style: Literal["envoy", "haproxy"] = "envoy"
    aggression: float = Field(1.0, gt=0)
    min_weight_percent: float = Field(10.0, ge=0, le=100)


class ServerGroup(Model):
    """A group of identical backends named ``<name>-0``, ``<name>-1``, ..."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.]*$")
    count: int = Field(1, ge=1, le=MAX_SERVERS_PER_GROUP)
    speed: float = Field(1.0, gt=0)
    workers: int = Field(1, ge=1)
    queue: int | None = Field(None, ge=0)
    # The status a server answers when its workers are busy and its queue is full: 503, or
    # 429 (Too Many Requests) as servers that shed load that way do.
    overload_status: Literal[503, 429] = 503
    discipline: Literal["fcfs", "ps"] = "fcfs"
    weight: int = Field(1, ge=1, le=256)
    zone: str | None = None
    region: str | None = None
    t_join: Duration = Field(0.0, ge=0)
    t_leave: Duration | None = Field(None, gt=0)
    max_connection_age: Duration | None = Field(None, gt=0)
    backup: bool = False
    slow_start: SlowStartModel | None = None
    # Each server's network address (``10.0.0.1:8080``), which consistent hashing hashes as
    # Envoy does (default: the server's name, as with Envoy's use_hostname_for_hashing).
    addresses: list[str] | None = None

    @model_validator(mode="after")
    def _one_address_each(self) -> ServerGroup:
        if self.addresses is not None and len(self.addresses) != self.count:
            raise ConfigError(
                f"must give one address per server ({self.count}); got {len(self.addresses)}.",
                key="addresses",
            )
        return self
