"""Client connections to a balancer instance, and at layer 4, to one backend each.

A client opens a connection with its first request (paying the TLS handshake, when there is
one) and keeps it for ``workload.connection.requests`` requests or its ``lifetime``. At
layer 4 the balancer picks a backend when a connection opens and every request on it goes
there; the backend's ``active`` counts open connections, and a server with
``max_connection_age`` closes them after that age (+-10%, as gRPC's MAX_CONNECTION_AGE).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lbsim.engine.balancer.pools import Pool
from lbsim.engine.balancer.stage import Stage
from lbsim.engine.clock import Clock
from lbsim.engine.messages import Attempt
from lbsim.policies.base import Backend
from lbsim.workload import Request


class Connection:
    """A client's connection to one balancer instance (and at layer 4, to one backend)."""

    __slots__ = ("backend", "client", "counted", "first", "n_left", "open", "outstanding", "pool", "t_open")

    def __init__(self, client: int, n_left: int, first: Request, t_open: float) -> None:
        self.client = client
        self.n_left = n_left
        self.first = first
        self.t_open = t_open
        self.open = True
        self.outstanding = 0
        self.backend: Backend | None = None
        self.pool: Pool | None = None
        self.counted = False


class Connections(Stage):
    """Opens, reuses and closes the client connections of one instance."""

    def __init__(
        self,
        clock: Clock,
        requests: int,
        lifetime: float | None,
        max_age: Sequence[float | None],
        age_rng: np.random.Generator,
    ) -> None:
        """``requests``: requests per connection (0: unlimited); ``max_age``: each server's
        connection age limit (layer 4)."""
        self.clock = clock
        self.requests = requests
        self.lifetime = lifetime
        self.max_age = list(max_age)
        self.age_rng = age_rng
        self.open: dict[int, Connection] = {}

    def send(self, attempt: Attempt) -> None:
        request = attempt.request
        connection = self.open.get(request.client)
        if connection is None or not connection.open:
            connection = Connection(request.client, self.requests, request, self.clock.now)
            self.open[request.client] = connection
            if self.lifetime is not None:
                self._close_at(connection, self.lifetime)
        attempt.connection = connection
        connection.outstanding += 1
        if connection.n_left > 0:
            connection.n_left -= 1
            if connection.n_left == 0:
                connection.open = False
        self.forward(attempt)

    def answer(self, attempt: Attempt, index: int, status: int) -> None:
        connection = attempt.connection
        assert connection is not None
        connection.outstanding -= 1
        if not connection.open and connection.outstanding == 0:
            self._close(connection)
        self.reply(attempt, index, status)

    def pinned(self, attempt: Attempt, pool: Pool) -> Backend:
        """Layer 4: the backend of the attempt's connection, chosen when the connection opens."""
        connection = attempt.connection
        assert connection is not None
        backend = connection.backend
        if backend is not None and backend.index in pool.present:
            return backend
        self._close(connection)
        backend = pool.pick(attempt.request)
        connection.backend, connection.pool, connection.counted = backend, pool, True
        backend.active += 1
        if pool.on_dispatch is not None:
            pool.on_dispatch(backend, attempt.request)
        age = self.max_age[backend.index]
        if age is not None:
            # gRPC MAX_CONNECTION_AGE: the server closes the connection after age +-10%.
            self._close_at(connection, age * self.age_rng.uniform(0.9, 1.1))
        return backend

    def _close_at(self, connection: Connection, delay: float) -> None:
        self.clock.schedule(delay, self._expire, connection)

    def _expire(self, connection: Connection) -> None:
        connection.open = False
        self._close(connection)

    def _close(self, connection: Connection) -> None:
        """Layer 4: the connection no longer counts on its backend."""
        if not connection.counted:
            return
        connection.counted = False
        backend = connection.backend
        assert backend is not None and connection.pool is not None
        backend.active -= 1
        if connection.pool.on_complete is not None:
            connection.pool.on_complete(backend, connection.first, self.clock.now - connection.t_open, True)
