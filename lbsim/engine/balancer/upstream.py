"""Envoy's HTTP/1.1 upstream connection pools, under its cluster circuit breakers.

Each backend has a pool of connections to it, each carrying one request at a time (HTTP/1.1)
and kept open when idle (keep-alive; Envoy's idle timeout, an hour, outlasts a run). An
attempt to a backend takes an idle connection to it if there is one. Otherwise it waits as
pending, refused (503) when ``max_pending`` attempts already wait in its cluster, and a
connection is opened for it when the cluster holds fewer than ``max_connections`` or the
backend has none at all; when neither, it waits for a connection to that backend to free.
A connection that frees takes the attempt that has waited longest for its backend. An attempt
goes out on a connection only while fewer than ``max_requests`` of its cluster's are out
(else refused, 503; the connection stays idle). One whose request ended while it waited (a
hedge answered, a client timeout) is not sent when its turn comes; it counts as waiting
until then, where Envoy cancels it at once. A cluster is an lbsim pool. Opening a
connection takes no time here (connect latency is not modeled). A refused or reset
connection closes with every idle connection to that backend (its process is gone); one
whose attempt timed out closes (Envoy resets the stream).

Source: Envoy 1.28-1.32, source/common/conn_pool/conn_pool_base.cc: newStreamImpl (an idle
client first, else the pending-requests breaker, then tryCreateNewConnections),
tryCreateNewConnection (the connections breaker, or a host with no connection at all),
attachStreamToClient (the requests breaker) and onUpstreamReady (pending streams pulled
oldest first); defaults 1024 each (circuit_breaker.proto).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from lbsim.engine.balancer.pools import Pool
from lbsim.engine.messages import Attempt
from lbsim.policies.base import Backend
from lbsim.status import CONNECT_FAILURE, REJECTED, RESET, TIMEOUT

Attach = Callable[[Attempt, Pool, Backend], None]
Refuse = Callable[[Attempt, int, int], None]


class _Cluster:
    """The connections open to a pool's backends and the attempts waiting for one."""

    __slots__ = ("connections", "pending")

    def __init__(self) -> None:
        self.connections = 0
        self.pending = 0


class UpstreamPools:
    """The connection pool of every backend of one balancer instance.

    ``attach(attempt, pool, backend)`` sends an attempt out on a connection; ``refuse(attempt,
    index, status)`` answers one without sending it.
    """

    def __init__(
        self,
        pool_of: Sequence[Pool],
        max_connections: int | None,
        max_pending: int | None,
        max_requests: int | None,
        attach: Attach,
        refuse: Refuse,
    ) -> None:
        n = len(pool_of)
        self.pool_of = pool_of
        clusters = {id(pool): _Cluster() for pool in pool_of}
        self.cluster_of = [clusters[id(pool)] for pool in pool_of]
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.max_requests = max_requests
        self.attach = attach
        self.refuse = refuse
        self.open = [0] * n
        self.busy = [0] * n
        self.waiting: list[deque[tuple[Attempt, Backend]]] = [deque() for _ in range(n)]
        # Backends whose waiting attempts are being sent (an answer given at once must not
        # start a second loop under the first).
        self.serving: set[int] = set()

    def send(self, attempt: Attempt, pool: Pool, backend: Backend) -> None:
        """Send ``attempt`` to ``backend`` (of ``pool``) on an idle or new connection, or let it wait."""
        index = backend.index
        if self.open[index] > self.busy[index]:
            self._go(attempt, pool, backend)
            return
        cluster = self.cluster_of[index]
        if self.max_pending is not None and cluster.pending >= self.max_pending:
            self.refuse(attempt, index, REJECTED)
            return
        cluster.pending += 1
        self.waiting[index].append((attempt, backend))
        self.serve(index)

    def _go(self, attempt: Attempt, pool: Pool, backend: Backend) -> None:
        """Send ``attempt`` on an idle connection to ``backend``, unless max_requests refuses it."""
        if self.max_requests is not None and pool.outstanding >= self.max_requests:
            self.refuse(attempt, backend.index, REJECTED)
            return
        self.busy[backend.index] += 1
        self.attach(attempt, pool, backend)

    def serve(self, index: int) -> None:
        """Send the attempts waiting longest for backend ``index`` on its idle connections,
        opening new ones while the connections breaker allows."""
        if index in self.serving:
            return
        self.serving.add(index)
        waiting = self.waiting[index]
        cluster = self.cluster_of[index]
        pool = self.pool_of[index]
        while waiting:
            if self.open[index] == self.busy[index]:
                if not (
                    self.max_connections is None
                    or cluster.connections < self.max_connections
                    or self.open[index] == 0
                ):
                    break
                self.open[index] += 1
                cluster.connections += 1
            attempt, backend = waiting.popleft()
            cluster.pending -= 1
            if attempt.request.t_done < 0:
                self._go(attempt, pool, backend)
            else:
                # Its request ended while it waited (a client timeout, or another attempt's
                # answer): it ends unsent, answered up as a cancelled wait is, so that every
                # stage lets go of it (a retry's try, a client connection) and nothing counts
                # it out later.
                self.refuse(attempt, index, TIMEOUT)
        self.serving.discard(index)

    def release(self, index: int, status: int) -> None:
        """An attempt on a connection to backend ``index`` ended with ``status``. Its
        connection frees; it closes when the attempt timed out (the stream is reset), and
        with every idle connection to the backend when the backend refused or reset it.
        ``serve`` then gives freed connections to the attempts waiting (once the answer has
        gone up, so a hedge whose request it ended is not sent)."""
        self.busy[index] -= 1
        if status == TIMEOUT:
            closed = 1
        elif status in (CONNECT_FAILURE, RESET):
            closed = self.open[index] - self.busy[index]
        else:
            closed = 0
        self.open[index] -= closed
        self.cluster_of[index].connections -= closed

    def cancel(self, attempt: Attempt) -> bool:
        """Take ``attempt`` out of the wait for a connection (its try timed out): whether it
        was waiting."""
        assert attempt.backend is not None
        index = attempt.backend.index
        for entry in self.waiting[index]:
            if entry[0] is attempt:
                self.waiting[index].remove(entry)
                self.cluster_of[index].pending -= 1
                return True
        return False

    def drop_waiting(self) -> list[Attempt]:
        """The instance died: the attempts waiting for a connection, no longer waiting."""
        dropped = [attempt for waiting in self.waiting for attempt, _ in waiting]
        for waiting, cluster in zip(self.waiting, self.cluster_of, strict=True):
            cluster.pending -= len(waiting)
            waiting.clear()
        return dropped
