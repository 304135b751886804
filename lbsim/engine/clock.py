"""The simulation clock: the current time and the calendar of future events.

SimPy's environment keeps the calendar (a heap ordered by time, priority and a counter, so
events due at the same instant run in the order they were scheduled). The engine needs only
"call this function with this argument after this delay", so it schedules plain callbacks on
that heap instead of building an Event object per step; this module is the only place that
touches SimPy's internals.

Open-loop arrivals are known ahead, so they do not go through the heap: the clock holds the
next one aside and runs whichever is earlier, it or the heap's first event. Each arrival is
numbered when the one before it runs, at the instant that one's ``schedule`` would have
given, so the order of events (ties included) and every time are the same as with each
arrival on the heap. A block of arrivals becomes calendar entries by ``zip``, without a
Python call per arrival.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from heapq import heappop, heappush
from itertools import chain, repeat
from typing import Any

import numpy as np
from simpy import Environment
from simpy.events import NORMAL

Callback = Callable[[Any], None]


class _Stopped(Exception):
    """Raised by the calendar entry that ends :meth:`Clock.run`."""


def _stop(_: object) -> None:
    """The calendar entry that ends :meth:`Clock.run`."""
    raise _Stopped


# The next arrival when there is none (later than any event).
_NO_ARRIVAL = (float("inf"), NORMAL, -1, _stop, None)


def _as_scheduled(times: np.ndarray, now: float) -> list[float]:
    """The instants at which ``times`` run when each is scheduled from the one before (the
    first from ``now``) as ``now + (t - now)``, which is ``t`` itself unless t - now rounds.

    By Sterbenz's lemma t - now is exact when now <= t <= 2 now, so after the first few
    arrivals every instant is its time; one vector check finds whether a block needs the
    step by step sum."""
    before = np.empty_like(times)
    before[:1] = now
    before[1:] = times[:-1]
    if np.array_equal((times - before) + before, times):
        return times.tolist()
    instants = []
    for t in times.tolist():
        now = now + (t - now)
        instants.append(now)
    return instants


class Clock:
    """Simulated time in seconds (``now``, a plain attribute) and the events still to come.

    Events due at the same instant run in the order they were scheduled, as SimPy's do.
    """

    __slots__ = ("_arrivals", "_eid", "_env", "_next_arrival", "_queue", "now", "stopped")

    def __init__(self) -> None:
        self._env = Environment()
        # Entries are (time, priority, counter, callback, argument): the counter breaks ties.
        self._queue: list[tuple[float, int, int, Callback, Any]] = self._env._queue  # type: ignore[assignment]
        self._eid = self._env._eid
        self._arrivals: Iterator[tuple[float, int, int, Callback, Any]] = iter(())
        self._next_arrival: tuple[float, int, int, Callback, Any] = _NO_ARRIVAL
        self.now = 0.0
        self.stopped = False

    def schedule(self, delay: float, callback: Callback, arg: Any = None) -> None:
        """Call ``callback(arg)`` after ``delay`` seconds (>= 0)."""
        heappush(self._queue, (self.now + delay, NORMAL, next(self._eid), callback, arg))

    def schedule_at(self, t: float, callback: Callback, arg: Any = None) -> None:
        """Call ``callback(arg)`` at time ``t`` (>= now)."""
        heappush(self._queue, (t, NORMAL, next(self._eid), callback, arg))

    def arrivals(self, blocks: Iterable[tuple[np.ndarray, Iterator[Any]]], receive: Callback) -> None:
        """Call ``receive(arg)`` at each instant of ``blocks``, blocks of arrival times (1-D
        float arrays, non-decreasing, >= now, across blocks too) each with an iterator of one
        ``arg`` per time, read when its arrival is numbered: the first is scheduled now, each
        next one when the one before it runs."""
        self._arrivals = chain.from_iterable(self._entries(blocks, receive))
        self._next_arrival = next(self._arrivals, _NO_ARRIVAL)

    def _entries(
        self, blocks: Iterable[tuple[np.ndarray, Iterator[Any]]], receive: Callback
    ) -> Iterator[Iterator[tuple[float, int, int, Callback, Any]]]:
        """The calendar entries of each block; ``zip`` numbers each when it is asked for (when
        the arrival before it runs)."""
        now = self.now
        for times, args in blocks:
            instants = _as_scheduled(times, now)
            if instants:
                now = instants[-1]
            yield zip(instants, repeat(NORMAL), self._eid, repeat(receive), args)

    def stop(self) -> None:
        """End :meth:`run` once the events already due now have run."""
        self.stopped = True
        self.schedule(0.0, _stop)

    def run(self) -> None:
        """Run events in time order until :meth:`stop` takes effect.

        Raises:
            RuntimeError: the calendar ran empty before the run was stopped.
        """
        queue = self._queue
        arrivals = self._arrivals
        arrival = self._next_arrival
        try:
            while True:
                if queue and queue[0] < arrival:
                    t, _, _, callback, arg = heappop(queue)
                elif arrival is _NO_ARRIVAL:
                    raise RuntimeError(f"t={self.now:.6g}: the calendar ran empty before the run ended.")
                else:
                    t, _, _, callback, arg = arrival
                    arrival = next(arrivals, _NO_ARRIVAL)
                self.now = t
                callback(arg)
        except _Stopped:
            self._next_arrival = arrival
