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

Connections are served by threads of their own (keep-alive as the balancer asks), so a
balancer's open connections never stand in for the queue.

Usage: python -m benchmarks.sim_to_real.backends NAME=PORT:SPEED ...
It prints ``ready`` once every backend listens, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Python threads hand over the GIL every 5 ms by default: long next to a 20 ms service.
SWITCH_INTERVAL = 0.0002


@dataclass
class Job:
    """One request's work, and what the worker delivered."""

    seconds: float
    arrived: float
    done: threading.Event = field(default_factory=threading.Event)
    wait: float = 0.0
    service: float = 0.0


class Worker(threading.Thread):
    """The one worker of a backend: serves its jobs in arrival order."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()

    def run(self) -> None:
        free = 0.0  # when the worker finished its last job
        while True:
            job = self.jobs.get()
            start = max(job.arrived, free)
            time.sleep(max(0.0, start + job.seconds - time.perf_counter()))
            free = time.perf_counter()
            job.wait, job.service = start - job.arrived, free - start
            job.done.set()


def handler(name: str, speed: float, worker: Worker) -> type[BaseHTTPRequestHandler]:
    """The request handler of the backend ``name`` serving at ``speed``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            arrived = time.perf_counter()
            try:
                size = float(parse_qs(urlsplit(self.path).query)["size"][0])
            except (KeyError, ValueError):
                self.send_error(400, "GET /?size=SECONDS")
                return
            job = Job(max(size, 0.0) / speed, arrived)
            worker.jobs.put(job)
            job.done.wait()
            body = name.encode()
            self.send_response(200)
            self.send_header("X-Server", name)
            self.send_header("X-Wait", f"{job.wait:.6f}")
            self.send_header("X-Service", f"{job.service:.6f}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a line per request would cost more than the request."""

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # A burst of new connections must queue in the kernel, not be refused.
    request_queue_size = 1024


def parse(spec: str) -> tuple[str, int, float]:
    """``NAME=PORT:SPEED`` -> (name, port, speed)."""
    name, _, rest = spec.partition("=")
    port, _, speed = rest.partition(":")
    return name, int(port), float(speed)


def main(specs: list[str]) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    servers = []
    for spec in specs:
        name, port, speed = parse(spec)
        worker = Worker()
        worker.start()
        servers.append(Server(("127.0.0.1", port), handler(name, speed, worker)))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
