"""gRPC's default policy: every request to one backend, the first reachable one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lbsim.policies.base import Backend, Policy, require
from lbsim.workload import Request


class PickFirst(Policy):
    """Send every request to one backend: the first eligible one in address-list order, kept
    while it stays eligible.

    Rule (gRPC pick_first, gRFC A62): the channel connects to the addresses in list order
    and uses the first that works for every call; when it fails, it starts again from the
    top of the list, so a backend that recovers meanwhile does not win its traffic back
    while the current one works. With ``shuffle_address_list`` the list is shuffled once per
    balancer instance, so many clients spread over the backends instead of all using the
    first. Each balancer instance is one client channel. Tie-break: none. Reads: nothing.
    Follows: gRPC pick_first (gRFC A62's shuffle_address_list).
    """

    name = "pick_first"
    rule = "every request to the first eligible backend in address order, kept until it fails (gRPC)"

    def __init__(self, shuffle_address_list: bool = False) -> None:
        require(
            isinstance(shuffle_address_list, bool),
            "pick_first",
            "shuffle_address_list",
            "true or false",
            shuffle_address_list,
        )
        self.shuffle_address_list = shuffle_address_list

    def reset(self, backends: Sequence[Backend], rng: np.random.Generator) -> None:
        order = sorted(backends, key=lambda b: b.index)
        if self.shuffle_address_list:
            order = [order[i] for i in rng.permutation(len(order))]
        self._rank = {b.index: k for k, b in enumerate(order)}
        self._current: Backend | None = None
        super().reset(backends, rng)

    def update(self, backends: Sequence[Backend]) -> None:
        if self._current is not None and any(b is self._current for b in backends):
            return
        # Addresses that join later go after the ones the channel started with.
        self._current = min(backends, key=lambda b: self._rank.get(b.index, len(self._rank) + b.index))

    def choose(self, request: Request) -> Backend:
        assert self._current is not None
        return self._current
