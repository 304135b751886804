"""Which server real HAProxy's ``balance roundrobin`` sends each request to, with runtime
changes: the vectors ``tests/test_fwrr.py`` checks lbsim's ``fast_weighted_round_robin`` against.

HAProxy (``haproxy`` on PATH; Debian 12's package is 2.6.12) runs one backend of servers
with the given weights, each server a frontend of the same process that answers its own
name. Requests are sent one at a time on new connections; the steps between them use the
runtime API: ``down:K`` (``set server be/sK state maint``), ``up:K`` (``state ready``) and
``weight:K:W`` (``set weight be/sK W``). A change prints ``|``.

Usage: python benchmarks/real/haproxy_roundrobin.py WEIGHTS STEP...
Example: python benchmarks/real/haproxy_roundrobin.py 5,1,1 n:5 down:0 n:4 up:0 n:14
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopback import server_of_next_request

FRONT = 18080
FIRST_SERVER = 19000


def config(weights: list[int], sock: Path) -> str:
    lines = ["global", "  nbthread 1", f"  stats socket {sock} level admin",
             "defaults", "  mode http", "  timeout connect 1s", "  timeout client 5s", "  timeout server 5s",
             "frontend fe", f"  bind 127.0.0.1:{FRONT}", "  default_backend be",
             "backend be", "  balance roundrobin"]  # fmt: skip
    lines += [f"  server s{i} 127.0.0.1:{FIRST_SERVER + i} weight {w}" for i, w in enumerate(weights)]
    for i in range(len(weights)):
        lines += [f"frontend f{i}", f"  bind 127.0.0.1:{FIRST_SERVER + i}",
                  f"  http-request return status 200 content-type text/plain string {i}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def runtime(sock: Path, command: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(command.encode() + b"\n")
        s.recv(4096)


def main() -> None:
    weights = [int(w) for w in sys.argv[1].split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        sock, path = Path(tmp) / "admin.sock", Path(tmp) / "haproxy.cfg"
        path.write_text(config(weights, sock))
        haproxy = subprocess.Popen(
            ["haproxy", "-f", str(path), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(0.5)
            out: list[str] = []
            for step in sys.argv[2:]:
                kind, *args = step.split(":")
                if kind == "n":
                    out += [server_of_next_request(FRONT) for _ in range(int(args[0]))]
                    continue
                command = {"down": "set server be/s{0} state maint", "up": "set server be/s{0} state ready",
                           "weight": "set weight be/s{0} {1}"}[kind]  # fmt: skip
                runtime(sock, command.format(*args))
                out.append("|")
            print(" ".join(out))
        finally:
            haproxy.terminate()
            haproxy.wait()


if __name__ == "__main__":
    main()
