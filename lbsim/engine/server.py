"""A backend server: ``workers`` requests in service at once, a bounded wait queue, a speed.

Service time is size / speed. First-come first-served servers hand each worker one request
at a time; processor-sharing servers split their capacity equally among every admitted
request. Both are driven by SimPy timeouts with callbacks: no process per request.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

from simpy import Environment, Event, Timeout

from lbsim.engine.recorder import OK, REJECTED
from lbsim.workload import Request

Done = Callable[[Request, int], None]


def _owner_completes(request: Request, status: int) -> None:
    request.balancer.complete(request, status)


class Server:
    """A first-come first-served server with ``workers`` workers and ``queue`` waiting places.

    A request that finds every worker busy and the queue full is rejected at once (503).
    ``queue=None`` means an unbounded queue.
    """

    # A backend marks when service starts (t_start); a balancer's cores do not.
    marks_start = True

    def __init__(
        self,
        env: Environment,
        index: int,
        name: str,
        group: str,
        speed: float,
        workers: int,
        queue: int | None,
        done: Done = _owner_completes,
    ) -> None:
        self.env = env
        self.index = index
        self.name = name
        self.group = group
        self.speed = speed
        self.workers = workers
        self.queue = queue
        self.done = done
        self.busy = 0
        self.busy_time = 0.0
        self.t_changed = 0.0
        self.waiting: deque[Request] = deque()
        self.waiting_work = 0.0
        self.sum_t_end = 0.0

    @property
    def active(self) -> int:
        """Requests at this server: in service plus waiting."""
        return self.busy + len(self.waiting)

    def service_time(self, request: Request) -> float:
        """Seconds of service ``request`` needs here."""
        return request.size / self.speed

    def work_left(self) -> float:
        """Seconds of service still owed to the requests here (an oracle's view)."""
        return self.waiting_work + self.sum_t_end - self.busy * self.env.now

    def busy_time_until(self, t: float) -> float:
        """Busy worker-seconds accumulated from time 0 to ``t`` (t >= the last change)."""
        return self.busy_time + self.busy * (t - self.t_changed)

    def _account(self, now: float) -> None:
        self.busy_time += self.busy * (now - self.t_changed)
        self.t_changed = now

    def accept(self, request: Request) -> None:
        """Take ``request``: serve it, queue it, or reject it."""
        if self.busy < self.workers:
            self._start(request)
        elif self.queue is None or len(self.waiting) < self.queue:
            self.waiting.append(request)
            self.waiting_work += self.service_time(request)
        else:
            self.done(request, REJECTED)

    def _start(self, request: Request) -> None:
        now = self.env.now
        self._account(now)
        self.busy += 1
        if self.marks_start:
            request.t_start = now
        service = self.service_time(request)
        self.sum_t_end += now + service
        Timeout(self.env, service, (request, now + service)).callbacks.append(self._finish)

    def _finish(self, event: Event) -> None:
        now = self.env.now
        self._account(now)
        self.busy -= 1
        request, t_end = event._value
        self.sum_t_end -= t_end
        if self.waiting:
            waiting = self.waiting.popleft()
            self.waiting_work -= self.service_time(waiting)
            self._start(waiting)
        self.done(request, OK)


class ProcessorSharingServer(Server):
    """A processor-sharing server: n admitted requests each progress at speed * min(1, workers / n).

    Admission is bounded by ``workers + queue`` requests when ``queue`` is set. The engine
    keeps a virtual time V that grows at the per-request rate, so a request of size x
    admitted at V0 finishes when V reaches V0 + x; only the earliest finish is scheduled.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.virtual = 0.0
        self.t_virtual = 0.0
        self.sharing: list[tuple[float, int, Request]] = []
        self.generation = 0
        self.t_next = float("inf")

    @property
    def active(self) -> int:
        return len(self.sharing)

    def work_left(self) -> float:
        now = self.env.now
        virtual = self.virtual + (self._rate() * (now - self.t_virtual) if self.sharing else 0.0)
        return sum(finish - virtual for finish, _, _ in self.sharing) / self.speed

    def _rate(self) -> float:
        n = len(self.sharing)
        return self.speed if n <= self.workers else self.speed * self.workers / n

    def _advance(self, now: float) -> None:
        if self.sharing:
            self.virtual += self._rate() * (now - self.t_virtual)
        self.t_virtual = now
        self._account(now)

    def accept(self, request: Request) -> None:
        n = len(self.sharing)
        if self.queue is not None and n >= self.workers + self.queue:
            self.done(request, REJECTED)
            return
        now = self.env.now
        self._advance(now)
        request.t_start = now
        heapq.heappush(self.sharing, (self.virtual + request.size, request.index, request))
        self.busy = min(n + 1, self.workers)
        if n < self.workers and now + request.size / self.speed >= self.t_next:
            # The rate did not change and this request ends after the scheduled one.
            return
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        self.generation += 1
        if not self.sharing:
            self.t_next = float("inf")
            return
        delay = max(self.sharing[0][0] - self.virtual, 0.0) / self._rate()
        self.t_next = now + delay
        Timeout(self.env, delay, self.generation).callbacks.append(self._finish)

    def _finish(self, event: Event) -> None:
        if event._value != self.generation:
            return
        now = self.env.now
        self._advance(now)
        _, _, request = heapq.heappop(self.sharing)
        self.busy = min(len(self.sharing), self.workers)
        self._schedule(now)
        self.done(request, OK)
