"""The parts every scenario section is made of: a frozen model that rejects unknown keys,
and the value types that parse durations, rates, distributions and policy names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    model_validator,
)

from lbsim.distributions import Distribution, parse_distribution
from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.policies import make_policy
from lbsim.units import parse_duration, parse_rate


def on_spelled(data: Mapping[Any, Any]) -> dict[Any, Any]:
    """``data`` with the key YAML 1.1 reads as the boolean true (``on``) spelled ``on``."""
    return {("on" if key is True else key): value for key, value in data.items()}


def read_distribution(value: object, info: ValidationInfo) -> Distribution:
    """A distribution written in a scenario (file paths relative to the scenario file)."""
    return parse_distribution(value, scenario_folder(info), confined=safe(info))


def scenario_folder(info: ValidationInfo) -> Path | None:
    """The folder the scenario's file paths are relative to."""
    base_dir = (info.context or {}).get("base_dir")
    return Path(base_dir) if base_dir else None


def safe(info: ValidationInfo) -> bool:
    """Whether the scenario is checked as untrusted (``--safe``): no ``module:Class`` policy,
    no file outside the scenario's folder."""
    return bool((info.context or {}).get("safe"))


def _policy(value: object, info: ValidationInfo) -> object:
    name = value.get("name") if isinstance(value, Mapping) else value
    if safe(info) and isinstance(name, str) and ":" in name:
        # Refused before make_policy would import the module.
        raise ConfigError(
            f"must be a built-in policy with --safe (module:Class runs code the scenario names); "
            f"got {shown(name)}."
        )
    make_policy(value)  # type: ignore[arg-type]
    return value


@dataclass(frozen=True, slots=True)
class Unit:
    """The unit a field's number is in, as a scenario writes it after the number (``s``,
    ``/s``): the resolved scenario in ``report.md`` spells values with it."""

    symbol: str


Duration = Annotated[float, BeforeValidator(parse_duration), Unit("s")]
Rate = Annotated[float, BeforeValidator(parse_rate), Unit("/s")]
Dist = Annotated[Distribution, BeforeValidator(read_distribution)]
PolicySpec = Annotated[Any, BeforeValidator(_policy)]


class Model(BaseModel):
    """A part of a scenario: frozen, every key must be known, numbers must be finite, and true
    or false is not a number (pydantic would read true as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key, value in data.items():
                if key not in cls.model_fields:
                    raise UnknownNameError("key", str(key), cls.model_fields)
                number = _number_kind(cls.model_fields[key].annotation)
                if isinstance(value, bool) and number is not None:
                    raise ConfigError(f"must be {number}; got {value}.", key=str(key))
        return data


def _number_kind(annotation: Any) -> str | None:
    """'an integer' or 'a number' when ``annotation`` is int or float (or either or None)."""
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    for option in options:
        if option is int:
            return "an integer"
        if option is float:
            return "a number"
    return None
