"""Conformance checks for policies, public so that users can run them on their own classes.

``check_policy(policy)`` drives a policy through dispatches, completions and membership
changes the way the engine does and raises AssertionError naming the broken rule.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from lbsim.errors import shown
from lbsim.policies.base import Backend, Policy
from lbsim.workload import Request

_FIELDS = ("index", "name", "weight", "zone", "active")


def _fleet() -> list[Backend]:
    return [Backend(i, f"s-{i}", weight=1 + i % 3, zone="ab"[i % 2]) for i in range(7)]


def _drive(policy: Policy, seed: int, steps: int = 400) -> list[int]:
    """Run ``policy`` through a fixed script of picks, ends and membership changes."""
    fleet = _fleet()
    script = np.random.default_rng(12345)
    policy.reset(fleet, np.random.default_rng(seed))
    eligible: list[Backend] = list(fleet)
    outstanding: list[tuple[Backend, Request]] = []
    picks = []
    for step in range(steps):
        if step in (100, 200, 300):
            eligible = _membership(fleet, step)
            policy.update(eligible)
        if outstanding and script.random() < 0.45:
            backend, request = outstanding.pop(int(script.integers(len(outstanding))))
            before = _snapshot(fleet)
            backend.active -= 1
            before[backend.index]["active"] -= 1
            policy.on_complete(backend, request, float(script.exponential(0.02)), bool(script.random() < 0.9))
            _unchanged(before, fleet, "on_complete")
            continue
        request = Request(step, step * 0.01, float(script.exponential(0.02)), int(script.integers(0, 50)))
        before = _snapshot(fleet)
        backend = policy.choose(request)
        _unchanged(before, fleet, "choose")
        assert isinstance(backend, Backend), f"{policy!r}.choose must return a Backend; got {shown(backend)}."
        assert any(backend is b for b in eligible), (
            f"{policy!r}.choose must return an eligible backend; got {backend.name} "
            f"(eligible: {[b.name for b in eligible]})."
        )
        backend.active += 1
        before = _snapshot(fleet)
        policy.on_dispatch(backend, request)
        _unchanged(before, fleet, "on_dispatch")
        outstanding.append((backend, request))
        picks.append(backend.index)
    return picks


def _membership(fleet: Sequence[Backend], step: int) -> list[Backend]:
    if step == 100:
        return [b for b in fleet if b.index != 2]
    if step == 200:
        return [fleet[4]]
    return list(fleet)


def _snapshot(fleet: Sequence[Backend]) -> list[dict[str, Any]]:
    return [{name: getattr(b, name) for name in _FIELDS} for b in fleet]


def _unchanged(before: list[dict[str, Any]], fleet: Sequence[Backend], where: str) -> None:
    after = _snapshot(fleet)
    for old, new in zip(before, after, strict=True):
        assert old == new, f"{where} must not change a Backend view; {old} became {new}."


def check_policy(policy: Policy) -> None:
    """Check that ``policy`` keeps the policy contract (DESIGN.md section 5).

    Checks: parameters stored unchanged and shown in ``repr``; every choice is an eligible
    backend, through dispatches, completions and membership changes (one removed, a single
    one, all back); the same seed gives the same choices; no draw from global random state;
    Backend views are never written.

    Raises:
        AssertionError: naming the rule that is broken.
    """
    for name, value in policy.params().items():
        assert f"{name}={value!r}" in repr(policy), f"repr must show parameter {name}; got {shown(policy)}."
    global_numpy = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    # lbsim never imports the random module; if anything has, its state must not move.
    stdlib_random = sys.modules.get("random")
    global_random = stdlib_random.getstate() if stdlib_random is not None else None
    first = _drive(copy.deepcopy(policy), seed=1)
    assert np.array_equal(np.random.get_state()[1], global_numpy), (  # type: ignore[index]  # noqa: NPY002
        f"{policy!r} must not draw from numpy's global random state."
    )
    if stdlib_random is not None:
        assert stdlib_random.getstate() == global_random, f"{policy!r} must not draw from the random module."
    second = _drive(copy.deepcopy(policy), seed=1)
    assert first == second, f"{policy!r} must choose the same backends for the same seed."
