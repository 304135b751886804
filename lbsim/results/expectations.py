"""Expectations a scenario declares about its own results, checked after the run.

They are data, never code: a metric, an optional policy (and swept values) to look at, and
one rule: ``below`` / ``above`` another policy in every matching cell, ``max`` / ``min``
bounds, or ``within`` a relative tolerance ``of`` a value. Each is checked on the per-cell
means of ``table.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.results.columns import METRICS

if TYPE_CHECKING:
    # Only for annotations: the scenario schema imports this module, and `lbsim --help`
    # should not wait for pandas.
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Outcome:
    """One checked expectation; one naming a policy the run does not have (another sweep,
    ``--set balancer.policy=...``) is not ``applicable`` and fails nothing."""

    text: str
    holds: bool
    detail: str
    applicable: bool = True

    @property
    def word(self) -> str:
        """``holds``, ``FAILS`` or ``not applicable``."""
        return "not applicable" if not self.applicable else "holds" if self.holds else "FAILS"

    @property
    def failed(self) -> bool:
        return self.applicable and not self.holds


def check_metric(metric: str) -> str:
    """Raise unless ``metric`` is a summary metric."""
    if not isinstance(metric, str):
        raise ConfigError(f"must be a metric name; got {shown(metric)}.")
    if metric not in METRICS:
        raise UnknownNameError("metric", metric, METRICS)
    return metric


def describe(expectation: Any) -> str:
    """The expectation in words, as written in the scenario, its values in their units."""
    parts = [expectation.metric]
    if expectation.policy:
        parts.append(f"of {expectation.policy}")
    if expectation.where:
        parts.append("where " + ", ".join(f"{k}={v}" for k, v in expectation.where.items()))
    if expectation.below or expectation.above:
        parts.append(f"{'below' if expectation.below else 'above'} {expectation.below or expectation.above}")
    if expectation.max is not None:
        parts.append(f"<= {_in_unit(expectation.metric, expectation.max)}")
    if expectation.min is not None:
        parts.append(f">= {_in_unit(expectation.metric, expectation.min)}")
    if expectation.of is not None:
        parts.append(f"within {expectation.within:.0%} of {_in_unit(expectation.metric, expectation.of)}")
    return " ".join(parts)


def _in_unit(metric: str, value: float) -> str:
    """``value`` of ``metric`` with its unit: ``100 ms``, ``1.00%``, ``90.0 requests/s``."""
    from lbsim.output.quantities import scale, shown_value

    text = shown_value(metric, value)
    unit, _ = scale(metric, [value])
    return text if unit in ("", "ms", "s", "%") else f"{text} {unit}"


def _where(rows: pd.DataFrame, key: str, value: Any) -> pd.DataFrame:
    """The rows whose ``key`` holds ``value``: as a number for a numeric column (``100``,
    ``100.0`` or ``100rps``), else as text."""
    from lbsim.units import parse_duration, parse_rate

    if rows[key].dtype.kind in "if" and not isinstance(value, bool):
        parse = parse_rate if key.endswith("rate") else parse_duration
        try:
            number = parse(value)
        except ConfigError:
            return rows.iloc[:0]
        return rows[np.isclose(rows[key].to_numpy(dtype=float), number)]
    return rows[rows[key].astype(str) == str(value)]


def check(expectations: list[Any], table: pd.DataFrame, keys: list[str]) -> list[Outcome]:
    """Check every expectation against the per-cell table (``keys`` identify a cell)."""
    outcomes = []
    for expectation in expectations:
        rows = table
        for key, value in (expectation.where or {}).items():
            rows = _where(rows, key, value)
        metric = expectation.metric
        other = expectation.below or expectation.above
        missing = [p for p in (expectation.policy, other) if p and p not in set(table["policy"])]
        if missing:
            detail = f"no policy {shown(missing[0])} in this run"
            outcomes.append(Outcome(describe(expectation), False, detail, applicable=False))
            continue
        if other:
            outcomes.append(_compare(expectation, rows, keys, other))
            continue
        if expectation.policy:
            rows = rows[rows["policy"] == expectation.policy]
        values = rows[metric]
        if values.empty:
            outcomes.append(Outcome(describe(expectation), False, "no cell matches"))
            continue
        if expectation.of is not None:
            off = ((values - expectation.of).abs() / abs(expectation.of)).max()
            holds = off <= expectation.within
            detail = f"{len(values)} cell(s), farthest {off:.1%} off"
        elif expectation.max is not None:
            holds = values.max() <= expectation.max
            detail = f"largest {_in_unit(metric, values.max())}"
        else:
            holds = values.min() >= expectation.min
            detail = f"smallest {_in_unit(metric, values.min())}"
        outcomes.append(Outcome(describe(expectation), bool(holds), detail))
    return outcomes


def _compare(expectation: Any, rows: pd.DataFrame, keys: list[str], other: str) -> Outcome:
    others = [k for k in keys if k not in ("scenario", "policy")]
    mine = (
        rows[rows["policy"] == expectation.policy].set_index(others)
        if others
        else rows[rows["policy"] == expectation.policy]
    )
    theirs = rows[rows["policy"] == other].set_index(others) if others else rows[rows["policy"] == other]
    if mine.empty or theirs.empty:
        return Outcome(describe(expectation), False, "no cell matches")
    a = mine[expectation.metric].to_numpy() if not others else mine[expectation.metric]
    b = (
        theirs[expectation.metric].to_numpy()
        if not others
        else theirs[expectation.metric].reindex(mine.index)
    )
    holds = np.asarray((a < b) if expectation.below else (a > b))
    return Outcome(describe(expectation), bool(holds.all()), f"{int(holds.sum())} of {holds.size} cell(s)")
