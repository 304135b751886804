"""Columnar per-request records: one numeric column per field, no request objects kept.

The engine tells the recorder when a request is sent and when it ends. An ended request is
written once, by appending its fields to one list per column (a list append is the cheapest
write Python has). Every CHUNK requests the columns become typed numpy arrays (8 bytes per
float, 4 per integer, 1 per status), are handed to the run's tally and to the other sinks (a
file or a list when per-request records are kept) and started afresh, so the engine's
memory does not grow with the number of requests. The recorder also integrates the number
of requests in the system over time, for Little's law.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lbsim.workload import Request

if TYPE_CHECKING:
    from lbsim.results.tally import Tally

# Requests per chunk: a few MB of pending columns, few enough folds to keep their cost negligible.
CHUNK = 1 << 15

Sink = Callable[["Records"], None]


class Recorder:
    """Collects the outcome of every request that ends and hands them to ``tally`` and
    ``sinks`` in chunks; counts the requests that arrive after ``warmup``."""

    __slots__ = (
        "client", "in_system", "in_system_time", "left", "n_arrived", "server", "session", "sinks", "size",
        "status", "t_arrival", "t_done", "t_in_system", "t_start", "tally", "warmup",
    )  # fmt: skip

    def __init__(self, tally: Tally, sinks: Sequence[Sink], warmup: float) -> None:
        self.tally = tally
        self.sinks = (tally.fold, *sinks)
        self.warmup = warmup
        self.n_arrived = 0
        # Requests in the system (sent, not ended) integrated over time, for Little's law.
        self.in_system = 0
        self.in_system_time = 0.0
        self.t_in_system = 0.0
        self._start_chunk()

    def _start_chunk(self) -> None:
        self.left = CHUNK
        self.t_arrival: list[float] = []
        self.t_start: list[float] = []
        self.t_done: list[float] = []
        self.size: list[float] = []
        self.server: list[int] = []
        self.status: list[int] = []
        self.client: list[int] = []
        self.session: list[int] = []

    def sent(self, request: Request, now: float) -> None:
        """A client sent ``request`` at ``now``."""
        self.in_system_time += self.in_system * (now - self.t_in_system)
        self.in_system += 1
        self.t_in_system = now
        if request.t_arrival >= self.warmup:
            self.n_arrived += 1

    def in_system_until(self, t: float) -> float:
        """Requests in the system integrated from time 0 to ``t`` (request-seconds)."""
        return self.in_system_time + self.in_system * (t - self.t_in_system)

    def record(self, request: Request, server: int, status: int) -> None:
        """Write the outcome of ``request``, which ended at ``request.t_done``; ``server`` is
        -1 when no server was chosen."""
        now = request.t_done
        self.in_system_time += self.in_system * (now - self.t_in_system)
        self.in_system -= 1
        self.t_in_system = now
        self.t_arrival.append(request.t_arrival)
        self.t_start.append(request.t_start)
        self.t_done.append(request.t_done)
        self.size.append(request.size)
        self.server.append(server)
        self.status.append(status)
        self.client.append(request.client)
        self.session.append(request.session)
        self.left -= 1
        if not self.left:
            self.flush()

    def flush(self) -> None:
        """Hand the records of the current chunk to the sinks and start a new chunk."""
        chunk = Records(
            t_arrival=np.array(self.t_arrival, dtype=np.float64),
            t_start=np.array(self.t_start, dtype=np.float64),
            t_done=np.array(self.t_done, dtype=np.float64),
            size=np.array(self.size, dtype=np.float64),
            server=np.array(self.server, dtype=np.int32),
            status=np.array(self.status, dtype=np.int8),
            client=np.array(self.client, dtype=np.int32),
            session=np.array(self.session, dtype=np.int64),
        )
        self._start_chunk()
        for sink in self.sinks:
            sink(chunk)


@dataclass(frozen=True, slots=True)
class Records:
    """Per-request outcome columns of one run, in the order requests ended."""

    t_arrival: np.ndarray
    t_start: np.ndarray
    t_done: np.ndarray
    size: np.ndarray
    server: np.ndarray
    status: np.ndarray
    client: np.ndarray
    session: np.ndarray

    def __len__(self) -> int:
        return int(self.t_arrival.size)

    @staticmethod
    def join(chunks: Sequence[Records]) -> Records:
        """One Records of several chunks, in order."""
        return Records(
            **{
                name: np.concatenate([getattr(chunk, name) for chunk in chunks])
                for name in Records.__dataclass_fields__
            }
        )
