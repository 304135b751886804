"""Reading a scenario: YAML (``yaml.safe_load``, nothing evaluated), overrides, checking,
and the source a checked scenario remembers so cells and overrides start from it.
"""

from __future__ import annotations

import copy
import reprlib
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from lbsim.config.messages import describe
from lbsim.config.overrides import set_path
from lbsim.config.scenario import Scenario
from lbsim.errors import ConfigError, file_named, shown
from lbsim.input_files import read_input_bytes

# The most errors one check of a scenario reports, a line each (the first ones found).
ERRORS_SHOWN = 5


def load_scenario(
    source: str | Path | Mapping[str, Any] | Scenario,
    *,
    overrides: Iterable[tuple[str, Any]] = (),
    sweeps: Iterable[tuple[str, list[Any]]] = (),
    safe: bool = False,
) -> Scenario:
    """Read, override and check a scenario.

    Args:
        source: a YAML file path, a mapping with the same keys, or a Scenario.
        overrides: (key path, value) pairs applied before checking, as ``--set``; a key the
            sweep varies takes that one value in every cell.
        sweeps: (key path, values) pairs that replace or add sweep axes, as ``--sweep``.
        safe: check the scenario as untrusted (``--safe``): refuse ``module:Class`` policies
            (before importing anything) and files outside the scenario's folder; a Scenario
            checked safe stays so in every cell.

    Raises:
        ConfigError: one line naming the file, the key path, the rule and the value.
    """
    if isinstance(source, Scenario):
        where, base_dir, data = (
            source._source.where,
            source._source.base_dir,
            copy.deepcopy(source._source.data),
        )
        safe = safe or source._source.safe
    elif isinstance(source, Mapping):
        where, base_dir, data = "<scenario>", Path.cwd(), copy.deepcopy(dict(source))
    else:
        path = Path(source)
        where, base_dir = file_named(path), path.parent
        data = _read_yaml(path)
    try:
        for key, value in overrides:
            data = set_path(data, key, _yaml_value(value))
            sweep = data.get("sweep")
            if isinstance(sweep, dict) and key in sweep:
                # The sweep would set the key in every cell: the value given replaces that axis.
                data["sweep"] = {**sweep, key: [_yaml_value(value)]}
        for key, values in sweeps:
            sweep = dict(data.get("sweep") or {})
            sweep[key] = [_yaml_value(value) for value in values]
            data["sweep"] = sweep
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key} {exc}") from None
    scenario = _validate(_Source(data, where, base_dir, safe))
    for i, expectation in enumerate(scenario.expect):
        for key in expectation.where or {}:
            if key in scenario.sweep:
                continue
            # Only swept keys are columns of the table expectations are checked against.
            varied = (
                f" ({', '.join(scenario.sweep)}); got {shown(key)}."
                if scenario.sweep
                else (f"; got {shown(key)}, and the sweep varies nothing.")
            )
            raise ConfigError(f"{where}: expect[{i}].where must name a key the sweep varies{varied}")
    for key, values in scenario.sweep.items():
        for i, value in enumerate(values):
            scenario._source.cell({key: value}, f"sweep.{key}[{i}]")
    return scenario


class _RepeatedKey(yaml.YAMLError):
    def __init__(self, key: object, mark: yaml.Mark) -> None:
        super().__init__(f"repeated key {key!r}")
        self.key = key
        self.mark = mark


class _UniqueKeys:
    """For a YAML loader: refuse a key written twice in one mapping (YAML keeps the last, so
    a typo'd copy would silently win); keys merged in with ``<<`` may be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if isinstance(key, Hashable):
                if key in seen:
                    raise _RepeatedKey(key, key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """``yaml.safe_load`` with unique keys: data, never objects."""


class _FastUniqueKeyLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same, parsing with libyaml where PyYAML was built with it (about ten times faster)."""


def _read_yaml(path: Path) -> dict[str, Any]:
    name = file_named(path)
    data = read_yaml(read_input_bytes(path, f"{name}: the scenario file "), name)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{name}: the file must hold a mapping of scenario keys; got {type(data).__name__}."
        )
    return data


def read_yaml(content: bytes, name: str) -> Any:
    """The data of a YAML file's ``content`` (a SafeLoader: data, never objects; no key twice
    in a mapping); ``name`` starts each error.

    Raises:
        ConfigError: not YAML, nested too deeply, a repeated key, a number too long to read.
    """
    try:
        # Bytes, so that YAML's own rule picks the encoding: UTF-8, or UTF-16 with a byte order mark.
        try:
            data = yaml.load(content, Loader=_FastUniqueKeyLoader)  # a SafeLoader: data, never objects
        except yaml.YAMLError:
            # Read again by the pure-Python parser, whose messages say more ("but got ':'").
            data = yaml.load(content, Loader=_UniqueKeyLoader)
    except RecursionError:
        raise ConfigError(f"{name}: the file must nest mappings and lists less deeply; got deeper.") from None
    except ValueError:  # Python reads integers of at most 4,300 digits
        raise ConfigError(
            f"{name}: the file must hold numbers of at most 4,300 digits; got longer."
        ) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"{name}: the file must be UTF-8 text (or UTF-16 with a byte order mark); "
            f"got a byte that is not, at position {exc.position}."
        ) from None
    except _RepeatedKey as exc:
        raise ConfigError(
            f"{name}: the file must not repeat a key in one mapping (line {exc.mark.line + 1}); "
            f"got {shown(exc.key)} twice."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(
            f"{name}: the file must be valid YAML{line}; got {getattr(exc, 'problem', exc)}."
        ) from None
    return data


def _yaml_value(value: Any) -> Any:
    """A value given on the command line, read as YAML (``4``, ``10ms``, ``{interval: 2s}``)."""
    if not isinstance(value, str):
        return value
    try:
        return yaml.load(value, Loader=_UniqueKeyLoader)  # a SafeLoader: data, never objects
    except RecursionError:
        raise ConfigError(f"must nest mappings and lists less deeply; got {shown(value)}.") from None
    except ValueError:  # Python reads integers of at most 4,300 digits
        raise ConfigError(f"must be a number of at most 4,300 digits; got {shown(value)}.") from None
    except _RepeatedKey as exc:
        raise ConfigError(
            f"must not repeat a key in one mapping; got {reprlib.repr(exc.key)} twice."
        ) from None
    except yaml.YAMLError:
        raise ConfigError(f"must be a YAML value; got {reprlib.repr(value)}.") from None


@dataclass(frozen=True, slots=True)
class _Source:
    """A scenario's input data, the file it came from and the folder its paths are relative to."""

    data: dict[str, Any]
    where: str
    base_dir: Path
    # Checked as untrusted (--safe): see load_scenario.
    safe: bool = False

    def cell(self, values: Mapping[str, Any], label: str) -> Scenario:
        data = dict(self.data, sweep={})
        for key, value in values.items():
            try:
                data = set_path(data, key, value)
            except ConfigError as exc:
                raise ConfigError(f"{self.where}: {label}: {key} {exc}") from None
        return _validate(_Source(data, self.where, self.base_dir, self.safe), label)


def _validate(source: _Source, label: str = "") -> Scenario:
    try:
        scenario = Scenario.model_validate(
            source.data, context={"base_dir": str(source.base_dir), "safe": source.safe}
        )
    except ValidationError as exc:
        prefix = f"{source.where}: {label}: " if label else f"{source.where}: "
        errors = exc.errors()
        lines = [prefix + describe(error) for error in errors[:ERRORS_SHOWN]]
        if len(errors) > ERRORS_SHOWN:
            lines.append(f"{prefix}and {len(errors) - ERRORS_SHOWN} more error(s).")
        raise ConfigError("\n".join(lines)) from None
    scenario._source = source
    return scenario
