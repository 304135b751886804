"""Plots of the result tables: a tidy DataFrame in, matplotlib Axes out.

No function here shows a window or writes a file; :mod:`lbsim.output.report` saves the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    return plt.subplots(figsize=(7, 4.2), layout="constrained")[1]


def plot_latency_cdf(cdf: pd.DataFrame, *, by: str = "policy", ax: Axes | None = None) -> Axes:
    """Latency CDF per ``by`` value (log-scaled latency), averaging quantiles over replications.

    Args:
        cdf: rows of ``probability`` and ``latency`` (the run tables' latency quantiles).
        by: the column whose values get one curve each.
    """
    ax = _axes(ax)
    for name, group in cdf.groupby(by, sort=False):
        curve = group.groupby("probability")["latency"].mean()
        ax.plot(curve.to_numpy(), curve.index.to_numpy(), label=str(name))
    ax.set_xscale("log")
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_metric(
    table: pd.DataFrame,
    x: str,
    metric: str,
    *,
    by: str | Sequence[str] = "policy",
    ax: Axes | None = None,
) -> Axes:
    """``metric`` against ``x``, one line per value of ``by`` (a column or several), with its
    95% confidence band.

    Args:
        table: the per-cell table (``table.csv``) with ``<metric>`` and ``<metric>_ci``.
    """
    ax = _axes(ax)
    columns = [by] if isinstance(by, str) else list(by)
    for name, group in table.groupby(columns, sort=False):
        group = group.sort_values(x)
        ci = group[f"{metric}_ci"].fillna(0).to_numpy()
        xs, ys = group[x].to_numpy(), group[metric].to_numpy()
        (line,) = ax.plot(xs, ys, marker="o", label=", ".join(str(part) for part in name))
        ax.fill_between(xs, ys - ci, ys + ci, color=line.get_color(), alpha=0.2)
    return _against(ax, x, metric)


def _against(ax: Axes, x: str, metric: str) -> Axes:
    """Label a metric-against-parameter plot: log scale for latencies, grid, legend."""
    if metric.startswith("latency"):
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_metric_bars(table: pd.DataFrame, metric: str, *, by: str = "policy", ax: Axes | None = None) -> Axes:
    """``metric`` per ``by`` value as bars with 95% confidence bars (for scenarios without a sweep axis)."""
    ax = _axes(ax)
    group = table.groupby(by, sort=False)[[metric, f"{metric}_ci"]].mean()
    ax.bar(group.index.astype(str), group[metric], yerr=group[f"{metric}_ci"].fillna(0), capsize=3)
    ax.set_ylabel(metric)
    ax.tick_params(axis="x", labelrotation=30)
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def plot_utilization(servers: pd.DataFrame, *, by: str = "policy", ax: Axes | None = None) -> Axes:
    """Mean utilization of each server, grouped bars per ``by`` value."""
    ax = _axes(ax)
    mean = servers.groupby([by, "server"], sort=False)["utilization"].mean().unstack(by)
    mean = mean.loc[servers["server"].drop_duplicates()]
    width = 0.8 / max(len(mean.columns), 1)
    positions = np.arange(len(mean.index))
    for k, column in enumerate(mean.columns):
        ax.bar(positions + k * width, mean[column].to_numpy(), width, label=str(column))
    ax.set_xticks(positions + width * (len(mean.columns) - 1) / 2, mean.index, rotation=45, ha="right")
    ax.set_ylabel("utilization")
    ax.set_ylim(0, 1.05)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_utilization_sorted(servers: pd.DataFrame, *, by: str = "policy", ax: Axes | None = None) -> Axes:
    """Mean utilization of every server, sorted from the busiest, one line per ``by`` value
    against the server's rank as a share of the fleet: readable for any number of servers."""
    ax = _axes(ax)
    mean = servers.groupby([by, "server"], sort=False)["utilization"].mean()
    for name, values in mean.groupby(level=0, sort=False):
        ranked = np.sort(values.to_numpy())[::-1]
        ax.plot((np.arange(len(ranked)) + 0.5) / len(ranked), ranked, label=str(name))
    ax.set_xlabel("servers, busiest first (share of the fleet)")
    ax.set_ylabel("utilization")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_timeseries(
    timeseries: pd.DataFrame,
    metric: str = "error_rate",
    *,
    by: str = "policy",
    faults: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Axes:
    """``metric`` per time window, one line per ``by`` value; fault windows shaded when given.

    Args:
        faults: rows with ``t_start`` and ``t_end`` of each fault occurrence.
    """
    ax = _axes(ax)
    for name, group in timeseries.groupby(by, sort=False):
        curve = group.groupby("t_start")[metric].mean()
        ax.plot(curve.index.to_numpy(), curve.to_numpy(), label=str(name))
    return _over_time(ax, faults, metric)


def plot_traffic(
    timeseries: pd.DataFrame, *, faults: pd.DataFrame | None = None, ax: Axes | None = None
) -> Axes:
    """Requests per second served by each server over time, for the first cell and
    replication, with fault windows shaded when given.

    Args:
        timeseries: the time series with ``served_<server>`` columns (scenarios with faults
            or health checks).
    """
    ax = _axes(ax)
    curves = _served_in_first_run(timeseries)
    for column in curves.columns:
        ax.plot(curves.index.to_numpy(), curves[column].to_numpy(), label=column.removeprefix("served_"))
    return _over_time(ax, faults, "requests per second", columns=2)


def _served_in_first_run(timeseries: pd.DataFrame) -> pd.DataFrame:
    """Requests per second served by each server (a ``served_<server>`` column) per window
    start, in the first cell and replication of ``timeseries``."""
    first = timeseries
    for key in ("replication", "policy"):
        if key in first:
            first = first[first[key] == first[key].iloc[0]]
    columns = [c for c in first.columns if c.startswith("served_")]
    return first.groupby("t_start")[columns].mean()


def plot_traffic_spread(
    timeseries: pd.DataFrame, *, faults: pd.DataFrame | None = None, ax: Axes | None = None
) -> Axes:
    """Requests per second served over time by the least loaded server, the median one and
    the most loaded (per window), for the first cell and replication: :func:`plot_traffic`
    for a fleet too large to draw a line per server."""
    ax = _axes(ax)
    curves = _served_in_first_run(timeseries)
    t = curves.index.to_numpy()
    served = curves.to_numpy()
    for label, values in (
        ("most loaded", served.max(axis=1)),
        ("median", np.median(served, axis=1)),
        ("least loaded", served.min(axis=1)),
    ):
        ax.plot(t, values, label=f"{label} of {len(curves.columns)} servers")
    return _over_time(ax, faults, "requests per second")


def plot_region_traffic(
    timeseries: pd.DataFrame,
    *,
    by: Sequence[str] = ("policy",),
    faults: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Requests per second sent to each region over time, averaged over replications: one
    colour per region, one line style per cell (the values of ``by``), fault windows shaded.

    Args:
        timeseries: the time series with ``region_<region>`` columns (scenarios with regions).
    """
    ax = _axes(ax)
    columns = [c for c in timeseries.columns if c.startswith("region_")]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    for k, (name, cell) in enumerate(timeseries.groupby(list(by), sort=False)):
        curves = cell.groupby("t_start")[columns].mean()
        label = ", ".join(f"{key}={value}" for key, value in zip(by, name, strict=True))
        for j, column in enumerate(columns):
            ax.plot(
                curves.index.to_numpy(),
                curves[column].to_numpy(),
                color=colours[j % len(colours)],
                linestyle=styles[k % len(styles)],
                label=f"{column.removeprefix('region_')} ({label})",
            )
    return _over_time(ax, faults, "requests per second sent to the region", columns=2)


def _over_time(ax: Axes, faults: pd.DataFrame | None, ylabel: str, columns: int = 1) -> Axes:
    """Shade the fault windows of a plot over time and label it."""
    if faults is not None:
        for t_start, t_end in faults[["t_start", "t_end"]].to_numpy(dtype=float):
            ax.axvspan(t_start, t_end, color="red", alpha=0.15)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncol=columns)
    return ax


def plot_policy_panel(
    table: pd.DataFrame,
    x: str,
    metrics: Sequence[str] = ("latency_p50", "latency_p99", "error_rate", "imbalance"),
    *,
    by: str | Sequence[str] = "policy",
    axes: Sequence[Axes] | None = None,
) -> list[Axes]:
    """A policy comparison panel: each of ``metrics`` against ``x``, one small chart each.

    Returns:
        the Axes, one per metric (created in one figure when ``axes`` is not given).
    """
    if axes is None:
        figure = plt.figure(figsize=(11, 7), layout="constrained")
        axes = list(figure.subplots(2, (len(metrics) + 1) // 2).flat)
    for ax, metric in zip(axes, metrics, strict=False):
        plot_metric(table, x, metric, by=by, ax=ax)
        ax.set_title(metric)
    for ax in list(axes)[1:]:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    return list(axes)


def plot_capacity(
    probes: pd.DataFrame, key: str, metric: str, threshold: float, *, ax: Axes | None = None
) -> Axes:
    """One objective's metric against the varied parameter, a line per policy through the
    probes (filled markers passed every objective, hollow ones did not), with 95% confidence
    bars and the threshold as a dashed line.

    Args:
        probes: the capacity probes (``capacity.csv``) of the scenario without a survived fault.
    """
    ax = _axes(ax)
    for name, group in probes.groupby("policy", sort=False):
        group = group.sort_values(key)
        xs, ys = group[key].to_numpy(), group[metric].to_numpy()
        errors = group[f"{metric}_ci"].fillna(0).to_numpy()
        (line,) = ax.plot(xs, ys, label=str(name))
        passed = group["passes"].to_numpy(dtype=bool)
        ax.errorbar(xs, ys, yerr=errors, fmt="none", ecolor=line.get_color(), capsize=3)
        ax.plot(xs[passed], ys[passed], "o", color=line.get_color())
        ax.plot(xs[~passed], ys[~passed], "o", mfc="none", color=line.get_color())
    ax.axhline(threshold, linestyle="--", color="black", label=f"objective {threshold:g}")
    return _against(ax, key, metric)
