"""``workload``: how requests arrive, their sizes, the clients that send them, their
connections and timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lbsim.config.base import Dist, Duration, Model, Rate, Unit, safe, scenario_folder
from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.input_files import input_path
from lbsim.limits import MAX_CLIENTS
from lbsim.units import parse_rate, parse_share
from lbsim.workload import (
    Clients,
    ClosedUsers,
    DeterministicArrivals,
    DiurnalArrivals,
    MarkovModulatedArrivals,
    OpenArrivals,
    PoissonArrivals,
    RequestAttributes,
    TraceArrivals,
)

_ARRIVAL_KEYS = {
    "poisson": set(),
    "deterministic": set(),
    "mmpp": {"rates", "stays"},
    "diurnal": {"amplitude", "period"},
    "trace": {"file"},
    "closed": {"users", "think"},
}


class Arrivals(Model):
    """How requests arrive: ``poisson`` (default), ``deterministic``, ``mmpp``, ``diurnal``,
    ``trace`` or ``closed``; a bare name stands for ``{kind: name}``."""

    kind: str = "poisson"
    rates: list[Rate] | None = None
    stays: list[Duration] | None = None
    amplitude: float | None = Field(None, ge=0, le=1)
    period: Duration | None = Field(None, gt=0)
    file: str | None = None
    users: int | None = Field(None, ge=1)
    think: Dist | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _keys_of_kind(self, info: ValidationInfo) -> Arrivals:
        if self.kind not in _ARRIVAL_KEYS:
            raise ConfigError(str(UnknownNameError("arrival kind", self.kind, _ARRIVAL_KEYS)), key="kind")
        wanted = _ARRIVAL_KEYS[self.kind]
        for key in sorted(set(type(self).model_fields) - {"kind"}):
            given = getattr(self, key) is not None
            if key in wanted and not given:
                raise ConfigError(f"must be given for arrivals of kind {self.kind!r}; got nothing.", key=key)
            if given and key not in wanted:
                raise ConfigError(
                    f"must not be given for arrivals of kind {self.kind!r}; got {shown(getattr(self, key))}.",
                    key=key,
                )
        if self.kind == "mmpp":
            rates, stays = self.rates or [], self.stays or []
            if len(rates) != len(stays) or not rates:
                raise ConfigError(
                    f"must have one stay per rate; got {len(rates)} rates and {len(stays)} stays.",
                    key="stays",
                )
            if min(rates) < 0 or max(rates) <= 0:
                raise ConfigError(f"must be >= 0 with one > 0; got {shown(rates)}.", key="rates")
            if min(stays) <= 0:
                raise ConfigError(f"must all be > 0; got {shown(stays)}.", key="stays")
        if self.kind == "trace" and self.file is not None:
            try:
                path = input_path(self.file, scenario_folder(info), confined=safe(info))
                TraceArrivals.from_file(path)
            except ConfigError as exc:
                raise ConfigError(str(exc), key="file") from None
            object.__setattr__(self, "file", str(path.resolve()))
        return self


class ClientsModel(Model):
    """Distinct client addresses: ``count``, picked uniformly or Zipf-skewed (``zipf`` exponent)."""

    count: int = Field(1000, ge=1, le=MAX_CLIENTS)
    zipf: float = Field(0.0, ge=0)
    # Session numbers (client x sessions + k) are kept as 64-bit integers.
    sessions: int = Field(1, ge=1, le=MAX_CLIENTS)

    @model_validator(mode="before")
    @classmethod
    def _from_count(cls, data: Any) -> Any:
        return {"count": data} if isinstance(data, int) and not isinstance(data, bool) else data


def _shares(value: Any) -> Any:
    if isinstance(value, Mapping):
        for key, share in value.items():
            if isinstance(share, bool) or not isinstance(share, int | float) or share < 0:
                raise ConfigError(f"must map each name to a share >= 0; got {shown(key)}: {shown(share)}.")
        if sum(value.values()) > 1 + 1e-9:
            raise ConfigError(f"must have shares that sum to at most 1; got {sum(value.values()):g}.")
    return value


Shares = Annotated[dict[str, float], BeforeValidator(_shares)]


class ConnectionModel(Model):
    """How long a client keeps a connection to the balancer: ``requests`` per connection or a
    ``lifetime``; with neither, connections stay open for the whole run."""

    requests: int | None = Field(None, ge=1)
    lifetime: Duration | None = Field(None, gt=0)


@dataclass(frozen=True, slots=True)
class CapacityShare:
    """A rate written as a share of the fleet's capacity (``rate: 80%``), until the scenario
    resolves it into requests per second (:meth:`lbsim.config.scenario.Scenario.capacity`)."""

    share: float

    def __repr__(self) -> str:
        return f"'{100 * self.share:g}%'"


def _rate_or_share(value: object) -> float | CapacityShare:
    """``"80%"`` -> CapacityShare(0.8); any other value a rate (:func:`parse_rate`), > 0."""
    if isinstance(value, str) and value.strip().endswith("%"):
        share = parse_share(value)
        if share <= 0:
            raise ConfigError(f"must be a share of capacity > 0%; got {shown(value)}.")
        return CapacityShare(share)
    rate = parse_rate(value)
    if rate <= 0:
        raise ConfigError(f"must be > 0; got {shown(value)}.")
    return rate


class Workload(Model):
    """The clients: arrival process, request sizes, client addresses, request attributes.
    ``rate`` is requests per second, or a share of the fleet's capacity (``80%``) that the
    scenario resolves."""

    arrivals: Arrivals = Arrivals()
    rate: Annotated[float | CapacityShare, BeforeValidator(_rate_or_share), Unit("/s")] | None = None
    size: Dist
    clients: ClientsModel = ClientsModel()
    timeout: Duration | None = Field(None, gt=0)
    paths: Shares | None = None
    headers: dict[str, Shares] | None = None
    connection: ConnectionModel = ConnectionModel()

    @field_validator("paths")
    @classmethod
    def _paths_sum_to_one(cls, paths: dict[str, float] | None) -> dict[str, float] | None:
        if paths is not None and abs(sum(paths.values()) - 1) > 1e-9:
            raise ConfigError(f"must have shares that sum to 1; got {sum(paths.values()):g}.")
        return paths

    @model_validator(mode="after")
    def _rate_of_kind(self) -> Workload:
        needs_rate = self.arrivals.kind in {"poisson", "deterministic", "diurnal"}
        if needs_rate and self.rate is None:
            raise ConfigError(
                f"must be given for arrivals of kind {self.arrivals.kind!r}; got nothing.",
                key="rate",
            )
        if not needs_rate and self.rate is not None:
            raise ConfigError(
                f"must not be given for arrivals of kind {self.arrivals.kind!r} "
                f"(their rate comes from the arrivals); got {shown(self.rate)}.",
                key="rate",
            )
        return self

    def process(self) -> OpenArrivals | ClosedUsers:
        """Return the arrival process this workload describes."""
        a = self.arrivals
        if a.kind == "poisson":
            return PoissonArrivals(self.rate)  # type: ignore[arg-type]
        if a.kind == "deterministic":
            return DeterministicArrivals(self.rate)  # type: ignore[arg-type]
        if a.kind == "diurnal":
            return DiurnalArrivals(self.rate, a.amplitude, a.period)  # type: ignore[arg-type]
        if a.kind == "mmpp":
            return MarkovModulatedArrivals(tuple(a.rates), tuple(a.stays))  # type: ignore[arg-type]
        if a.kind == "trace":
            return TraceArrivals.from_file(Path(a.file))  # type: ignore[arg-type]
        return ClosedUsers(a.users, a.think)  # type: ignore[arg-type]

    def clients_model(self) -> Clients:
        """Return the client population."""
        return Clients(self.clients.count, self.clients.zipf)

    def attributes(self) -> RequestAttributes:
        """Return what requests carry beyond their size."""
        return RequestAttributes(
            self.clients.sessions,
            tuple((self.paths or {}).items()),
            tuple((name, tuple(values.items())) for name, values in (self.headers or {}).items()),
        )
