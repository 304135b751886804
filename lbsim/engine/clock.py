"""The simulation clock: the current time and the calendar of future events.

SimPy's environment keeps the calendar (a heap ordered by time, priority and a counter, so
events due at the same instant run in the order they were scheduled). The engine needs only
"call this function with this argument after this delay", so it schedules plain callbacks on
that heap instead of building an Event object per step; this module is the only place that
touches SimPy's internals.

Open-loop arrivals are known ahead, so they do not go through the heap: the clock holds the
next one aside and runs whichever is earlier, it or the heap's first event. Each arrival is
numbered when the one before it runs, exactly as if that one had scheduled it, so the order
of events (ties included) is the same as with every arrival on the heap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from typing import Any

from simpy import Environment
from simpy.events import NORMAL

Callback = Callable[[Any], None]


def _stop(_: object) -> None:
    """The calendar entry that ends :meth:`Clock.run` (never called)."""


# The next arrival when there is none (later than any event).
_NO_ARRIVAL = (float("inf"), NORMAL, -1, _stop, None)


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

    def arrivals(self, arrivals: Iterator[tuple[float, Any]], receive: Callback) -> None:
        """Call ``receive(arg)`` at each ``(t, arg)`` of ``arrivals`` (t non-decreasing, >= now):
        the first is scheduled now, each next one when the one before it runs."""
        self._arrivals = self._entries(arrivals, receive)
        self._next_arrival = next(self._arrivals, _NO_ARRIVAL)

    def _entries(
        self, arrivals: Iterator[tuple[float, Any]], receive: Callback
    ) -> Iterator[tuple[float, int, int, Callback, Any]]:
        """The calendar entries of ``arrivals``, each numbered when it is asked for (when the
        arrival before it runs)."""
        now = self.now
        eid = self._eid
        for t, arg in arrivals:
            # The instant schedule(t - now) gives at the arrival before, so results do not
            # depend on the route an arrival takes to the calendar.
            now = now + (t - now)
            yield (now, NORMAL, next(eid), receive, arg)

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
        while True:
            arrival = self._next_arrival
            if queue and queue[0] < arrival:
                t, _, _, callback, arg = heappop(queue)
            elif arrival is _NO_ARRIVAL:
                raise RuntimeError(f"t={self.now:.6g}: the calendar ran empty before the run ended.")
            else:
                t, _, _, callback, arg = arrival
                self._next_arrival = next(self._arrivals, _NO_ARRIVAL)
            self.now = t
            if callback is _stop:
                return
            callback(arg)
