"""Real HAProxy and NGINX for the sim-to-real check: started with the config
``lbsim export`` wrote, listening on loopback, stopped by PID.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# How to get each system (Debian and Ubuntu package names).
INSTALL = {"haproxy": "apt-get install haproxy", "nginx": "apt-get install nginx-light"}
NAMES = {"haproxy": "HAProxy", "nginx": "NGINX"}
# Where Debian installs both, which a non-root user's PATH leaves out.
SBIN = os.pathsep.join(("/usr/local/sbin", "/usr/sbin", "/sbin"))


def executable(system: str) -> str:
    """The program of ``system``: on PATH, else in SBIN; else its bare name (which fails to run)."""
    return shutil.which(system) or shutil.which(system, path=SBIN) or system


def missing(system: str) -> str | None:
    """Why ``system`` cannot run here, or None when it can."""
    if shutil.which(executable(system)) is None:
        return f"{NAMES[system]} is not installed ({INSTALL[system]})"
    return None


def version(system: str) -> str:
    """The installed version, as the system prints it (``2.6.12``, ``1.22.1``)."""
    shown = subprocess.run([executable(system), "-v"], capture_output=True, text=True)
    words = (shown.stdout + shown.stderr).replace("/", " ").split()
    return next((w for w in words if w[:1].isdigit() and "." in w), "?")


def command(system: str, config: Path) -> list[str]:
    """The command that runs ``config`` in the foreground, its files in the config's folder."""
    if system == "haproxy":
        return [executable("haproxy"), "-db", "-f", str(config)]
    folder = config.parent
    settings = f"daemon off; pid {folder}/nginx.pid; error_log {folder}/error.log;"
    return [executable("nginx"), "-c", str(config), "-p", str(folder), "-g", settings]


def wait_for(port: int, process: subprocess.Popen[bytes] | None = None, seconds: float = 10.0) -> None:
    """Return once 127.0.0.1:``port`` accepts connections.

    Raises:
        RuntimeError: ``process`` ended first, or ``seconds`` passed.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{' '.join(process.args[:1])} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds:g} s")


def check_free(ports: list[int]) -> None:
    """Raise RuntimeError naming the first of ``ports`` something on loopback already uses."""
    for port in ports:
        with socket.socket() as probe:
            # As the servers will: a closed connection's TIME_WAIT does not hold the port.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise RuntimeError(f"127.0.0.1:{port} is in use; stop what holds it") from None


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel sends it SIGTERM when the harness dies,
    however it dies (prctl PR_SET_PDEATHSIG, Linux), so nothing outlives a killed run."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


@contextmanager
def running(arguments: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``arguments`` as a process of its own, its output to ``log``, until the block
    ends, once it listens on ``port``; then stop it by its PID (SIGTERM, SIGKILL after 5 s),
    leaving nothing running.

    Raises:
        RuntimeError: it exited or did not listen within 10 s (the log's last line said).
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            arguments, stdout=output, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        try:
            try:
                wait_for(port, process)
            except RuntimeError as exc:
                last = (log.read_text(errors="replace").strip().splitlines() or [""])[-1]
                raise RuntimeError(f"{exc}: {last[:200]}") from None
            yield process
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
