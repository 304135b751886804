"""How a request ends, and how one attempt of it can fail: one set of numbers, one place.

The first six are the terminal statuses every request ends with exactly once, in the order of
the summary's count columns; the seventh, ``in_flight``, is a request's when the run stopped
before it ended (the last count column, and its status in kept records). The others are
outcomes of an attempt that retries and passive health checks tell apart but a client counts
as one of the first six: a refused or reset connection (Envoy's ``connect-failure`` and
``reset``), and the answers a balancer tier below gives when it could not get one from its
own backends (502, 504) or passes on a server's 429 (NGINX's ``proxy_next_upstream http_502
http_504 http_429``).
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
    IN_FLIGHT = 6  # not ended when the run stopped
    CONNECT_FAILURE = 7  # the server refused the connection (an error to the client)
    RESET = 8  # the server crashed while holding the attempt (an error to the client)
    BAD_GATEWAY = 9  # 502 from a balancer below: it lost or could not reach its backend
    GATEWAY_TIMEOUT = 10  # 504 from a balancer below: its backend timed out
    TOO_MANY_REQUESTS = 11  # 429: a server shedding load (rejected, to the client)


# The engine passes statuses as plain ints: an enum member is slower to compare, index with
# and write into a numpy column, once or more per request.
(
    OK, ERROR, REJECTED, TIMEOUT, NO_BACKEND, DROPPED, IN_FLIGHT, CONNECT_FAILURE, RESET, BAD_GATEWAY,
    GATEWAY_TIMEOUT, TOO_MANY_REQUESTS,
) = (int(status) for status in Status)  # fmt: skip

# The statuses of requests as the result tables spell them (count columns, kept records).
STATUSES: tuple[str, ...] = tuple(status.name.lower() for status in Status if status <= IN_FLIGHT)


# The status a client sees for each status: a refused or reset connection, a 502 and a 504
# are errors; a 429 is a rejection.
FINAL_STATUS: tuple[int, ...] = (
    OK, ERROR, REJECTED, TIMEOUT, NO_BACKEND, DROPPED, IN_FLIGHT, ERROR, ERROR, ERROR, ERROR, REJECTED,
)  # fmt: skip
