"""``faults``: what fails, how and when."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
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
    random ``mtbf`` / ``mttr``, exponential when given as durations)."""

    target: str
    kind: str
    at: Duration | None = Field(None, ge=0)
    duration: Duration | None = Field(None, gt=0)
    mtbf: TimeBetween | None = None
    mttr: TimeBetween | None = None
    factor: float | None = Field(None, gt=1)
    probability: float | None = Field(None, gt=0, le=1)
    latency: Duration = Field(0.001, ge=0)

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
        for a, b in (("at", "duration"), ("mtbf", "mttr")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ConfigError(
                    f"must be given with {a!r}; got nothing.", key=b if getattr(self, a) is not None else a
                )
        if (self.kind == "slow") != (self.factor is not None):
            raise ConfigError(f"must be given for kind 'slow' only; got {shown(self.factor)}.", key="factor")
        if (self.kind == "errors") != (self.probability is not None):
            raise ConfigError(
                f"must be given for kind 'errors' only; got {shown(self.probability)}.", key="probability"
            )
        return self
