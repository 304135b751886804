"""Balancing policies: one class each, and the registry that maps names to them.

A scenario names a policy (``least_connections``), gives a mapping with ``name`` and
parameters, or names a user's class as ``"module:Class"``. From Python, a Policy object
can be passed directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.policies.base import Backend, Policy
from lbsim.policies.chash_random import ChashRandom
from lbsim.policies.edf import EdfRoundRobin
from lbsim.policies.fwrr import FastWeightedRoundRobin
from lbsim.policies.hashing import Maglev, RingHash
from lbsim.policies.ip_hash import IpHash
from lbsim.policies.join_idle_queue import JoinIdleQueue
from lbsim.policies.latency import LeastResponseTime, PeakEwma
from lbsim.policies.least_connections import LeastConnections, WeightedLeastConnections
from lbsim.policies.oracle import JoinShortestQueue, LeastWorkLeft
from lbsim.policies.pick_first import PickFirst
from lbsim.policies.power_of_choices import PowerOfChoices
from lbsim.policies.random import Random, RandomTwo, WeightedRandom
from lbsim.policies.round_robin import RoundRobin, WeightedRoundRobin

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        RoundRobin,
        WeightedRoundRobin,
        EdfRoundRobin,
        FastWeightedRoundRobin,
        LeastConnections,
        WeightedLeastConnections,
        IpHash,
        Random,
        WeightedRandom,
        RandomTwo,
        ChashRandom,
        PowerOfChoices,
        JoinShortestQueue,
        JoinIdleQueue,
        LeastWorkLeft,
        LeastResponseTime,
        PeakEwma,
        RingHash,
        Maglev,
        PickFirst,
    )
}


def policy_class(name: str) -> type[Policy]:
    """Return the policy class registered as ``name``, or loaded from ``"module:Class"``."""
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"must name an importable policy class 'module:Class'; got {shown(name)} "
                f"({shown(str(exc))[1:-1]})."
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise ConfigError(f"must name a subclass of lbsim.Policy; got {shown(name)}.")
        if cls.choose is Policy.choose:
            raise ConfigError(f"must name a policy class that defines choose(); got {shown(name)}.")
        return cls
    if name not in POLICIES:
        raise UnknownNameError("policy", name, POLICIES)
    return POLICIES[name]


def make_policy(spec: str | Mapping[str, Any] | Policy) -> Policy:
    """Build a policy from a name, a mapping ``{name: ..., <parameter>: ...}`` or a Policy.

    Raises:
        ConfigError: unknown name or parameter, or a parameter value the policy rejects.
    """
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, str):
        return policy_class(spec)()
    if isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"must be a policy name or a mapping with 'name'; got {shown(dict(spec))}.")
        cls = policy_class(name)
        known = cls.parameters()
        for key in params:
            if key not in known:
                if not known:
                    raise ConfigError(f"policy {name!r} takes no parameters; got {shown(key)}.")
                raise UnknownNameError(f"parameter of {name}", key, known)
        return cls(**params)
    raise ConfigError(f"must be a policy name or a mapping with 'name'; got {shown(spec)}.")


__all__ = ["POLICIES", "Backend", "Policy", "make_policy", "policy_class"]
