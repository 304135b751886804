"""Write a results folder: tables, plots (drawn by :mod:`lbsim.output.figures`), a Markdown
report and a manifest.

Every file is written through :mod:`lbsim.atomic`, so an interrupted run never leaves a
truncated table behind.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lbsim import __version__
from lbsim.atomic import write_atomic, write_text_atomic
from lbsim.config.base import Unit
from lbsim.config.scenario import Scenario
from lbsim.output.quantities import MIN_REPLICATIONS, shown_value, three_figures
from lbsim.output.quantities import header as header_of
from lbsim.output.verdict import verdicts
from lbsim.policies import Policy
from lbsim.results.comparisons import comparisons
from lbsim.results.expectations import Outcome
from lbsim.results.metrics import BATCHES
from lbsim.runner import SweepResult

TABLE_METRICS = (
    "latency_mean",
    "latency_p50",
    "latency_p99",
    "error_rate",
    "throughput",
    "utilization_max",
    "imbalance",
)


def _csv(path: Path, frame: pd.DataFrame) -> None:
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def markdown_table(table: pd.DataFrame, keys: list[str], metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """Format the per-cell table as Markdown, headers in words and each value to three
    significant figures in its unit (:mod:`lbsim.output.quantities`); ``± half-width`` of the
    95% confidence interval with at least :data:`MIN_REPLICATIONS` replications (and for one
    replication's mean latency, from its batch means), and ``†`` where the half-width exceeds
    the value."""
    shown_keys = [key for key in keys if key != "scenario"]
    header = [header_of(key) for key in shown_keys] + [header_of(metric) for metric in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for values in table.to_dict("records"):
        cells = [_key_value(values[key]) for key in shown_keys]
        replicated = values.get("replications", 0) >= MIN_REPLICATIONS
        for metric in metrics:
            mean, ci = values[metric], values[f"{metric}_ci"]
            if ci is not None and abs(ci) <= 1e-12 * abs(mean):
                ci = 0.0  # rounding noise of identical replications
            # One run's mean latency has its own interval, from batch means.
            with_ci = replicated or (values.get("replications") == 1 and metric == "latency_mean")
            wide = with_ci and ci is not None and abs(ci) > abs(mean) > 0
            cells.append(shown_value(metric, mean, ci if with_ci else None) + (" †" if wide else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _key_value(value: Any) -> str:
    return three_figures(value) if isinstance(value, float) else str(value)


def _number(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.4g}"


def _warmup_text(scenario: Scenario) -> str:
    if "warmup" in scenario.sweep:
        return "warm-up of each cell (swept; `warmup: auto`'s cuts are `truncation` in summary.csv)"
    if isinstance(scenario.warmup, str):
        return "warm-up MSER-5 cut in each cell over its replications (`truncation` in summary.csv)"
    return f"{scenario.warmup:g} s warm-up"


def versions() -> dict[str, str]:
    """Versions of lbsim and of what it runs on."""
    return {
        "lbsim": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "simpy": importlib.metadata.version("simpy"),
    }


def write_results(
    folder: Path,
    scenario: Scenario,
    result: SweepResult,
    *,
    command: str,
    seed: int,
    timings: dict[str, float],
    outcomes: Sequence[Outcome] = (),
    warnings: Sequence[str] = (),
) -> None:
    """Write every table, plot, the report and the manifest (status ``done``) of a sweep into
    ``folder``, after removing the files the manifest of an earlier run there lists (so no
    table or plot of another scenario is left beside these; files lbsim did not write stay).
    ``warnings`` (the sweep plan's: overloaded cells, imprecise mean sizes) head the report."""
    folder.mkdir(parents=True, exist_ok=True)
    _remove_earlier_results(folder)
    tables = {
        "summary": result.summary,
        "table": result.table,
        "servers": result.servers,
        "timeseries": result.timeseries,
        "faults": result.faults,
    }
    if result.summary["policy"].nunique() > 1:
        tables["comparisons"] = comparisons(result.summary, result.keys)
    if len(result.regions):
        tables["regions"] = result.regions
    if result.tiers["tier"].nunique() > 1:
        tables["tiers"] = result.tiers
    for name, frame in tables.items():
        _csv(folder / f"{name}.csv", frame)
    table_md = markdown_table(result.table, result.keys)
    write_text_atomic(folder / "table.md", table_md)
    from lbsim.output import figures  # matplotlib, only once there is something to draw

    made = figures.result_plots(result, folder, scenario.duration)
    resolved = yaml.safe_dump(_plain(scenario), sort_keys=False)
    report = [f"# {scenario.name}", ""]
    if scenario.description:
        report += [scenario.description.strip(), ""]
    if warnings:
        report += ["## Warnings", "", *(f"- {warning}" for warning in warnings), ""]
    counts = result.table["replications"]
    fewest, most = int(counts.min()), int(counts.max())
    ci_note = (
        "Each figure is the mean over replications ± the half-width of its 95% confidence interval "
        "(† where the half-width exceeds the value: run more replications)."
        if fewest >= MIN_REPLICATIONS
        else f"Each figure is the mean over replications (confidence intervals need at least "
        f"{MIN_REPLICATIONS} replications)."
    )
    if most == 1:
        ci_note += (
            f" With one replication the mean latency's ± comes from {BATCHES} non-overlapping batch means "
            "of the run (by arrival time, after the warm-up)."
        )
    per_cell = f"{fewest}" if fewest == most else f"{fewest}-{most}"
    per_cell += " replication(s) per cell"
    if scenario.precision is not None:
        per_cell += (
            f" (as many as each cell's {scenario.precision.metric} needed to be known to within "
            f"{three_figures(100 * scenario.precision.relative)}% of its value, or at most "
            f"{scenario.precision.max_replications}; table.csv's replications)"
        )
    report += [
        f"Seed {seed}, {per_cell}, {len(result.cells)} cell(s). {ci_note} "
        f"Latencies over `ok` requests that arrived after the {_warmup_text(scenario)}; "
        "the error rate counts a request still in flight when the run stopped as not `ok`; "
        "throughput is `ok` completions per second within the run. Tables: "
        + ", ".join(f"[{name}.csv]({name}.csv)" for name in tables)
        + " (every figure unrounded, in seconds and shares of 1), [manifest.json](manifest.json).",
        "",
        table_md,
    ]
    ranked = verdicts(result.summary, result.keys)
    if ranked:
        report += ["## Verdict", "", *(f"- {sentence}" for sentence in ranked), ""]
    else:
        report += ["One policy: no verdict ranks policies.", ""]
    if outcomes:
        report += ["## Expectations", ""]
        report += [f"- {o.text}: **{o.word}** ({o.detail})" for o in outcomes]
        report += [""]
    if figures.no_errors(result):
        report += ["No request failed in any run: the error-rate plots are left out.", ""]
    for title, name in made:
        report += [f"## {title}", "", f"![{title}]({name})", ""]
    report += ["## Resolved scenario", "", "```yaml", resolved.rstrip(), "```", ""]
    write_text_atomic(folder / "report.md", "\n".join(report))
    written = sorted([*(f"{name}.csv" for name in tables), "table.md", "report.md", *(p for _, p in made)])
    manifest = {
        "status": "done",
        "versions": versions(),
        "command": command,
        "scenario": scenario.name,
        "seed": seed,
        # The most any cell ran (with precision, each cell's own count is in its row of cells).
        "replications": most,
        "timings": timings,
        "cells": result.cells,
        "files": written,
    }
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")


def write_status(folder: Path, status: str, command: str, scenario: str, reason: str | None = None) -> None:
    """Say in ``folder/manifest.json`` what the folder holds while a run is ``running`` or
    after it ended without results (``interrupted``, ``failed``, with its ``reason``); the
    files an earlier finished run wrote stay listed, so the next finished run removes them."""
    earlier = _earlier_manifest(folder)
    manifest = {"status": status, "versions": versions(), "command": command, "scenario": scenario}
    if reason is not None:
        manifest["reason"] = reason
    manifest["files"] = earlier.get("files", [])
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")


def earlier_results(folder: Path) -> tuple[str, int] | None:
    """The scenario name an earlier run in ``folder`` wrote results for, and how many files
    its manifest lists (which the next finished run removes); None when there are none."""
    manifest = _earlier_manifest(folder)
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        return None
    return str(manifest.get("scenario")), len(files)


def _earlier_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _remove_earlier_results(folder: Path) -> None:
    """Remove the tables, reports and plots an earlier run's manifest lists: only plain
    names inside ``folder`` (``summary.csv``, ``plots/x.png``), never anything else."""
    files = _earlier_manifest(folder).get("files", [])
    for name in files if isinstance(files, list) else []:
        path = folder / str(name)
        if (
            isinstance(name, str)
            and path.suffix in (".csv", ".md", ".png")
            and ".." not in Path(name).parts
            and not Path(name).is_absolute()
            and path.is_file()
            and not path.is_symlink()
        ):
            path.unlink()


def _plain(value: Any) -> Any:
    """The scenario as plain YAML data: distributions and policies spelled as in a scenario file."""
    if isinstance(value, BaseModel):
        return {
            name: _with_unit(_plain(getattr(value, name)), field)
            for name, field in type(value).model_fields.items()
            if getattr(value, name) is not None
        }
    if isinstance(value, Policy):
        return value.label()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def _with_unit(value: Any, field: FieldInfo) -> Any:
    """A number of a field with a :class:`~lbsim.config.base.Unit` as a scenario writes it
    (``20ms``, ``2s``, ``250/s``); any other value as it is."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    inner = [item for arg in get_args(field.annotation) for item in getattr(arg, "__metadata__", ())]
    units = [item.symbol for item in [*field.metadata, *inner] if isinstance(item, Unit)]
    if units == ["/s"]:
        return f"{value:g}/s"
    if units == ["s"]:
        return f"{value * 1000:g}ms" if 0 < value < 1 else f"{value:g}s"
    return value


def capacity_markdown(probes: pd.DataFrame, key: str, metrics: Sequence[str]) -> str:
    """The capacity probes as a Markdown table: value, each objective's metric ± its 95%
    half-width, and whether the probe met every objective."""
    header = ["policy", key, "variant", *metrics, "meets"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in probes.to_dict("records"):
        cells = [str(row["policy"]), f"{row[key]:.6g}", str(row["variant"])]
        for metric in metrics:
            ci = row[f"{metric}_ci"]
            cells.append(_number(row[metric]) + ("" if math.isnan(ci) else f" ± {_number(ci)}"))
        cells.append("yes" if row["passes"] else "no")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_capacity(
    folder: Path,
    probes: pd.DataFrame,
    key: str,
    thresholds: Sequence[tuple[str, float]],
    manifest: dict[str, Any],
) -> None:
    """Write ``capacity.csv``, ``capacity.md``, ``capacity.png`` (one panel per objective) and
    ``manifest.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _csv(folder / "capacity.csv", probes)
    write_text_atomic(folder / "capacity.md", capacity_markdown(probes, key, [m for m, _ in thresholds]))
    from lbsim.output import figures  # matplotlib, only once there is something to draw

    figures.capacity_plot(folder / "capacity.png", probes[probes["variant"] == "normal"], key, thresholds)
    write_text_atomic(
        folder / "manifest.json",
        json.dumps({"versions": versions(), **manifest}, indent=2, default=str) + "\n",
    )
