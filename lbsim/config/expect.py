"""``expect``: expectations about the results, checked after a run (data, never code)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lbsim.config.base import Model
from lbsim.errors import ConfigError
from lbsim.results.expectations import check_metric
from lbsim.units import parse_share, parse_threshold


class ExpectModel(Model):
    """An expectation about the results (data, never code); see lbsim.results.expectations."""

    metric: Annotated[str, BeforeValidator(check_metric)]
    policy: str | None = None
    where: dict[str, Any] | None = None
    below: str | None = None
    above: str | None = None
    max: float | None = None
    min: float | None = None
    within: Annotated[float, BeforeValidator(parse_share)] | None = None
    of: float | None = None

    @field_validator("max", "min", "of", mode="before")
    @classmethod
    def _in_units(cls, value: Any, info: ValidationInfo) -> Any:
        """``max: 200ms`` for a latency, ``min: 400rps`` for throughput, ``max: 1%`` for a share."""
        metric = info.data.get("metric")
        if value is None:
            return value
        if metric is None:  # an unknown metric, reported on its own: no second error here
            return 0.0
        return parse_threshold(metric, value)

    @model_validator(mode="after")
    def _one_rule(self) -> ExpectModel:
        rules = [self.below or self.above, self.max is not None or self.min is not None, self.of is not None]
        if sum(bool(rule) for rule in rules) != 1:
            raise ConfigError("must have one rule: below/above a policy, max/min, or within ... of; got "
                              f"{sum(bool(rule) for rule in rules)}.")  # fmt: skip
        if (self.below or self.above) and not self.policy:
            raise ConfigError("must name the policy compared; got nothing.", key="policy")
        if (self.within is None) != (self.of is None):
            raise ConfigError("must come with 'of' (and 'of' with 'within'); got one of them.", key="within")
        return self
