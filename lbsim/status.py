"""How a request ends, and how one attempt of it can fail: one set of numbers, one place.

The first six are the terminal statuses every request ends with exactly once, in the order of
the summary's count columns. The last two are outcomes of an attempt that a client sees as an
error but that retries tell apart (Envoy's ``connect-failure`` and ``reset``).
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """The outcome of a request (terminal) or of one attempt at a backend."""

    OK = 0
    ERROR = 1  # a 5xx from a server (or a balancer below)
    REJECTED = 2  # queue full, circuit open, or a limit reached
    TIMEOUT = 3  # the client, or a try timeout, gave up
    NO_BACKEND = 4  # no eligible backend: the balancer answers 503
    DROPPED = 5  # the balancer instance was down
    CONNECT_FAILURE = 6  # the server refused the connection (an error to the client)
    RESET = 7  # the server crashed while holding the attempt (an error to the client)


OK, ERROR, REJECTED, TIMEOUT, NO_BACKEND, DROPPED, CONNECT_FAILURE, RESET = Status

# The terminal statuses' names, as the result tables spell them.
STATUSES: tuple[str, ...] = tuple(status.name.lower() for status in Status if status <= DROPPED)


# The status a client sees for each status: a refused or reset connection is an error.
FINAL_STATUS: tuple[Status, ...] = (OK, ERROR, REJECTED, TIMEOUT, NO_BACKEND, DROPPED, ERROR, ERROR)
