"""What travels between the engine's parts besides a client's request: attempts and probes.

A client's :class:`~lbsim.workload.Request` is what it asks for (and what policies see). A
balancer instance sends an :class:`Attempt` of it to a backend, one per try (retries and
hedges make more), and a health checker sends a :class:`Probe`. A backend answers either by
calling its ``reply_to(message, status)``: the one way answers travel. A server or a gate to
a balancer tier below is an :class:`Endpoint`: it accepts a :class:`Job`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lbsim.engine.balancer.connections import Connection
    from lbsim.engine.balancer.retries import Call
    from lbsim.policies.base import Backend
    from lbsim.workload import Request


class Attempt:
    """One try of a client's request at one backend, sent by one balancer instance.

    ``reply_to(attempt, status)`` takes the backend's answer. ``t_start`` is when a server
    started serving it (NaN until then); ``served_by`` is the server that served it when the
    backend is a balancer tier below (-1 otherwise, or until known).
    """

    __slots__ = (
        "abandoned", "backend", "call", "connection", "crossed", "index", "reply_to", "request", "retry",
        "served_by", "size", "t_sent", "t_start",
    )  # fmt: skip

    def __init__(
        self, request: Request, reply_to: Callable[[Any, int], None], connection: Connection | None = None
    ) -> None:
        self.request = request
        self.index = request.index
        self.size = request.size
        self.reply_to = reply_to
        self.connection = connection
        self.backend: Backend | None = None
        # With retries: the call it is a try of, whether it is a retry, and whether its
        # sender gave up on it (a try timeout), so its late answer is not counted.
        self.call: Call | None = None
        self.retry = False
        self.abandoned = False
        self.t_sent = 0.0
        self.t_start = math.nan
        self.served_by = -1
        # Sent to a backend in another zone: its answer crosses back first.
        self.crossed = False


class Probe:
    """A health check of backend number ``server``, sent at ``t_sent``: ``size`` seconds of
    work at speed 1."""

    __slots__ = ("crossed", "index", "reply_to", "served_by", "server", "size", "t_sent", "t_start")

    def __init__(
        self, index: int, server: int, size: float, t_sent: float, reply_to: Callable[[Any, int], None]
    ) -> None:
        self.index = index
        self.server = server
        self.size = size
        self.t_sent = t_sent
        self.reply_to = reply_to
        self.t_start = math.nan
        # Through a balancer tier below: the server that answered it.
        self.served_by = -1
        self.crossed = False


class Job(Protocol):
    """What a server serves: an attempt of a request, or a health-check probe."""

    index: int
    size: float
    t_start: float
    crossed: bool
    reply_to: Callable[[Any, int], None]


class Endpoint(Protocol):
    """A backend as the balancer sends to it: a server, or a gate to a balancer tier below."""

    name: str

    @property
    def active(self) -> int: ...

    def work_left(self) -> float: ...

    def accept(self, message: Attempt | Probe) -> None: ...
