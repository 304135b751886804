"""One balancer instance: its own policy state and its own view of the backends.

The balancer counts a request as active on its backend from dispatch to completion, tells
the policy, and hands the request to the server. When the server is done it tells the
client side through ``finish``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from simpy import Environment

from lbsim.engine.recorder import OK
from lbsim.engine.server import Server
from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request

Finish = Callable[[Request, int, int], None]


class Balancer:
    """A layer-7 balancer instance: every request is balanced on its own."""

    def __init__(
        self,
        env: Environment,
        policy: Policy,
        servers: Sequence[Server],
        weights: Sequence[int],
        rng: np.random.Generator,
        finish: Finish,
    ) -> None:
        self.env = env
        self.policy = policy
        self.servers = list(servers)
        self.finish = finish
        self.backends = [
            Backend(server.index, server.name, weight)
            for server, weight in zip(servers, weights, strict=True)
        ]
        policy.reset(self.backends, rng)
        # Skip the hook calls on the hot path when the policy does not use them.
        self._on_dispatch = policy.on_dispatch if _overrides(policy, "on_dispatch") else None
        self._on_complete = policy.on_complete if _overrides(policy, "on_complete") else None
        for server in self.servers:
            server.done = self.complete

    def dispatch(self, request: Request) -> None:
        """Choose a backend for ``request`` and send it there."""
        backend = self.policy.choose(request)
        backend.active += 1
        request.backend = backend
        if self._on_dispatch is not None:
            self._on_dispatch(backend, request)
        self.servers[backend.index].accept(request)

    def complete(self, request: Request, status: int) -> None:
        """The backend answered ``request`` (or refused it) with ``status``."""
        backend: Backend = request.backend  # type: ignore[assignment]
        backend.active -= 1
        if self._on_complete is not None:
            self._on_complete(backend, request, self.env.now - request.t_arrival, status == OK)
        self.finish(request, backend.index, status)


def _overrides(policy: Policy, hook: str) -> bool:
    return getattr(type(policy), hook) is not getattr(Policy, hook)
