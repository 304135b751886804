"""The backends of a scenario as a real balancer's config lists them: one per server, with
its address, weight, backup flag and slow-start window, and the policy's name and parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lbsim.config.scenario import Scenario
from lbsim.errors import ConfigError, shown

# Where the backends listen when neither the scenario (``addresses``) nor --backends says.
FIRST_PORT = 8001
# HOST:PORT, the host a name, an IPv4 address or a bracketed IPv6 address.
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class Backend:
    """One server as a balancer's config lists it (``web-0``, ``127.0.0.1:8001``)."""

    name: str
    address: str
    weight: int
    backup: bool
    slow_start: float | None


def policy_of(scenario: Scenario) -> tuple[str, dict[str, Any]]:
    """The balancer's policy: its lbsim name and the parameters the scenario gives it."""
    spec = scenario.balancer.policy
    if isinstance(spec, Mapping):
        return str(spec["name"]), {key: value for key, value in spec.items() if key != "name"}
    if isinstance(spec, str):
        return spec, {}
    return type(spec).__name__, {}


def backends_of(scenario: Scenario, addresses: Sequence[str] | None, weighted: bool) -> list[Backend]:
    """Every server of ``scenario`` in order, at ``addresses`` (one per server), else at the
    group's ``addresses``, else at 127.0.0.1 from port FIRST_PORT; weights 1 unless ``weighted``
    (an lbsim policy that ignores weights exports as one that is given none).

    Raises:
        ConfigError: ``addresses`` not HOST:PORT, or not one per server.
    """
    servers = [(group, i) for group in scenario.servers for i in range(group.count)]
    if addresses is not None:
        for address in addresses:
            check_address(address, "--backends")
        if len(addresses) != len(servers):
            raise ConfigError(
                f"--backends must give one address per server ({len(servers)}); got {len(addresses)}."
            )
    backends = []
    for k, (group, i) in enumerate(servers):
        if addresses is not None:
            address = addresses[k]
        elif group.addresses is not None:
            address = check_address(group.addresses[i], f"servers[{scenario.servers.index(group)}].addresses")
        else:
            address = f"127.0.0.1:{FIRST_PORT + k}"
        backends.append(
            Backend(
                f"{group.name}-{i}",
                address,
                group.weight if weighted else 1,
                group.backup,
                group.slow_start.window if group.slow_start is not None else None,
            )
        )
    return backends


def check_address(address: str, what: str) -> str:
    """``address`` when it is HOST:PORT with a port from 1 to 65535 (an IPv6 host in brackets).

    Raises:
        ConfigError: anything else, naming ``what``.
    """
    match = _ADDRESS.match(address)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise ConfigError(
            f"{what} must be HOST:PORT addresses (port 1-65535, [IPv6]:PORT); got {shown(address)}."
        )
    return address


# How long one try waits for its answer unless retries.try_timeout says: what export writes as
# HAProxy's timeout server, and NGINX's proxy_read_timeout default.
TRY_TIMEOUT = 60.0


def try_timeout(scenario: Scenario) -> float:
    """How long one try of ``scenario``'s balancer may wait for its answer (s)."""
    retries = scenario.balancer.retries
    return retries.try_timeout if retries is not None and retries.try_timeout is not None else TRY_TIMEOUT


def seconds(value: float) -> str:
    """A duration as HAProxy and NGINX write it: whole milliseconds (``250ms``, ``10s``)."""
    ms = round(value * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
