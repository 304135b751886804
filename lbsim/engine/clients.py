"""The clients of a run: open-loop arrivals drawn ahead, or closed-loop users who think,
send and wait for the answer before thinking again.

Each makes the client's requests (with their session, path and headers) and hands them to
``send``; the run tells closed-loop users when their request ended.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np

from lbsim.distributions import Distribution
from lbsim.draws import Draws
from lbsim.engine.clock import Clock
from lbsim.workload import ClosedUsers, Request, RequestAttributes

Send = Callable[[Request], None]


class Requests:
    """Numbers the requests of a run and gives them the client's attributes."""

    def __init__(
        self, clock: Clock, attributes: RequestAttributes, streams: dict[str, np.random.Generator]
    ) -> None:
        self.clock = clock
        self.attributes = attributes
        self.sessions = Draws(lambda n: attributes.session_draws(n, streams["sessions"]))
        self.paths = Draws(lambda n: attributes.path_draws(n, streams["paths"]))
        # The number of each new request, in the order they are made.
        self.numbers = itertools.count()
        # Whether requests carry only their size and client (nothing to draw for them).
        self.plain = attributes == RequestAttributes()

    def make(self, t: float, size: float, client: int) -> Request:
        """A new request of ``size`` from ``client``, arriving at ``t``."""
        request = Request(next(self.numbers), t, size, client, self.clock)
        attributes = self.attributes
        if attributes.sessions > 1:
            request.session = client * attributes.sessions + self.sessions.next()
        if attributes.paths:
            request.path = self.paths.next()
        if attributes.headers:
            request.headers = attributes.headers_of(client)
        return request


class OpenLoopClients:
    """Requests at the instants, with the sizes and clients, of ``arrivals`` (drawn ahead)."""

    def __init__(
        self,
        clock: Clock,
        arrivals: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]],
        requests: Requests,
        send: Send,
    ) -> None:
        clock.arrivals(_requests(arrivals, requests), send)


class ClosedLoopUsers:
    """``users.users`` users, each thinking (``users.think``), then sending one request of a
    ``size`` drawn from ``sizes`` and waiting for it to end, while the run is open."""

    def __init__(
        self,
        clock: Clock,
        users: ClosedUsers,
        size: Distribution,
        streams: dict[str, np.random.Generator],
        requests: Requests,
        send: Send,
    ) -> None:
        self.clock = clock
        self.requests = requests
        self.send = send
        self.open = True
        self.sizes = Draws(lambda n: size.sample(streams["sizes"], n))
        self.thinks = Draws(lambda n: users.think.sample(streams["think"], n))
        for user in range(users.users):
            self.ended(user)

    def stop(self) -> None:
        """The run is closed: users send no more requests."""
        self.open = False

    def ended(self, client: int) -> None:
        """User ``client``'s request ended: it thinks, then sends the next."""
        if self.open:
            self.clock.schedule(self.thinks.next(), self._sends, client)

    def _sends(self, user: int) -> None:
        if self.open:
            self.send(self.requests.make(self.clock.now, self.sizes.next(), user))


def _requests(
    blocks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]], requests: Requests
) -> Iterator[tuple[np.ndarray, Iterator[Request]]]:
    """Each block's arrival times with its requests, each made when its arrival is numbered
    (when the arrival before it happens)."""
    for times, sizes, clients in blocks:
        args = (times.tolist(), sizes.tolist(), clients.tolist())
        # Plain requests (nothing to draw for them) are made without a call to make.
        made = (
            map(Request, requests.numbers, *args, itertools.repeat(requests.clock))
            if requests.plain
            else map(requests.make, *args)
        )
        yield times, made
