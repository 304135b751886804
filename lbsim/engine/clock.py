"""The simulation clock: the current time and the calendar of future events.

SimPy's environment keeps the calendar (a heap ordered by time, priority and a counter, so
events due at the same instant run in the order they were scheduled). The engine needs only
"call this function with this argument after this delay", so it schedules plain callbacks on
that heap instead of building an Event object per step; this module is the only place that
touches SimPy's internals.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

from simpy import Environment
from simpy.events import NORMAL

Callback = Callable[[Any], None]


def _stop(_: object) -> None:
    """The calendar entry that ends :meth:`Clock.run` (never called)."""


class Clock:
    """Simulated time in seconds (``now``, a plain attribute) and the events still to come.

    Events due at the same instant run in the order they were scheduled, as SimPy's do.
    """

    __slots__ = ("_eid", "_env", "_queue", "now", "stopped")

    def __init__(self) -> None:
        self._env = Environment()
        # Entries are (time, priority, counter, callback, argument): the counter breaks ties.
        self._queue: list[tuple[float, int, int, Callback, Any]] = self._env._queue  # type: ignore[assignment]
        self._eid = self._env._eid
        self.now = 0.0
        self.stopped = False

    def schedule(self, delay: float, callback: Callback, arg: Any = None) -> None:
        """Call ``callback(arg)`` after ``delay`` seconds (>= 0)."""
        heappush(self._queue, (self.now + delay, NORMAL, next(self._eid), callback, arg))

    def schedule_at(self, t: float, callback: Callback, arg: Any = None) -> None:
        """Call ``callback(arg)`` at time ``t`` (>= now)."""
        heappush(self._queue, (t, NORMAL, next(self._eid), callback, arg))

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
        while queue:
            t, _, _, callback, arg = heappop(queue)
            self.now = t
            if callback is _stop:
                return
            callback(arg)
        raise RuntimeError(f"t={self.now:.6g}: the calendar ran empty before the run ended.")
