"""Helpers shared by the tests: small scenarios written as dicts, a fixed-choice policy."""

from __future__ import annotations

from typing import Any

from lbsim.policies import Policy


def make_scenario(**changes: Any) -> dict[str, Any]:
    """A one-server scenario with deterministic arrivals; keyword arguments replace top-level keys."""
    base: dict[str, Any] = {
        "name": "test",
        "duration": 1.0,
        "seed": 1,
        "workload": {"arrivals": "deterministic", "rate": 10, "size": "det(50ms)"},
        "servers": [{"name": "web", "count": 1}],
    }
    base.update(changes)
    # Hand-computed timelines leave out the balancer's processing time unless a test sets it.
    base["balancer"] = {"cost": 0, **changes.get("balancer", {})}
    return base


class Fixed(Policy):
    """A user-written policy: always the eligible backend at ``position``."""

    name = "fixed"
    rule = "always the eligible backend at a fixed position"

    def __init__(self, position: int = 0) -> None:
        self.position = position

    def update(self, backends):
        self.backends = list(backends)

    def choose(self, request):
        return self.backends[min(self.position, len(self.backends) - 1)]


def dns_events(result: Any) -> list[list[Any]]:
    """The DNS balancer's verdicts on regions in a simulation result: [t, subject, event] rows."""
    events = result.events
    return events[events["component"] == "dns"][["t", "subject", "event"]].values.tolist()
