"""A backend server: ``workers`` requests in service at once, a bounded wait queue, a speed.

Service time is size / speed. First-come first-served servers hand each worker one request
at a time; processor-sharing servers split their capacity equally among every admitted
job. Both are driven by SimPy timeouts with callbacks: no process per job.

Faults change a server's state: crashed (connections refused; what it held fails), hung
(accepts, never answers until it recovers), slow (service takes ``factor`` times longer)
or erroring (answers 5xx, fast, with a probability).
"""

from __future__ import annotations

import heapq
from collections import deque

from lbsim.draws import UniformDraws
from lbsim.engine.clock import Clock
from lbsim.engine.messages import Job
from lbsim.results.assembler import CRASHED, ERRORING, HUNG, SLOW, UP
from lbsim.status import CONNECT_FAILURE, ERROR, OK, REJECTED, RESET


class Server:
    """A first-come first-served server with ``workers`` workers and ``queue`` waiting places.

    A request that finds every worker busy and the queue full is rejected at once with
    ``overload_status`` (503, or 429). ``queue=None`` means an unbounded queue.
    """

    def __init__(
        self,
        clock: Clock,
        index: int,
        name: str,
        group: str,
        speed: float,
        workers: int,
        queue: int | None,
        overload_status: int = REJECTED,
    ) -> None:
        self.clock = clock
        self.schedule_at = clock.schedule_at
        # What runs when a service ends (bound once: it is on every request's path).
        self.service_ends = self._finish
        self.index = index
        self.name = name
        self.group = group
        self.speed = speed
        self.workers = workers
        self.queue = queue
        self.overload_status = overload_status
        self.busy = 0
        self.busy_time = 0.0
        self.t_changed = 0.0
        self.waiting: deque[Job] = deque()
        self.waiting_work = 0.0
        self.sum_t_end = 0.0
        # Fault state.
        self.crashed = False
        self.hung = False
        self.slowdown = 1.0
        self.t_hung = 0.0
        self.error_probability = 0.0
        self.error_latency = 0.0
        self.error_draws: UniformDraws | None = None
        self.epoch = 0
        self.in_service: dict[Job, float] | None = None

    def fault_state(self) -> int:
        """The server's fault state, as the time series codes it (up, crashed, hung, slow, erroring)."""
        if self.crashed:
            return CRASHED
        if self.hung:
            return HUNG
        if self.slowdown != 1.0:
            return SLOW
        return ERRORING if self.error_probability else UP

    def track_service(self, draws: UniformDraws) -> None:
        """Keep what is in service, so faults can fail or freeze it; ``draws`` decide errors."""
        self.in_service = {}
        self.error_draws = draws

    @property
    def active(self) -> int:
        """Requests at this server: in service plus waiting."""
        return self.busy + len(self.waiting)

    def work_left(self) -> float:
        """Seconds of service still owed to the requests here (an oracle's view)."""
        return self.waiting_work * self.slowdown + self.sum_t_end - self.busy * self.clock.now

    def busy_time_until(self, t: float) -> float:
        """Busy worker-seconds accumulated from time 0 to ``t`` (t >= the last change)."""
        return self.busy_time + self.busy * (t - self.t_changed)

    def _account(self, now: float) -> None:
        self.busy_time += self.busy * (now - self.t_changed)
        self.t_changed = now

    def accept(self, job: Job) -> None:
        """Take ``job``: serve it, queue it, refuse it or answer it with an error."""
        if self.crashed:
            job.reply_to(job, CONNECT_FAILURE)
        elif self.error_probability and self.error_draws.next() < self.error_probability:  # type: ignore[union-attr]
            self.clock.schedule(self.error_latency, self._answer_error, job)
        elif self.busy < self.workers and not self.hung:
            now = self.clock.now
            # _account(now), inlined on the hot path.
            self.busy_time += self.busy * (now - self.t_changed)
            self.t_changed = now
            self.busy += 1
            self._serve(job, now)
        elif self.queue is None or len(self.waiting) < self.queue:
            self.waiting.append(job)
            self.waiting_work += job.size / self.speed
        else:
            job.reply_to(job, self.overload_status)

    def _answer_error(self, job: Job) -> None:
        job.reply_to(job, ERROR)

    def _serve(self, job: Job, now: float, service: float | None = None) -> None:
        """A worker serves ``job`` from ``now``: its size at this speed, or the ``service``
        seconds left of a frozen service (which keeps its start time)."""
        if service is None:
            job.t_start = now
            service = job.size / self.speed * self.slowdown
        t_end = now + service
        self.sum_t_end += t_end
        if self.in_service is not None:
            self.in_service[job] = t_end
        self.schedule_at(t_end, self.service_ends, (job, t_end, self.epoch))

    def _finish(self, entry: tuple[Job, float, int]) -> None:
        job, now, epoch = entry  # it runs at the service's end
        if epoch != self.epoch:
            return  # the server crashed or hung since; that ended or froze this service
        # _account(now), inlined on the hot path.
        self.busy_time += self.busy * (now - self.t_changed)
        self.t_changed = now
        self.sum_t_end -= now
        if self.in_service is not None:
            del self.in_service[job]
        if self.waiting:
            # The freed worker takes the job that waited longest (_serve_waiting, inlined).
            waiting = self.waiting.popleft()
            self.waiting_work -= waiting.size / self.speed
            self._serve(waiting, now)
        else:
            self.busy -= 1
        job.reply_to(job, OK)

    def _serve_waiting(self, now: float) -> None:
        """A free worker takes the job that waited longest."""
        job = self.waiting.popleft()
        self.waiting_work -= job.size / self.speed
        self._serve(job, now)

    # Faults -------------------------------------------------------------------------

    def crash(self) -> None:
        """Refuse connections from now on; what was in service or waiting fails."""
        self._account(self.clock.now)
        self.crashed = True
        self.epoch += 1
        lost = [*(self.in_service or {}), *self.waiting]
        self.busy, self.sum_t_end, self.waiting_work = 0, 0.0, 0.0
        self.waiting.clear()
        if self.in_service is not None:
            self.in_service.clear()
        for job in lost:
            job.reply_to(job, RESET)

    def recover(self) -> None:
        """Accept connections again."""
        self.crashed = False

    def hang(self) -> None:
        """Stop answering: service in progress freezes (its workers stay taken), new requests wait."""
        self.hung = True
        self.epoch += 1
        self.t_hung = self.clock.now

    def unhang(self) -> None:
        """Answer again: frozen service resumes where it stopped."""
        self.hung = False
        now = self.clock.now
        self._account(now)
        frozen = dict(self.in_service or {})
        for job, t_end in frozen.items():
            del self.in_service[job]  # type: ignore[union-attr]
            self.sum_t_end -= t_end
            self._serve(job, now, t_end - self.t_hung)
        while self.waiting and self.busy < self.workers:
            self.busy += 1
            self._serve_waiting(now)

    def set_slowdown(self, factor: float) -> None:
        """Service that starts from now on takes ``factor`` times longer."""
        self.slowdown = factor

    def set_errors(self, probability: float, latency: float) -> None:
        """Answer each new request with a 5xx after ``latency``, with ``probability``."""
        self.error_probability = probability
        self.error_latency = latency


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
        # (virtual finish, request index, admission number, job): two tries of one request
        # can tie on the first two; the admission number orders them (first admitted first).
        self.sharing: list[tuple[float, int, int, Job]] = []
        self.n_admitted = 0
        self.generation = 0
        self.t_next = float("inf")

    @property
    def active(self) -> int:
        return len(self.sharing)

    def work_left(self) -> float:
        now = self.clock.now
        virtual = self.virtual + (self._rate() * (now - self.t_virtual) if self.sharing else 0.0)
        return sum(entry[0] - virtual for entry in self.sharing) / self.speed * self.slowdown

    def _rate(self) -> float:
        if self.hung:
            return 0.0
        n = len(self.sharing)
        speed = self.speed / self.slowdown
        return speed if n <= self.workers else speed * self.workers / n

    def _advance(self, now: float) -> None:
        if self.sharing:
            self.virtual += self._rate() * (now - self.t_virtual)
        self.t_virtual = now
        self._account(now)

    def accept(self, job: Job) -> None:
        if self.crashed:
            job.reply_to(job, CONNECT_FAILURE)
            return
        if self.error_probability and self.error_draws.next() < self.error_probability:  # type: ignore[union-attr]
            self.clock.schedule(self.error_latency, self._answer_error, job)
            return
        n = len(self.sharing)
        if self.queue is not None and n >= self.workers + self.queue:
            job.reply_to(job, self.overload_status)
            return
        now = self.clock.now
        self._advance(now)
        job.t_start = now
        self.n_admitted += 1
        heapq.heappush(self.sharing, (self.virtual + job.size, job.index, self.n_admitted, job))
        self.busy = min(n + 1, self.workers)
        if n < self.workers and not self.hung and now + job.size / self._rate() >= self.t_next:
            # The rate did not change and this request ends after the scheduled one.
            return
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        self.generation += 1
        rate = self._rate()
        if not self.sharing or rate == 0:
            self.t_next = float("inf")
            return
        delay = max(self.sharing[0][0] - self.virtual, 0.0) / rate
        self.t_next = now + delay
        self.clock.schedule(delay, self._finish, self.generation)

    def _finish(self, generation: int) -> None:  # type: ignore[override]
        if generation != self.generation:
            return
        now = self.clock.now
        self._advance(now)
        job = heapq.heappop(self.sharing)[-1]
        self.busy = min(len(self.sharing), self.workers)
        self._schedule(now)
        job.reply_to(job, OK)

    def _rate_changes(self) -> None:
        """Bring virtual time up to now before the per-request rate changes."""
        self._advance(self.clock.now)

    def crash(self) -> None:
        now = self.clock.now
        self._advance(now)
        self.crashed = True
        lost = [entry[-1] for entry in self.sharing]
        self.sharing.clear()
        self.busy = 0
        self._schedule(now)
        for job in lost:
            job.reply_to(job, RESET)

    def hang(self) -> None:
        self._rate_changes()
        self.hung = True
        self._schedule(self.clock.now)

    def unhang(self) -> None:
        self._rate_changes()
        self.hung = False
        self._schedule(self.clock.now)

    def set_slowdown(self, factor: float) -> None:
        self._rate_changes()
        self.slowdown = factor
        self._schedule(self.clock.now)
