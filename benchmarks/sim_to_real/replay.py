"""An open-loop replay of a trace against one HTTP endpoint on loopback.

Each trace row ``(t_arrival, size)`` is sent at its scheduled time as ``GET /?size=S`` on a
new connection (each request a new client, as lbsim's open-loop clients), from a pool of
threads, so a slow answer never delays a later send: latency is measured from the
scheduled send time, never from when a thread got round to it, so there is no coordinated
omission (a closed loop such as wrk's would hide the queueing it causes). How late each
send actually was is recorded too.
"""

from __future__ import annotations

import http.client
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from benchmarks.sim_to_real.backends import SWITCH_INTERVAL

# Threads that may wait on answers at once: far more than the requests in flight at 70%
# load (a few tens at the worst bursts).
SENDERS = 256
# A request unanswered after this long counts as failed (status 0).
TIMEOUT = 30.0
# The first send is this long after the replay starts, so every sender is ready.
LEAD = 0.2


@dataclass(frozen=True)
class Reply:
    """What one request met, times in seconds.

    Attributes:
        scheduled: when the trace said to send it, from the trace's time 0.
        late: how long after ``scheduled`` it was actually sent.
        latency: from ``scheduled`` to the last byte of the answer.
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


def _send(port: int, size: float, scheduled: float, origin: float) -> Reply:
    sent = time.perf_counter()
    due = origin + scheduled
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        connection.request("GET", f"/?size={size!r}", headers={"Connection": "close"})
        answer = connection.getresponse()
        answer.read()
        end = time.perf_counter()
        connection.close()
    except OSError:
        return Reply(scheduled, sent - due, time.perf_counter() - due, 0, "", 0.0, 0.0)
    return Reply(
        scheduled,
        sent - due,
        end - due,
        answer.status,
        answer.getheader("X-Server", ""),
        float(answer.getheader("X-Wait", "0")),
        float(answer.getheader("X-Service", "0")),
    )


def replay(trace: Sequence[tuple[float, float]], port: int) -> list[Reply]:
    """Send every ``(t_arrival, size)`` of ``trace`` to 127.0.0.1:``port`` on schedule;
    return the replies in trace order."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with ThreadPoolExecutor(SENDERS) as senders:
            origin = time.perf_counter() + LEAD
            futures = []
            for scheduled, size in trace:
                delay = origin + scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(senders.submit(_send, port, size, scheduled, origin))
            return [future.result() for future in futures]
    finally:
        sys.setswitchinterval(previous)
