"""Key movement of a policy when one backend leaves or one joins: the case for consistent hashing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lbsim.policies import Backend, Policy, make_policy
from lbsim.workload import Request


@dataclass(frozen=True, slots=True)
class Remap:
    """How many keys changed backend, and how evenly keys spread.

    Attributes:
        moved_on_remove: fraction of keys whose backend changed when one backend left.
        moved_on_add: fraction of keys whose backend changed when one backend joined.
        spread: max over mean keys per backend, with all ``backends`` present.
    """

    policy: str
    backends: int
    keys: int
    moved_on_remove: float
    moved_on_add: float
    spread: float


def _assign(policy: Policy, keys: int) -> np.ndarray:
    return np.array([policy.choose(Request(k, 0.0, 0.0, k)).index for k in range(keys)])


def remap(policy: str | Policy, *, backends: int = 10, keys: int = 10_000, seed: int = 0) -> Remap:
    """Map ``keys`` clients over ``backends`` backends, then remove one and add one.

    The removed backend is the middle one; the added one is a new name. Key k is client
    number k (its address, session and path follow from it).
    """
    chosen = make_policy(policy)
    fleet = [Backend(i, f"web-{i}") for i in range(backends + 1)]
    chosen.reset(fleet[:backends], np.random.default_rng(seed))
    before = _assign(chosen, keys)
    chosen.update([b for b in fleet[:backends] if b.index != backends // 2])
    removed = _assign(chosen, keys)
    chosen.update(fleet)
    added = _assign(chosen, keys)
    counts = np.bincount(before, minlength=backends)
    return Remap(
        policy=chosen.label(),
        backends=backends,
        keys=keys,
        moved_on_remove=float(np.mean(removed != before)),
        moved_on_add=float(np.mean(added != before)),
        spread=float(counts.max() / counts.mean()),
    )
