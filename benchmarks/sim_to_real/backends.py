"""The backends of the sim-to-real check: single-worker FCFS servers on loopback.

Each backend is an HTTP server on 127.0.0.1 with one worker and a first-come first-served
queue, as an lbsim server with ``workers: 1`` and ``discipline: fcfs``. A request
``GET /?size=S`` asks for S seconds of work at speed 1; the worker serves it for S / speed
seconds (a sleep) and the reply says what was delivered, in headers:

- ``X-Server``: the backend's name;
- ``X-Wait``: seconds from the request's arrival until the worker was free for it;
- ``X-Service``: seconds the worker actually spent on it, from then until it was done:
  the requested S / speed plus the operating system's oversleep and the hand-over between
  threads, so the waits of the requests behind it are explained by the services before
  them (Lindley's recursion holds on the delivered values).

One asyncio event loop serves every backend's connections (keep-alive as the balancer asks,
so a balancer's open connections never stand in for the queue); each backend's worker is a
thread of its own, which sleeps through a service and spins through its last half
millisecond, because on this machine a sleep, and more so an event loop's timer, ends
0.15-0.5 ms after its due time, and every late finish would lengthen the waits behind it.

Usage: python -m benchmarks.sim_to_real.backends NAME=PORT:SPEED ...
It prints ``ready`` once every backend listens, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# Longest request head a backend reads (request line and headers).
HEAD_LIMIT = 16384
# The last part of a service a worker spins through rather than sleeps (seconds).
SPIN = 0.0005
# Python threads hand over the GIL every 5 ms by default; a spinning worker must let the
# event loop in sooner.
SWITCH_INTERVAL = 0.0002


def serve_until(due: float) -> None:
    """Return at ``due`` (time.perf_counter's clock), within microseconds."""
    rest = due - time.perf_counter()
    if rest > SPIN:
        time.sleep(rest - SPIN)
    while time.perf_counter() < due:
        pass


@dataclass
class Job:
    """One request's work, and what the worker delivered."""

    seconds: float
    arrived: float
    done: asyncio.Future[None]
    wait: float = 0.0
    service: float = 0.0


class Worker(threading.Thread):
    """The one worker of a backend: serves its jobs in arrival order, and hands each back
    to the event loop that is waiting for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(daemon=True)
        self.loop = loop
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()

    def run(self) -> None:
        free = 0.0  # when the worker finished its last job
        while True:
            job = self.jobs.get()
            start = max(job.arrived, free)
            serve_until(start + job.seconds)
            free = time.perf_counter()
            job.wait, job.service = start - job.arrived, free - start
            self.loop.call_soon_threadsafe(job.done.set_result, None)


def size_of(target: str) -> float | None:
    """The S of ``/?size=S``, or None when the target gives no finite one."""
    try:
        size = float(parse_qs(urlsplit(target).query)["size"][0])
    except (KeyError, ValueError):
        return None
    return max(size, 0.0) if math.isfinite(size) else None


def answer(status: str, headers: dict[str, str], body: bytes, close: bool) -> bytes:
    """An HTTP/1.1 response with ``body`` and ``headers``."""
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", f"Connection: {'close' if close else 'keep-alive'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def wants_close(head: list[str]) -> bool:
    """Whether the request (its request line and header lines) ends its connection:
    HTTP/1.0 unless it asks for keep-alive, HTTP/1.1 when it asks for close (RFC 9112 9.3)."""
    headers = http.client.parse_headers(io.BytesIO("\r\n".join([*head[1:], "", ""]).encode("latin-1")))
    connection = headers.get("Connection", "").lower()
    if head[0].endswith("HTTP/1.0"):
        return connection != "keep-alive"
    return connection == "close"


def backend(
    name: str, speed: float, worker: Worker
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """The connection handler of the backend ``name`` serving at ``speed``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                arrived = time.perf_counter()
                head = raw.decode("latin-1").rstrip("\r\n").split("\r\n")
                close = wants_close(head)
                parts = head[0].split()
                size = size_of(parts[1]) if len(parts) == 3 and parts[0] == "GET" else None
                if size is None:
                    writer.write(answer("400 Bad Request", {}, b"GET /?size=SECONDS\n", True))
                    await writer.drain()
                    return
                job = Job(size / speed, arrived, asyncio.get_running_loop().create_future())
                worker.jobs.put(job)
                await job.done
                headers = {"X-Server": name, "X-Wait": f"{job.wait:.6f}", "X-Service": f"{job.service:.6f}"}
                writer.write(answer("200 OK", headers, name.encode(), close))
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        except asyncio.CancelledError:
            # The backend stops (SIGTERM) with this connection open: end it quietly.
            return
        finally:
            writer.close()

    return serve


def parse(spec: str) -> tuple[str, int, float]:
    """``NAME=PORT:SPEED`` -> (name, port, speed)."""
    name, _, rest = spec.partition("=")
    port, _, speed = rest.partition(":")
    return name, int(port), float(speed)


async def serve_all(specs: list[str]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    servers = []
    for spec in specs:
        name, port, speed = parse(spec)
        worker = Worker(loop)
        worker.start()
        # A burst of new connections must queue in the kernel, not be refused.
        servers.append(
            await asyncio.start_server(
                backend(name, speed, worker), "127.0.0.1", port, backlog=1024, limit=HEAD_LIMIT
            )
        )
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(specs: list[str]) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    asyncio.run(serve_all(specs))


if __name__ == "__main__":
    main(sys.argv[1:])
