"""The policy contract: what a balancing algorithm sees of the backends and must decide.

A policy chooses a backend for each request from what one balancer instance could know,
exactly as a production balancer does. It never sees simpy objects.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from lbsim.errors import ConfigError, shown
from lbsim.workload import Request

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class Backend:
    """A balancer instance's read-only view of one backend server.

    Attributes:
        index: position of the server in the whole fleet (0-based, stable for a run).
        name: server name, for example ``web-3``.
        weight: current weight: the configured one, less during a slow start.
        zone: zone label, or None.
        address: the server's network address, which consistent hashing hashes (its name
            unless the scenario gives ``addresses``).
        active: requests outstanding from this balancer instance to this backend (open
            connections, at layer 4).

    Oracle policies, which exist as theoretical bounds, may also read the server's true
    state across every balancer instance: :attr:`in_system` and :attr:`work_left`.

    Only the engine writes these fields; a policy that writes them breaks the contract
    (``lbsim.testing.check_policy`` catches it).
    """

    __slots__ = ("_server", "active", "address", "index", "name", "weight", "zone")

    def __init__(
        self,
        index: int,
        name: str,
        weight: float = 1,
        zone: str | None = None,
        server: Any = None,
        address: str | None = None,
    ) -> None:
        self.index = index
        self.name = name
        self.address = name if address is None else address
        self.weight = weight
        self.zone = zone
        self.active = 0
        self._server = server

    @property
    def in_system(self) -> int:
        """Oracle: requests at the server from every balancer instance (``active`` without a server)."""
        return self.active if self._server is None else int(self._server.active)

    @property
    def work_left(self) -> float:
        """Oracle: seconds of service the server still owes to the requests it holds."""
        return 0.0 if self._server is None else float(self._server.work_left())

    def __repr__(self) -> str:
        return f"Backend(index={self.index}, name={self.name!r}, weight={self.weight}, active={self.active})"


class Policy:
    """Base class of balancing policies.

    Subclasses take only their parameters in the constructor (keyword, with defaults,
    stored unchanged under the same names), set run state in :meth:`reset` and
    :meth:`update`, and choose in :meth:`choose`, the hot path.
    """

    name: ClassVar[str]
    rule: ClassVar[str]

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        """Start a run over ``backends`` (all eligible), drawing any randomness from ``rng``."""
        self.rng = rng
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        """The set of eligible backends changed (health, ejection, faults, scaling); never empty."""
        raise NotImplementedError

    def choose(self, request: Request) -> Backend:
        """Return the backend for ``request``; one of the eligible backends."""
        raise NotImplementedError

    def on_dispatch(self, backend: Backend, request: Request) -> None:
        """The request was sent to ``backend`` (its ``active`` already counts it)."""

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        """The request sent to ``backend`` ended (its ``active`` no longer counts it)."""

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Return the constructor's parameters and their defaults."""
        return {
            name: parameter.default
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and parameter.kind in _NAMED
        }

    def params(self) -> dict[str, Any]:
        """Return this policy's parameter values."""
        return {name: getattr(self, name) for name in self.parameters()}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}({args})"

    def label(self) -> str:
        """The policy's name in result tables: ``p2c`` or ``p2c(choices=3)`` when not default."""
        changed = {key: value for key, value in self.params().items() if value != self.parameters()[key]}
        if not changed:
            return self.name
        return f"{self.name}({', '.join(f'{key}={value}' for key, value in changed.items())})"


def whole(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is an integer from ``low`` to ``high`` (true and false are not: YAML's
    true would otherwise count as 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def number(value: object, low: float, high: float = math.inf) -> bool:
    """Whether ``value`` is a finite number from ``low`` to ``high`` (not true or false)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def require(condition: bool, policy: str, parameter: str, rule: str, value: object) -> None:
    """Raise ConfigError ``<policy>: <parameter> must be <rule>; got <value>.`` unless ``condition``."""
    if not condition:
        raise ConfigError(f"{policy}: {parameter} must be {rule}; got {shown(value)}.")


def smooth_pick(current: dict[Any, float], weights: Iterable[tuple[Any, float]]) -> Any:
    """One step of NGINX's smooth weighted round robin (ngx_http_upstream_get_peer) over
    ``(key, weight)`` pairs: each key adds its weight to its ``current`` weight; the largest
    (the first on ties) wins and pays the total weight. Returns the winning key."""
    total, best, best_current = 0.0, None, -math.inf
    for key, weight in weights:
        value = current.get(key, 0.0) + weight
        current[key] = value
        total += weight
        if value > best_current:
            best, best_current = key, value
    current[best] -= total
    return best
