"""``faults``: what fails, how and when."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lbsim.config.base import Duration, Model, read_distribution
from lbsim.distributions import Distribution, Exponential
from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.units import parse_duration


def _duration_or_distribution(value: object, info: ValidationInfo) -> Distribution:
    try:
        return Exponential(parse_duration(value))
    except ConfigError:
        return read_distribution(value, info)


TimeBetween = Annotated[Distribution, BeforeValidator(_duration_or_distribution)]
FAULT_KINDS = ("crash", "hang", "slow", "errors")


class FaultModel(Model):
    """A fault: what fails (``target``), how (``kind``) and when (``at`` + ``duration``, or
    random ``mtbf`` / ``mttr``, exponential when given as durations). Without a
    ``duration`` (or with ``duration: forever``) a fault at ``at`` lasts to the end of the run."""

    target: str
    kind: str
    at: Duration | None = Field(None, ge=0)
    duration: Duration | None = Field(None, gt=0)
    mtbf: TimeBetween | None = None
    mttr: TimeBetween | None = None
    factor: float | None = Field(None, gt=1)
    probability: float | None = Field(None, gt=0, le=1)
    latency: Duration = Field(0.001, ge=0)

    @field_validator("duration", mode="before")
    @classmethod
    def _forever(cls, value: Any) -> Any:
        return None if value == "forever" else value

    @model_validator(mode="after")
    def _consistent(self) -> FaultModel:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(str(UnknownNameError("fault kind", self.kind, FAULT_KINDS)), key="kind")
        scheduled = self.at is not None or self.duration is not None
        random = self.mtbf is not None or self.mttr is not None
        if scheduled == random:
            raise ConfigError(
                "must be timed by 'at' and 'duration' or by 'mtbf' and 'mttr'; got neither or both."
            )
        if self.at is None and self.duration is not None:
            raise ConfigError("must be given with 'duration'; got nothing.", key="at")
        if (self.mtbf is None) != (self.mttr is None):
            raise ConfigError(
                "must be given with 'mtbf'; got nothing."
                if self.mtbf is not None
                else "must be given with 'mttr'; got nothing.",
                key="mttr" if self.mtbf is not None else "mtbf",
            )
        if (self.kind == "slow") != (self.factor is not None):
            raise ConfigError(f"must be given for kind 'slow' only; got {shown(self.factor)}.", key="factor")
        if (self.kind == "errors") != (self.probability is not None):
            raise ConfigError(
                f"must be given for kind 'errors' only; got {shown(self.probability)}.", key="probability"
            )
        return self
