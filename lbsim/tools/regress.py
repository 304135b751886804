"""Regression of algorithm behaviour: rerun the canonical scenarios, compare with a baseline.

A baseline folder holds, per scenario, ``baseline.json`` (the scenario file, the overrides
that keep it small, seed and replications) and the ``table.csv`` it produced. A metric of a
cell has moved when the change is statistically significant (larger than the combined
95% half-widths of both runs) and larger than a practical threshold (15% of the baseline
value, and at least an absolute floor per metric, so that noise around zero never counts).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lbsim.atomic import write_text_atomic
from lbsim.config.loading import load_scenario
from lbsim.errors import ConfigError
from lbsim.runner import run_sweep

# The canonical scenarios and the overrides that make them quick enough for CI.
CANONICAL: dict[str, dict[str, Any]] = {
    "quickstart": {"duration": "60s", "warmup": "6s"},
    "slow-servers": {"duration": "60s", "warmup": "6s"},
    "high-variance": {"duration": "60s", "warmup": "6s"},
    "hashing": {"duration": "40s", "warmup": "4s"},
}
COMPARED = ("latency_mean", "latency_p99", "error_rate", "utilization_max", "imbalance", "session_moves")
RELATIVE = 0.15
FLOOR = {
    "latency_mean": 0.002,
    "latency_p99": 0.005,
    "error_rate": 0.01,
    "utilization_max": 0.03,
    "imbalance": 0.05,
    "session_moves": 0.02,
}


@dataclass(frozen=True, slots=True)
class Change:
    """A metric of a cell compared with its baseline."""

    scenario: str
    cell: str
    metric: str
    baseline: float
    baseline_ci: float
    now: float
    now_ci: float

    @property
    def significant(self) -> bool:
        """The change is larger than the two runs' combined 95% half-widths."""
        spread = math.hypot(_zero(self.baseline_ci), _zero(self.now_ci))
        return abs(self.now - self.baseline) > spread

    @property
    def practical(self) -> bool:
        """The change is larger than 15% of the baseline and the metric's absolute floor."""
        return abs(self.now - self.baseline) > max(RELATIVE * abs(self.baseline), FLOOR[self.metric])

    @property
    def moved(self) -> bool:
        return self.significant and self.practical


def _zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def _run(spec: dict[str, Any], jobs: int | None, seed: int | None) -> tuple[pd.DataFrame, list[str]]:
    scenario = load_scenario(Path(spec["scenario"]), overrides=list(spec["overrides"].items()))
    result = run_sweep(
        scenario, jobs=jobs, seed=spec["seed"] if seed is None else seed, replications=spec["replications"]
    )
    return result.table, result.keys


def update(
    baseline: Path,
    *,
    jobs: int | None = None,
    scenarios_dir: Path = Path("scenarios"),
    canonical: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Rerun the canonical scenarios and write them as the new baseline; return their names."""
    canonical = CANONICAL if canonical is None else canonical
    for name, overrides in canonical.items():
        path = scenarios_dir / f"{name}.yaml"
        spec: dict[str, Any] = {
            "scenario": str(path),
            "overrides": overrides,
            "seed": load_scenario(path).seed,
            "replications": 3,
        }
        table, keys = _run(spec, jobs, None)
        spec["keys"] = keys
        folder = baseline / name
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "table.csv", table.to_csv(index=False, float_format="%.10g"))
        write_text_atomic(folder / "baseline.json", json.dumps(spec, indent=2) + "\n")
    return list(canonical)


def compare(baseline: Path, *, jobs: int | None = None, seed: int | None = None) -> list[Change]:
    """Rerun every scenario of ``baseline`` and compare each metric per cell."""
    specs = sorted(baseline.glob("*/baseline.json"))
    if not specs:
        raise ConfigError(f"--baseline must hold */baseline.json files; got none in {str(baseline)!r}.")
    changes = []
    for path in specs:
        spec = json.loads(path.read_text())
        table, keys = _run(spec, jobs, seed)
        cells = [k for k in keys if k != "scenario"]
        stored = _read_table(path.parent / "table.csv", cells)
        table = _read_table(io.StringIO(table.to_csv(index=False, float_format="%.10g")), cells)
        sides = stored[cells].merge(table[cells], on=cells, how="outer", indicator=True)
        unmatched = sides[sides["_merge"] != "both"]
        if len(unmatched):
            example = ", ".join(str(v) for v in unmatched.iloc[0][cells])
            raise ConfigError(
                f"{path.parent}: {len(unmatched)} cell(s) in only one of the baseline and this run "
                f"(first: {example[:80]!r}): the baseline no longer matches the scenario's sweep; "
                "rewrite it with 'lbsim regress --update'."
            )
        merged = stored.merge(table, on=cells, suffixes=("_baseline", "_now"))
        for row in merged.to_dict("records"):
            cell = ", ".join(str(row[k]) for k in cells)
            for metric in COMPARED:
                changes.append(
                    Change(
                        path.parent.name,
                        cell,
                        metric,
                        row[f"{metric}_baseline"],
                        row[f"{metric}_ci_baseline"],
                        row[f"{metric}_now"],
                        row[f"{metric}_ci_now"],
                    )
                )
    return changes


def _read_table(source: Path | io.StringIO, cells: list[str]) -> pd.DataFrame:
    """A table as written, its cell columns as their text labels ('' for a null value), so
    a baseline's cells and a rerun's meet whatever their values' types."""
    table = pd.read_csv(source, dtype=dict.fromkeys(cells, str))
    return table.fillna(dict.fromkeys(cells, ""))


def report(changes: list[Change]) -> str:
    """What moved, as a readable table (or a line saying nothing did)."""
    moved = [c for c in changes if c.moved]
    if not moved:
        return (
            f"No regression: {len(changes)} metric values compared, "
            "none moved significantly and by more than 15%."
        )
    lines = [
        f"{len(moved)} of {len(changes)} metric values moved:",
        "",
        "| scenario | cell | metric | baseline | now | change |",
        "|---|---|---|---|---|---|",
    ]
    for c in moved:
        change = (c.now - c.baseline) / abs(c.baseline) if c.baseline else math.inf
        lines.append(
            f"| {c.scenario} | {c.cell} | {c.metric} | {c.baseline:.4g} ± {_zero(c.baseline_ci):.2g} | "
            f"{c.now:.4g} ± {_zero(c.now_ci):.2g} | {change:+.0%} |"
        )
    return "\n".join(lines)
