"""Plots of the result tables: a tidy DataFrame in, matplotlib Axes out.

No function here shows a window or writes a file; :mod:`lbsim.output.report` saves the figures.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lbsim.output.quantities import MIN_REPLICATIONS, axis_label, scale, setting, words


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    return plt.subplots(figsize=(7, 4.2), layout="constrained")[1]


def _legend(ax: Axes, columns: int = 1) -> None:
    """A legend beside the plot, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            [_wrapped(label, 40) for label in labels],
            fontsize="small",
            ncol=columns,
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            borderaxespad=0,
        )


def _cell_text(keys: Sequence[str], values: object) -> str:
    """A cell's values of ``keys`` (one value or a tuple of them), a line each, in words."""
    parts = values if isinstance(values, tuple) else (values,)
    return "\n".join(_wrapped(setting(key, value)) for key, value in zip(keys, parts, strict=True))


def _wrapped(text: str, width: int = 60) -> str:
    """``text`` broken into lines of at most ``width`` characters, for titles and tick labels."""
    return textwrap.fill(text, width, break_long_words=False)


def _label(name: object) -> str:
    """A legend entry for a group key (one value or a tuple of them)."""
    return ", ".join(str(part) for part in name) if isinstance(name, tuple) else str(name)


def plot_latency_cdf(cdf: pd.DataFrame, *, by: str = "policy", ax: Axes | None = None) -> Axes:
    """Latency CDF per ``by`` value (log-scaled latency), averaging quantiles over replications.

    Args:
        cdf: rows of ``probability`` and ``latency`` (the run tables' latency quantiles) of one
            cell per ``by`` value; a sweep's other cells each get a panel of :func:`plot_per_cell`.
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
    _legend(ax)
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
    95% confidence band, in the metric's unit (:mod:`lbsim.output.quantities`).

    Args:
        table: the per-cell table (``table.csv``) with ``<metric>`` and ``<metric>_ci``.
    """
    ax = _axes(ax)
    if _all_zero(ax, table[metric], metric):
        ax.set_xlabel(axis_label(x))
        return ax
    columns = [by] if isinstance(by, str) else list(by)
    _, factor = scale(metric, table[metric])
    for name, group in table.groupby(columns, sort=False):
        group = group.sort_values(x)
        xs, ys = group[x].to_numpy(), group[metric].to_numpy() * factor
        (line,) = ax.plot(xs, ys, marker="o", label=_label(name))
        low, high = _band(group, metric, factor)
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2)
    return _against(ax, table[x], metric, table[metric])


def _band(group: pd.DataFrame, metric: str, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The 95% confidence band of ``metric`` in ``group``'s rows (scaled by ``factor``): none
    (the values themselves) below MIN_REPLICATIONS, as the report shows no half-width; the
    lower edge never under 0, nor at 0 for a latency, drawn on a log scale (a gap there)."""
    values = group[metric].to_numpy(dtype=float) * factor
    if "replications" not in group or (group["replications"] < MIN_REPLICATIONS).any():
        return values, values
    ci = group[f"{metric}_ci"].fillna(0).to_numpy(dtype=float) * factor
    low = values - ci
    low = np.where(low > 0, low, np.nan if metric.startswith("latency") else 0.0)
    return low, values + ci


def _all_zero(ax: Axes, values: pd.Series, metric: str) -> bool:
    """When every one of ``values`` is 0, say so on ``ax`` instead of drawing flat lines."""
    if not (values == 0).all():
        return False
    ax.text(0.5, 0.5, f"{words(metric)} 0 in every cell", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return True


def _against(ax: Axes, xs: pd.Series, metric: str, values: pd.Series) -> Axes:
    """Label a metric-against-parameter plot in words and units: a log scale for latencies
    (when any is positive), whole numbers on the x axis for a count, grid, legend."""
    if metric.startswith("latency") and (values > 0).any():
        ax.set_yscale("log")
    if pd.api.types.is_numeric_dtype(xs) and bool((xs == xs.round()).all()):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(axis_label(str(xs.name)))
    ax.set_ylabel(axis_label(metric, values))
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return ax


def plot_metric_bars(
    table: pd.DataFrame, metric: str, *, by: str | Sequence[str] = "policy", ax: Axes | None = None
) -> Axes:
    """``metric`` per value of ``by`` (a column or several: every swept key, so that no bar
    averages over cells) as horizontal bars with 95% confidence bars, in the metric's unit
    (for sweeps without a numeric axis)."""
    ax = _axes(ax)
    if _all_zero(ax, table[metric], metric):
        return ax
    columns = [by] if isinstance(by, str) else list(by)
    group = table.groupby(columns, sort=False, dropna=False).mean(numeric_only=True)
    _, factor = scale(metric, group[metric])
    labels = [_cell_text(columns, name) for name in group.index]
    positions = np.arange(len(labels))[::-1]
    low, high = _band(group, metric, factor)
    values = group[metric].to_numpy(dtype=float) * factor
    errors = np.nan_to_num(np.vstack([values - low, high - values]))
    ax.barh(positions, values, xerr=errors, capsize=3)
    ax.set_yticks(positions, labels, fontsize="small")
    ax.set_xlabel(axis_label(metric, group[metric]))
    ax.grid(True, axis="x", alpha=0.3)
    return ax


def plot_utilization(servers: pd.DataFrame, *, by: str = "policy", ax: Axes | None = None) -> Axes:
    """Utilization of each server (%), mean over replications, grouped bars per ``by`` value.

    Args:
        servers: the server table (``servers.csv``) of one cell per ``by`` value; a sweep's
            other cells each get a panel of :func:`plot_per_cell`.
    """
    ax = _axes(ax)
    mean = servers.groupby([by, "server"], sort=False)["utilization"].mean().unstack(by) * 100
    mean = mean.loc[servers["server"].drop_duplicates()]
    width = 0.8 / max(len(mean.columns), 1)
    positions = np.arange(len(mean.index))
    for k, column in enumerate(mean.columns):
        ax.bar(positions + k * width, mean[column].to_numpy(), width, label=str(column))
    ax.set_xticks(positions + width * (len(mean.columns) - 1) / 2, mean.index, rotation=45, ha="right")
    ax.set_ylabel(axis_label("utilization"))
    ax.set_ylim(0, 105)
    ax.grid(True, axis="y", alpha=0.3)
    _legend(ax)
    return ax


def plot_utilization_sorted(servers: pd.DataFrame, *, by: str = "policy", ax: Axes | None = None) -> Axes:
    """Utilization (%) of every server, mean over replications, sorted from the busiest, one
    line per ``by`` value against the server's rank as a share of the fleet: readable for any
    number of servers. ``servers`` holds one cell per ``by`` value, as for :func:`plot_utilization`."""
    ax = _axes(ax)
    mean = servers.groupby([by, "server"], sort=False)["utilization"].mean() * 100
    for name, values in mean.groupby(level=0, sort=False):
        ranked = np.sort(values.to_numpy())[::-1]
        ax.plot((np.arange(len(ranked)) + 0.5) / len(ranked), ranked, label=str(name))
    ax.set_xlabel("servers, busiest first (share of the fleet)")
    ax.set_ylabel(axis_label("utilization"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 105)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return ax


def plot_per_cell(
    draw: Callable[..., Axes],
    frame: pd.DataFrame,
    keys: Sequence[str],
    *,
    by: str = "policy",
    figure: Figure | None = None,
) -> list[Axes]:
    """One panel per cell of the swept ``keys`` other than ``by`` (titled with their values),
    each drawn by ``draw(rows of the cell, by=by, ax=...)``: :func:`plot_utilization`,
    :func:`plot_utilization_sorted` or :func:`plot_latency_cdf`, so that none averages over
    cells. The first panel keeps the legend.

    Returns:
        the Axes, one per cell (in a new figure when ``figure`` is not given).
    """
    others = [key for key in keys if key not in ("scenario", by)]
    cells = list(frame.groupby(others, sort=False, dropna=False)) if others else [((), frame)]
    if figure is None:
        figure = plt.figure(figsize=(7, 3.4 * len(cells)), layout="constrained")
    axes = []
    for k, (values, cell) in enumerate(cells):
        ax = draw(cell, by=by, ax=figure.add_subplot(len(cells), 1, k + 1))
        ax.set_title(_cell_text(others, values))
        legend = ax.get_legend()
        if k and legend is not None:
            legend.remove()
        axes.append(ax)
    return axes


def plot_timeseries(
    timeseries: pd.DataFrame,
    metric: str = "error_rate",
    *,
    by: str | Sequence[str] = "policy",
    faults: pd.DataFrame | None = None,
    run_end: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """``metric`` per time window (its unit), mean over replications, one line per value of
    ``by`` (a column or several: every swept key, so that no line averages over cells); fault
    windows shaded when given; the time axis ends at ``run_end`` (s) when given.

    Args:
        faults: rows with ``t_start`` and ``t_end`` of each fault occurrence.
    """
    ax = _axes(ax)
    columns = [by] if isinstance(by, str) else list(by)
    _, factor = scale(metric, timeseries[metric])
    for name, group in timeseries.groupby(columns, sort=False):
        curve = group.groupby("t_start")[metric].mean() * factor
        ax.plot(curve.index.to_numpy(), curve.to_numpy(), label=_label(name))
    return _over_time(ax, faults, axis_label(metric, timeseries[metric]), run_end)


def plot_traffic(
    timeseries: pd.DataFrame,
    *,
    keys: Sequence[str] = ("policy",),
    faults: pd.DataFrame | None = None,
    run_end: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Requests per second served by each server over time in the first replication of the
    first cell (its values of ``keys`` and the replication in the title), with fault windows
    shaded when given; the time axis ends at ``run_end`` (s) when given.

    Args:
        timeseries: the time series with ``served_<server>`` columns (scenarios with faults
            or health checks).
    """
    ax = _axes(ax)
    curves, title = _served_in_first_run(timeseries, keys)
    for column in curves.columns:
        ax.plot(curves.index.to_numpy(), curves[column].to_numpy(), label=column.removeprefix("served_"))
    ax.set_title(title)
    return _over_time(ax, faults, "requests sent to the server (requests/s)", run_end, columns=2)


def _served_in_first_run(timeseries: pd.DataFrame, keys: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """Requests per second served by each server (a ``served_<server>`` column) per window
    start in the first replication of the first cell of ``timeseries``, and which run that is."""
    first = timeseries
    shown = [key for key in [*keys, "replication"] if key in timeseries and key != "scenario"]
    values = tuple(timeseries[key].iloc[0] for key in shown)
    for key, value in zip(shown, values, strict=True):
        first = first[first[key] == value] if pd.notna(value) else first[first[key].isna()]
    columns = [c for c in first.columns if c.startswith("served_")]
    return first.groupby("t_start")[columns].mean(), _cell_text(shown, values)


def plot_traffic_spread(
    timeseries: pd.DataFrame,
    *,
    keys: Sequence[str] = ("policy",),
    faults: pd.DataFrame | None = None,
    run_end: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Requests per second served over time by the least loaded server, the median one and
    the most loaded (per window), in the first replication of the first cell:
    :func:`plot_traffic` for a fleet too large to draw a line per server."""
    ax = _axes(ax)
    curves, title = _served_in_first_run(timeseries, keys)
    t = curves.index.to_numpy()
    served = curves.to_numpy()
    for label, values in (
        ("most loaded", served.max(axis=1)),
        ("median", np.median(served, axis=1)),
        ("least loaded", served.min(axis=1)),
    ):
        ax.plot(t, values, label=f"{label} of {len(curves.columns)} servers")
    ax.set_title(title)
    return _over_time(ax, faults, "requests sent to the server (requests/s)", run_end)


def plot_region_traffic(
    timeseries: pd.DataFrame,
    *,
    by: Sequence[str] = ("policy",),
    faults: pd.DataFrame | None = None,
    run_end: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Requests per second sent to each region over time, mean over replications: one
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
    return _over_time(ax, faults, "requests sent to the region per second (requests/s)", run_end)


def _over_time(
    ax: Axes, faults: pd.DataFrame | None, ylabel: str, run_end: float | None, columns: int = 1
) -> Axes:
    """Shade the fault windows of a plot over time (cut at the run's end, ``run_end`` or the
    data's) and label it; the time axis spans the run."""
    end = run_end
    if end is None:
        end = max((float(np.max(line.get_xdata())) for line in ax.get_lines()), default=1.0)
    if faults is not None:
        for t_start, t_end in faults[["t_start", "t_end"]].to_numpy(dtype=float):
            ax.axvspan(t_start, min(t_end, end), color="red", alpha=0.15)
    ax.set_xlim(0, end)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    _legend(ax, columns)
    return ax


def plot_policy_panel(
    table: pd.DataFrame,
    x: str,
    metrics: Sequence[str] = ("latency_p50", "latency_p99", "error_rate", "imbalance"),
    *,
    by: str | Sequence[str] = "policy",
    axes: Sequence[Axes] | None = None,
) -> list[Axes]:
    """A policy comparison panel: each of ``metrics`` against ``x``, one small chart each,
    titled in words, with one legend (the first chart's).

    Returns:
        the Axes, one per metric (created in one figure when ``axes`` is not given).
    """
    if axes is None:
        axes = list(
            plt.figure(figsize=(11, 7), layout="constrained").subplots(2, (len(metrics) + 1) // 2).flat
        )
    for ax, metric in zip(axes, metrics, strict=False):
        plot_metric(table, x, metric, by=by, ax=ax)
        ax.set_title(words(metric))
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    owner = axes[0].get_figure()
    assert owner is not None
    owner.legend(handles, labels, fontsize="small", loc="outside right upper")
    return list(axes)


def plot_capacity(
    probes: pd.DataFrame, key: str, metric: str, threshold: float, *, ax: Axes | None = None
) -> Axes:
    """One objective's metric (its unit) against the varied parameter, a line per policy
    through the probes (filled markers passed every objective, hollow ones did not), with 95%
    confidence bars and the threshold as a dashed line.

    Args:
        probes: the capacity probes (``capacity.csv``) of the scenario without a survived fault.
    """
    ax = _axes(ax)
    _, factor = scale(metric, [*probes[metric], threshold])
    for name, group in probes.groupby("policy", sort=False):
        group = group.sort_values(key)
        xs, ys = group[key].to_numpy(), group[metric].to_numpy() * factor
        errors = group[f"{metric}_ci"].fillna(0).to_numpy() * factor
        (line,) = ax.plot(xs, ys, label=str(name))
        passed = group["passes"].to_numpy(dtype=bool)
        ax.errorbar(xs, ys, yerr=errors, fmt="none", ecolor=line.get_color(), capsize=3)
        ax.plot(xs[passed], ys[passed], "o", color=line.get_color())
        ax.plot(xs[~passed], ys[~passed], "o", mfc="none", color=line.get_color())
    ax.axhline(threshold * factor, linestyle="--", color="black", label=f"objective {threshold * factor:g}")
    return _against(ax, probes[key], metric, pd.concat([probes[metric], pd.Series([threshold])]))
