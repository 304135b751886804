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

Usage: python -m benchmarks.sim_to_real.backends NAME=PORT:SPEED ... (or --help)
It prints ``ready`` once every backend listens, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import math
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

USAGE = "python -m benchmarks.sim_to_real.backends NAME=PORT:SPEED ..."
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


# The slowest and fastest a backend may serve (times speed 1): a service of MAX_SIZE at the
# slowest, 3.6e6 s, is still a time the operating system can sleep until.
SPEEDS = (0.001, 1000.0)
# The most work a request may ask for (seconds at speed 1): an hour, far above any trace's.
MAX_SIZE = 3600.0
# The longest request body a backend reads and discards (bytes).
MAX_BODY = 1 << 20


class Refused(Exception):
    """A request the backend does not serve: its ``status`` line and a one-line ``reason``;
    the connection ends after the answer."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Asked:
    """A request the backend serves: ``size`` seconds of work at speed 1, a body of
    ``body`` bytes to read past, and whether the connection ends after the answer."""

    size: float
    body: int
    close: bool


def size_of(target: str) -> float:
    """The S of ``/?size=S``: a number from 0 to MAX_SIZE.

    Raises:
        Refused: 400, when the target gives no such number.
    """
    try:
        size = float(parse_qs(urlsplit(target).query)["size"][0])
    except (KeyError, ValueError):
        size = math.nan
    if not 0 <= size <= MAX_SIZE:  # also refuses nan
        raise Refused("400 Bad Request", f"GET /?size=SECONDS, from 0 to {MAX_SIZE:g}")
    return size


def asked(head: list[str]) -> Asked:
    """What a request asks for, from its head (the request line, then the header lines).
    The connection ends after the answer for HTTP/1.0 unless it asks for keep-alive, and for
    HTTP/1.1 when it asks for close (RFC 9112 9.3).

    Raises:
        Refused: 405 for a method other than GET, 431 for more headers than the standard
            library's parser reads (100), 400 for a malformed request line, a chunked body,
            a body over MAX_BODY or a bad size.
    """
    parts = head[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refused("400 Bad Request", "a request line is METHOD TARGET HTTP/1.x")
    method, target, version = parts
    if method != "GET":
        raise Refused("405 Method Not Allowed", "only GET /?size=SECONDS is served")
    try:
        headers = http.client.parse_headers(io.BytesIO("\r\n".join([*head[1:], "", ""]).encode("latin-1")))
    except http.client.HTTPException:
        raise Refused("431 Request Header Fields Too Large", "at most 100 header lines") from None
    if "Transfer-Encoding" in headers:
        raise Refused("400 Bad Request", "a GET here has no chunked body")
    length = headers.get("Content-Length", "0")
    # ASCII digits only: str.isdigit also takes '²', which int() refuses.
    if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
        raise Refused("400 Bad Request", f"a body of at most {MAX_BODY} bytes")
    connection = headers.get("Connection", "").lower()
    close = connection != "keep-alive" if version == "HTTP/1.0" else connection == "close"
    return Asked(size_of(target), int(length), close)


def answer(status: str, headers: dict[str, str], body: bytes, close: bool) -> bytes:
    """An HTTP/1.1 response with ``body`` and ``headers``."""
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", f"Connection: {'close' if close else 'keep-alive'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def backend(
    name: str, speed: float, worker: Worker
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """The connection handler of the backend ``name`` serving at ``speed``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    raise Refused(
                        "431 Request Header Fields Too Large", f"a request head of at most {HEAD_LIMIT} bytes"
                    ) from None
                arrived = time.perf_counter()
                request = asked(raw.decode("latin-1").rstrip("\r\n").split("\r\n"))
                await reader.readexactly(request.body)
                job = Job(request.size / speed, arrived, asyncio.get_running_loop().create_future())
                worker.jobs.put(job)
                await job.done
                headers = {"X-Server": name, "X-Wait": f"{job.wait:.6f}", "X-Service": f"{job.service:.6f}"}
                writer.write(answer("200 OK", headers, name.encode(), request.close))
                await writer.drain()
                if request.close:
                    return
        except Refused as refused:
            with contextlib.suppress(ConnectionError):
                writer.write(answer(refused.status, {}, f"{refused.reason}\n".encode(), True))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except asyncio.CancelledError:
            # The backend stops (SIGTERM) with this connection open: end it quietly.
            return
        finally:
            writer.close()

    return serve


def parse(spec: str) -> tuple[str, int, float]:
    """``NAME=PORT:SPEED`` -> (name, port, speed).

    Raises:
        ValueError: ``spec`` is not that, with a port from 1 to 65535 and a speed in SPEEDS.
    """
    name, equals, rest = spec.partition("=")
    port, colon, speed = rest.partition(":")
    try:
        number, rate = int(port), float(speed)
    except ValueError:
        number, rate = 0, math.nan
    if not (name and equals and colon and 1 <= number <= 65535 and SPEEDS[0] <= rate <= SPEEDS[1]):
        raise ValueError(
            f"{spec[:80]!r} is not NAME=PORT:SPEED (a port from 1 to 65535, a speed from {SPEEDS[0]:g} "
            f"to {SPEEDS[1]:g})"
        )
    return name, number, rate


def parse_all(specs: list[str]) -> list[tuple[str, int, float]]:
    """Every backend of ``specs``, at least one, with distinct names and ports.

    Raises:
        ValueError: one spec is not NAME=PORT:SPEED, or none is given, or two share a name or port.
    """
    backends = [parse(spec) for spec in specs]
    if not backends:
        raise ValueError("no backend given")
    for k, label in ((0, "name"), (1, "port")):
        values = [backend[k] for backend in backends]
        if len(set(values)) < len(values):
            raise ValueError(f"two backends have the same {label}")
    return backends


async def serve_all(backends: list[tuple[str, int, float]]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    servers = []
    for name, port, speed in backends:
        worker = Worker(loop)
        worker.start()
        # A burst of new connections must queue in the kernel, not be refused.
        try:
            server = await asyncio.start_server(
                backend(name, speed, worker), "127.0.0.1", port, backlog=1024, limit=HEAD_LIMIT
            )
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise RuntimeError(f"127.0.0.1:{port}: {reason}") from None
        servers.append(server)
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(specs: list[str]) -> None:
    """Serve the backends of ``specs`` until SIGTERM or SIGINT; ``--help`` (or ``-h``) prints
    this module's description. A bad spec is one line on standard error and exit code 2, a
    port that cannot be listened on exit code 1."""
    if specs and specs[0] in ("--help", "-h"):
        print(__doc__)
        return
    try:
        backends = parse_all(specs)
    except ValueError as exc:
        print(f"error: {exc}; usage: {USAGE}", file=sys.stderr)
        sys.exit(2)
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        asyncio.run(serve_all(backends))
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
