"""The sweep grid: one cell per combination of the swept values, each a checked scenario."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from lbsim.config.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Cell:
    """One point of a sweep grid: the values of the swept keys and the resolved scenario."""

    index: int
    values: dict[str, Any]
    scenario: Scenario


def expand(scenario: Scenario) -> list[Cell]:
    """Return the cells of the sweep grid (the Cartesian product of its axes), in order; they
    are made once per Scenario (a frozen object, so they cannot go stale)."""
    if scenario._cells is None:
        axes = list(scenario.sweep.items())
        cells = []
        for index, combo in enumerate(itertools.product(*(values for _, values in axes))):
            values = {key: value for (key, _), value in zip(axes, combo, strict=True)}
            cells.append(Cell(index, values, scenario._source.cell(values, f"sweep cell {index}")))
        scenario._cells = cells
    return list(scenario._cells)
