"""Join-idle-queue (Lu, Xie, Kliot, Geller, Larus, Greenberg, Performance Evaluation 2011)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from lbsim.draws import UniformDraws
from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request


class JoinIdleQueue(Policy):
    """Send each request to a server from this balancer's idle queue, or at random when it is empty.

    A server that becomes idle reports to the balancer instance whose request it just
    finished, which appends it to its idle queue (once). Dispatch takes the oldest report;
    as in the paper, the entry is not re-checked, so with several instances a reported
    server may have received work since. Tie-break: FIFO reports. Reads: Backend.in_system
    (the server's own report that it is idle). Follows: JIQ (Lu et al., 2011).
    """

    name = "jiq"
    rule = "a server from this instance's idle queue (servers report when idle), else random"

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        self._uniform = UniformDraws(rng)
        self._idle: deque[Backend] = deque()
        self._reported: set[int] = set()
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        self._backends = list(backends)
        self._present = {b.index for b in backends}
        for backend in self._backends:
            if backend.in_system == 0:
                self._report(backend)

    def _report(self, backend: Backend) -> None:
        if backend.index not in self._reported:
            self._reported.add(backend.index)
            self._idle.append(backend)

    def choose(self, request: Request) -> Backend:
        while self._idle:
            backend = self._idle.popleft()
            self._reported.discard(backend.index)
            if backend.index in self._present:
                return backend
        return self._backends[int(self._uniform.next() * len(self._backends))]

    def on_complete(self, backend: Backend, request: Request, latency: float, ok: bool) -> None:
        if backend.in_system == 0 and backend.index in self._present:
            self._report(backend)
