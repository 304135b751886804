"""``precision``: run until precise, the target a sweep adds replications for (see
:mod:`lbsim.precision`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from lbsim.config.base import Model
from lbsim.errors import ConfigError, shown
from lbsim.limits import MAX_REPLICATIONS, PILOT_REPLICATIONS
from lbsim.results.expectations import check_metric
from lbsim.units import parse_share


def _share(value: object) -> float:
    """A share of the value in (0, 1): ``2%`` or ``0.02``."""
    relative = parse_share(value)
    if not 0 < relative < 1:
        raise ConfigError(f"must be a share of the value in (0%, 100%); got {shown(value)}.")
    return relative


class PrecisionModel(Model):
    """Add replications to each cell until ``metric``'s 95% half-width is at most
    ``relative`` x its value, or ``max_replications`` is reached."""

    metric: Annotated[str, BeforeValidator(check_metric)] = "latency_p99"
    relative: Annotated[float, BeforeValidator(_share)]
    max_replications: int = Field(100, ge=PILOT_REPLICATIONS, le=MAX_REPLICATIONS)
