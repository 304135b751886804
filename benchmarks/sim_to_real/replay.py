"""An open-loop replay of a trace against one HTTP endpoint on loopback.

Each trace row ``(t_arrival, size)`` is sent at its scheduled time as ``GET /?size=S``
from one asyncio event loop, whose timers fire within tens of microseconds of their due
time (:func:`precise_loop`), and which reads the answers, any number at once. A
request goes out on an idle keep-alive connection when there is one and on a new
connection otherwise, as HTTP/1.1 clients do: on this machine a loopback connect costs
about half a millisecond, which no balancer's rule is about. A slow answer never delays a
later send: latency is measured from the scheduled send time, never from when the loop got
round to it, so there is no coordinated omission (a closed loop such as wrk's would hide
the queueing it causes). How late each send actually was is recorded too.
"""

from __future__ import annotations

import asyncio
import ctypes
import http.client
import io
import selectors
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPMessage

# The kernel's timer slack asked for, in nanoseconds (prctl PR_SET_TIMERSLACK, Linux).
TIMER_SLACK_NS = 1000
# A request unanswered after this long counts as failed (status 0).
TIMEOUT = 30.0
# The first send is this long after the replay starts.
LEAD = 0.2


def precise_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose timers are not rounded up to the millisecond: select(2) takes its
    timeout in microseconds (epoll's is in milliseconds), and the timer slack is 1 us (50 us
    by default). select(2) watches at most 1,024 descriptors, far more than the
    connections a replay keeps open."""
    ctypes.CDLL(None).prctl(29, TIMER_SLACK_NS)  # PR_SET_TIMERSLACK
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


@dataclass(frozen=True)
class Reply:
    """What one request met, times in seconds.

    Attributes:
        scheduled: when the trace said to send it, from the trace's time 0.
        late: how long after ``scheduled`` it was actually sent.
        latency: from ``scheduled`` to the end of the answer.
        status: the HTTP status, or 0 when no answer came.
        server: the backend that served it ("" without an answer).
        wait, service: the backend's queue wait and delivered service (its headers).
    """

    scheduled: float
    late: float
    latency: float
    status: int
    server: str
    wait: float
    service: float


def head_of(raw: bytes) -> tuple[int, HTTPMessage]:
    """An HTTP answer's status (0 if unreadable) and headers (the stdlib's parser), from its
    head: the status line and the header lines, through the blank line."""
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split()
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    return status, http.client.parse_headers(io.BytesIO(rest))


def reply_of(scheduled: float, late: float, latency: float, head: bytes) -> Reply:
    """The Reply of an HTTP answer whose head (status line and headers) is ``head``."""
    status, headers = head_of(head)
    return Reply(
        scheduled,
        late,
        latency,
        status,
        headers.get("X-Server", ""),
        float(headers.get("X-Wait", "0")),
        float(headers.get("X-Service", "0")),
    )


def length_and_close(head: bytes) -> tuple[int, bool]:
    """The answer's Content-Length, and whether it closes its connection (RFC 9112 9.6)."""
    _, headers = head_of(head)
    return int(headers.get("Content-Length", "0")), headers.get("Connection", "").lower() == "close"


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Client:
    """Sends requests to 127.0.0.1:``port`` from the event loop, over keep-alive
    connections: idle ones are reused, new ones opened when none is idle."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []

    async def exchange(self, size: float, scheduled: float, due: float) -> Reply:
        sent = time.perf_counter()

        def failed() -> Reply:
            return Reply(scheduled, sent - due, time.perf_counter() - due, 0, "", 0.0, 0.0)

        request = f"GET /?size={size!r} HTTP/1.1\r\nHost: lbsim\r\n\r\n".encode()
        try:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return failed()
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            length, close = length_and_close(head)
            await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
            end = time.perf_counter()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            return failed()
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return reply_of(scheduled, sent - due, end - due, head)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def _request(client: Client, size: float, scheduled: float, due: float) -> Reply:
    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    return await client.exchange(size, scheduled, due)


async def _replay(trace: Sequence[tuple[float, float]], port: int) -> list[Reply]:
    client = Client(port)
    origin = time.perf_counter() + LEAD
    try:
        return await asyncio.gather(*(_request(client, size, t, origin + t) for t, size in trace))
    finally:
        client.close()


def replay(trace: Sequence[tuple[float, float]], port: int) -> list[Reply]:
    """Send every ``(t_arrival, size)`` of ``trace`` to 127.0.0.1:``port`` on schedule;
    return the replies in trace order."""
    with asyncio.Runner(loop_factory=precise_loop) as runner:
        return runner.run(_replay(trace, port))
