"""Columnar per-request records: one numeric column per field, no request objects kept.

The engine tells the recorder when a request is sent and when it ends. An ended request is
written once, its eight fields added to the end of one flat list by one ``extend`` (the
cheapest write Python has for several values; a row object per request would be kept alive
until the chunk ends, and the garbage collector would traverse each). Every CHUNK requests
the list becomes typed numpy columns (8 bytes per float, 4 per integer, 1 per status), which
are handed to the run's tally and to the other sinks (a file or a list when per-request
records are kept), and a new list starts, so the engine's memory does not grow with the
number of requests. The recorder also integrates the number of requests in the system over
time, for Little's law. When per-request records are kept, a :class:`KeepingRecorder` also
holds the requests in flight, so that those the run stops before they end are kept too,
with status ``in_flight`` and no end (NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lbsim.status import IN_FLIGHT
from lbsim.workload import Request

if TYPE_CHECKING:
    from lbsim.results.tally import Tally

# Requests per chunk: a few MB of pending columns, few enough folds to keep their cost negligible.
CHUNK = 1 << 12

Sink = Callable[["Records"], None]


class Recorder:
    """Collects the outcome of every request that ends and hands them to ``tally`` and
    ``sinks`` in chunks; counts the requests that arrive after ``warmup``."""

    __slots__ = (
        "fields", "in_system", "in_system_time", "left", "n_arrived", "sinks", "t_in_system", "tally",
        "warmup",
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
        # The fields of each ended request in turn, in the order of Records' columns.
        self.fields: list[float] = []

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
        self.fields.extend((
            request.t_arrival, request.t_start, now, request.size, server, status, request.client,
            request.session,
        ))  # fmt: skip
        self.left -= 1
        if not self.left:
            self.flush()

    def flush(self) -> None:
        """Hand the records of the current chunk to the sinks and start a new chunk."""
        chunk = _records(self.fields)
        self._start_chunk()
        for sink in self.sinks:
            sink(chunk)

    def end(self) -> None:
        """The run stopped: hand over the last records."""
        self.flush()


class KeepingRecorder(Recorder):
    """A recorder for a run whose records are kept: it knows the requests in flight and, when
    the run stops, hands them to the sinks other than the tally (which counts them as the
    requests that arrived and did not end) with status ``in_flight``, no end instant and no
    server."""

    __slots__ = ("live",)

    def __init__(self, tally: Tally, sinks: Sequence[Sink], warmup: float) -> None:
        super().__init__(tally, sinks, warmup)
        self.live: dict[int, Request] = {}

    def sent(self, request: Request, now: float) -> None:
        super().sent(request, now)
        self.live[request.index] = request

    def record(self, request: Request, server: int, status: int) -> None:
        del self.live[request.index]
        super().record(request, server, status)

    def end(self) -> None:
        self.flush()
        if not self.live:
            return
        fields: list[float] = []
        for request in self.live.values():
            fields.extend((
                request.t_arrival, request.t_start, np.nan, request.size, -1, IN_FLIGHT, request.client,
                request.session,
            ))  # fmt: skip
        chunk = _records(fields)
        for sink in self.sinks[1:]:
            sink(chunk)


def _records(fields: list[float]) -> Records:
    """Typed columns of the flat ``fields`` (each record's fields in turn)."""
    n = len(COLUMN_TYPES)
    return Records(*(np.array(fields[k::n], dtype=dtype) for k, dtype in enumerate(COLUMN_TYPES)))


# The type of each column of Records, in order.
COLUMN_TYPES = (np.float64, np.float64, np.float64, np.float64, np.int32, np.int8, np.int32, np.int64)


@dataclass(frozen=True, slots=True)
class Records:
    """Per-request outcome columns of one run, in the order requests ended (those still in
    flight when it stopped last)."""

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
