"""The key-path language of ``--set`` and ``--sweep``: ``servers[0].count=4``."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from lbsim.config.scenario import Scenario
from lbsim.errors import ConfigError, shown


def parse_key_path(path: str) -> list[str | int]:
    """Split ``servers[0].count`` into ``['servers', 0, 'count']``."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*", path):
        raise ConfigError(f"must be a key path such as 'servers[0].count'; got {shown(path)}.")
    tokens: list[str | int] = []
    for part in path.split("."):
        name, *indices = re.split(r"[\[\]]+", part.rstrip("]"))
        tokens.append(name)
        tokens.extend(int(i) for i in indices)
    return tokens


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a deep copy of ``data`` with the key at ``path`` set to ``value``."""
    tokens = parse_key_path(path)
    data = copy.deepcopy(data)
    node: Any = data
    for depth, token in enumerate(tokens[:-1]):
        nxt = tokens[depth + 1]
        node = _child(node, token, path, list if isinstance(nxt, int) else dict)
    last = tokens[-1]
    if isinstance(last, int):
        _check_index(node, last, path)
    elif not isinstance(node, dict):
        raise ConfigError(f"must lead to a mapping before {last!r}; got {shown(node)}.")
    node[last] = value
    return data


def written(scenario: Scenario, path: str) -> Any:
    """The value at ``path`` as the scenario's source wrote it (None when absent), before
    parsing: what an override must extend to keep the rest as it was."""
    try:
        return copy.deepcopy(get_path(scenario._source.data, path))
    except (KeyError, IndexError):
        return None


def get_path(data: Any, path: str) -> Any:
    """Return the value at ``path`` in a scenario or a plain mapping."""
    node = data
    for token in parse_key_path(path):
        node = node[token] if isinstance(token, int) or isinstance(node, Mapping) else getattr(node, token)
    return node


def _child(node: Any, token: str | int, path: str, kind: type) -> Any:
    if isinstance(token, int):
        _check_index(node, token, path)
        return node[token]
    if not isinstance(node, dict):
        raise ConfigError(f"must lead to a mapping before {token!r}; got {shown(node)}.")
    if node.get(token) is None:
        node[token] = kind()
    return node[token]


def _check_index(node: Any, index: int, path: str) -> None:
    if not isinstance(node, list):
        raise ConfigError(f"must index a list; got {shown(node)}.")
    if index >= len(node):
        raise ConfigError(f"must use an index < {len(node)}; got {index}.")


def split_values(text: str) -> list[str]:
    """Split ``a,b(c, d),e`` on the commas outside parentheses and brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts]


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """Split ``key.path=value`` given to ``option``."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"{option} must be written key.path=value; got {shown(text)}.")
    return path.strip(), value
