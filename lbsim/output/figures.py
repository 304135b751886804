"""The plots of a results folder, drawn into PNG files (matplotlib, without a screen).

Each file is written through :mod:`lbsim.atomic`, so an interrupted run never leaves half a
picture behind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lbsim.atomic import write_atomic
from lbsim.output import plots
from lbsim.output.quantities import words
from lbsim.runner import SweepResult


def _figure(path: Path, draw: Callable[..., Any], size: tuple[float, float] = (7, 4.2)) -> None:
    figure = Figure(figsize=size, layout="constrained")
    draw(ax=figure.add_subplot())
    _save(path, figure)


def _save(path: Path, figure: Figure, dpi: int = 110) -> None:
    """Write ``figure`` as a PNG through a temporary file."""
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))


# Above this many servers a bar or a line per server is unreadable (and slow to draw): the
# utilization and traffic plots show the fleet's spread instead.
PER_SERVER_PLOTS = 40


def result_plots(result: SweepResult, folder: Path, run_end: float) -> list[tuple[str, str]]:
    """Draw the plots of a sweep into ``folder/plots``; return each one's title and path.

    Plots over time end at ``run_end`` (s); the error-rate plots are left out when no request
    failed (:func:`no_errors`).
    """
    made: list[tuple[str, str]] = []
    keys = [key for key in result.keys if key != "scenario"]
    swept = [key for key in keys if key != "policy"]
    metrics = ("latency_p99",) if no_errors(result) else ("latency_p99", "error_rate")

    def save(name: str, title: str, draw: Callable[..., Axes], size: tuple[float, float] = (7, 4.2)) -> None:
        _figure(folder / "plots" / f"{name}.png", draw, size)
        made.append((title, f"plots/{name}.png"))

    _panels(folder / "plots" / "latency_cdf.png", plots.plot_latency_cdf, result.cdf, keys, 7.0)
    made.append(("Latency CDF per policy", "plots/latency_cdf.png"))
    numeric = [key for key in swept if pd.api.types.is_numeric_dtype(result.table[key])]
    for key in numeric:
        others = [k for k in keys if k != key]
        for metric in metrics:
            save(
                f"{metric}_vs_{key}",
                f"{words(metric)} against {words(key)} ({key})",
                functools.partial(plots.plot_metric, result.table, key, metric, by=others),
            )
    if numeric:
        others = [k for k in keys if k != numeric[0]]
        figure = Figure(figsize=(11, 7), layout="constrained")
        panel = (
            "latency_p50",
            "latency_p99",
            "throughput" if no_errors(result) else "error_rate",
            "imbalance",
        )
        plots.plot_policy_panel(
            result.table, numeric[0], panel, by=others, axes=list(figure.subplots(2, 2).flat)
        )
        _save(folder / "plots" / "policy_panel.png", figure, dpi=100)
        made.append(("Policy comparison", "plots/policy_panel.png"))
    else:
        for metric in metrics:
            save(
                f"{metric}_by_policy",
                f"{words(metric)} per policy",
                functools.partial(plots.plot_metric_bars, result.table, metric, by=keys),
                (7, 1.5 + 0.5 * len(result.table) * max(len(keys) - 1, 1)),
            )
    n_servers = result.servers["server"].nunique()
    per_server = n_servers <= PER_SERVER_PLOTS
    n_policies = result.servers["policy"].nunique()
    width = max(7.0, 0.35 * n_servers * n_policies**0.5) if per_server else 7.0
    utilization = plots.plot_utilization if per_server else plots.plot_utilization_sorted
    _panels(folder / "plots" / "utilization.png", utilization, result.servers, keys, width)
    made.append(
        (
            "Utilization per server"
            if per_server
            else f"Utilization of the {n_servers} servers, busiest first",
            "plots/utilization.png",
        )
    )
    faults = _fault_windows(result.faults)
    if "error_rate" in metrics:
        save(
            "error_rate_over_time",
            "Error rate over time",
            functools.partial(
                plots.plot_timeseries,
                result.timeseries,
                "error_rate",
                by=keys,
                faults=faults,
                run_end=run_end,
            ),
        )
    if any(column.startswith("served_") for column in result.timeseries.columns):
        title, draw = (
            ("Traffic per server over time", plots.plot_traffic)
            if per_server
            else (
                "Traffic over time: the least loaded, median and most loaded server",
                plots.plot_traffic_spread,
            )
        )
        save(
            "traffic_per_server",
            title,
            functools.partial(draw, result.timeseries, keys=keys, faults=faults, run_end=run_end),
        )
    if len(result.regions):
        save(
            "traffic_per_region",
            "Traffic sent to each region over time",
            functools.partial(
                plots.plot_region_traffic, result.timeseries, by=keys, faults=faults, run_end=run_end
            ),
            (9, 5),
        )
    return made


def _panels(
    path: Path, draw: Callable[..., Axes], frame: pd.DataFrame, keys: list[str], width: float
) -> None:
    """Draw ``frame`` one panel per cell (:func:`plots.plot_per_cell`) into ``path``."""
    figure = Figure(layout="constrained")
    panels = plots.plot_per_cell(draw, frame, keys, figure=figure)
    figure.set_size_inches(width, 3.4 * len(panels))
    _save(path, figure)


def no_errors(result: SweepResult) -> bool:
    """No request failed in any run of ``result`` (nor was still in flight at its end)."""
    return bool((result.summary["error_rate"] == 0).all())


def _fault_windows(faults: pd.DataFrame) -> pd.DataFrame:
    """Fault windows of the first replication (scheduled faults are the same in every one)."""
    if faults.empty:
        return faults
    first = faults[faults["replication"] == faults["replication"].min()]
    return first.drop_duplicates(["target", "t_start"])


def capacity_plot(
    path: Path, probes: pd.DataFrame, key: str, thresholds: Sequence[tuple[str, float]]
) -> None:
    """Draw each objective's metric against ``key`` over the capacity probes, one panel each."""
    figure = Figure(figsize=(7, 3.6 * len(thresholds)), layout="constrained")
    for k, (metric, threshold) in enumerate(thresholds):
        plots.plot_capacity(probes, key, metric, threshold, ax=figure.add_subplot(len(thresholds), 1, k + 1))
    _save(path, figure)
