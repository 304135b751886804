"""A real balancer's config read back as a scenario: its servers (grouped again where their
names say ``<group>-<i>``), its balancer with ``emulate`` set, the directives lbsim does not
read, and a workload that is a marked placeholder (a config does not know its traffic)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from lbsim import __version__
from lbsim.errors import ConfigError, shown

# What the scenario's workload is until the user sets it.
PLACEHOLDER_WORKLOAD = {"arrivals": "poisson", "rate": "100/s", "size": "exp(10ms)"}
_MEMBER = re.compile(r"^([A-Za-z][A-Za-z0-9_.]*)-(\d+)$")


def said(value: object) -> str:
    """A config's word as a note quotes it: escaped as a Python string is (no line breaks into
    a comment), at most 60 characters, without the quotes."""
    text = shown(str(value), 60)
    return text[1:-1] if text.endswith(("'", '"')) else text[1:]


def whole(value: object, what: str) -> int:
    """``value`` (a YAML number or a config's word) as a whole number from 0 to 10^18.

    Raises:
        ConfigError: anything else, naming ``what``.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    raise ConfigError(f"{what} must be a whole number from 0 to 10^18; got {shown(value)}.")


@dataclass
class Server:
    """One server line: its name (or None), address, weight, backup flag, slow-start window (s)."""

    name: str | None
    address: str
    weight: int = 1
    backup: bool = False
    slow_start: float | None = None


@dataclass
class Imported:
    """What a config says: its servers, the scenario's ``balancer`` section, and a line per
    directive lbsim did not read."""

    system: str
    servers: list[Server]
    balancer: dict[str, Any]
    unsupported: list[str] = field(default_factory=list)


def server_groups(servers: list[Server]) -> list[dict[str, Any]]:
    """The ``servers`` section: consecutive servers named ``<g>-0``, ``<g>-1``, ... with the same
    weight, backup flag and slow start make one group ``g``; any other server is a group of its
    own, named after it (characters a group name cannot hold become ``_``) or ``server<k>``."""
    groups: list[dict[str, Any]] = []
    members: list[Server] = []
    for k, server in enumerate(servers):
        match = _MEMBER.match(server.name or "")
        previous = members[-1] if members else None
        if (
            match
            and previous is not None
            and groups[-1]["name"] == match.group(1)
            and int(match.group(2)) == len(members)
            and (server.weight, server.backup, server.slow_start)
            == (previous.weight, previous.backup, previous.slow_start)
        ):
            members.append(server)
            groups[-1]["count"] = len(members)
            groups[-1]["addresses"].append(server.address)
            continue
        if match and match.group(2) == "0":
            name = match.group(1)
        else:
            name = re.sub(r"[^A-Za-z0-9_.]", "_", server.name) if server.name else f"server{k}"
            name = name if name[0].isalpha() else f"s_{name}"
        members = [server]
        group: dict[str, Any] = {"name": name, "count": 1, "weight": server.weight}
        if server.backup:
            group["backup"] = True
        if server.slow_start is not None:
            group["slow_start"] = {"window": server.slow_start}
        group["addresses"] = [server.address]
        groups.append(group)
    for group in groups:  # the same key order whatever was set
        group["addresses"] = group.pop("addresses")
    return groups


def scenario_text(imported: Imported, source: str, name: str) -> str:
    """The scenario YAML, headed by comments naming its source and the unsupported directives,
    with the placeholder workload and servers' speed and workers marked."""
    scenario = {
        "name": name,
        "description": f"Imported from {source} ({imported.system}) by lbsim {__version__} import.",
        "duration": "60s",
        "workload": PLACEHOLDER_WORKLOAD,
        "servers": server_groups(imported.servers),
        "balancer": imported.balancer,
    }
    text = yaml.safe_dump(scenario, sort_keys=False, default_flow_style=None, width=100)
    header = [f"# lbsim import of {source} ({imported.system})"]
    header += [f"# not read: {line}" for line in imported.unsupported]
    marked = text.replace(
        "workload:",
        "# PLACEHOLDER: a config does not know its traffic; set the workload (and duration).\nworkload:",
        1,
    ).replace(
        "servers:",
        "# PLACEHOLDER: nor its servers' speed and workers (1 each here); set them.\nservers:",
        1,
    )
    return "\n".join(header) + "\n" + marked
