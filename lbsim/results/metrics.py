"""From one run's records to tidy tables: summary row, per-server rows, time series.

Latency is measured over ``ok`` requests that arrived after warm-up; ``error_rate`` is the
fraction of those requests that did not end ``ok`` (in flight at the end included);
``throughput`` is the ``ok`` requests that completed in [warmup, duration) per second of it
(the time series': per second of each window, by completion), so an overloaded fleet shows
what it served, not what it was offered (``offered_load``: arrival rate x mean size / the
servers' capacity);
utilization is busy worker-time over available worker-time in [warmup, duration);
``balancer_utilization`` is the busiest balancer instance's busy core-time over its cores'.
Confidence intervals across replications use Student's t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lbsim.results.columns import LATENCY_COLUMNS, METRICS, REGION_COLUMNS
from lbsim.results.histogram import LatencyHistogram
from lbsim.status import DROPPED, ERROR, OK, STATUSES

if TYPE_CHECKING:
    from lbsim.config.scenario import Scenario
    from lbsim.results.assembler import RunOutput

# Probabilities at which each run keeps its latency distribution, for CDF plots.
CDF_PROBABILITIES = np.concatenate([np.linspace(0, 0.99, 100), np.linspace(0.991, 1.0, 10)])


FAULT_COLUMNS = ("target", "kind", "t_start", "t_end", "t_detected", "t_restored", "n_failed", "n_retried")


@dataclass(frozen=True, slots=True)
class RunTables:
    """The tables of one run: a summary row, per-server rows, time series, latency quantiles,
    one row per fault occurrence, the log of state changes, both sides of Little's law, and
    one row per client region."""

    summary: dict[str, Any]
    servers: pd.DataFrame
    timeseries: pd.DataFrame
    latency_quantiles: np.ndarray
    faults: pd.DataFrame
    events: pd.DataFrame
    little: tuple[float, float]
    regions: pd.DataFrame
    tiers: pd.DataFrame


def summarize(output: RunOutput, scenario: Scenario) -> RunTables:
    """Compute the tables of one run of ``scenario`` (a cell) from its tally.

    Latency percentiles come from log-bucketed histograms (``lbsim.results.histogram``): each is
    within 0.5% of the exact order statistic of rank ceil(p n); mean and maximum are exact.
    """
    warmup, duration, window = scenario.warmup_seconds, scenario.duration, scenario.window_length
    tally = output.tally
    counts = tally.status_counts
    n_requests = output.n_arrived
    span = duration - warmup
    utilization = server_utilization(output, warmup, duration)
    summary: dict[str, Any] = {"n_requests": n_requests}
    summary.update({f"n_{name}": int(count) for name, count in zip(STATUSES, counts, strict=True)})
    summary["n_in_flight"] = n_requests - int(counts.sum())
    summary["n_retries"] = output.n_retries
    summary["n_hedges"] = output.n_hedges
    summary["error_rate"] = (n_requests - int(counts[OK])) / n_requests if n_requests else math.nan
    summary["availability"] = 1 - summary["error_rate"]
    summary["throughput"] = tally.n_completed / span
    summary["offered_load"] = scenario.offered_load
    quantiles = _latency_stats(tally.latency, summary)
    summary["latency_mean_batch_ci"] = batch_means_half_width(tally.window_latency, warmup, window)
    members = utilization[~np.isnan(utilization)]
    summary["utilization_mean"] = float(members.mean()) if members.size else math.nan
    summary["utilization_max"] = float(members.max()) if members.size else math.nan
    summary["imbalance"] = (
        float(members.max() / members.mean()) if members.size and members.mean() > 0 else math.nan
    )
    cores = output.balancer_busy_time / (output.balancer_cores * span)
    summary["balancer_utilization"] = float(cores.max()) if cores.size else 0.0
    summary["session_moves"] = tally.n_moves / tally.n_follows if tally.n_follows else math.nan
    served = int(tally.region_served.sum())
    summary["cross_region"] = int(tally.region_elsewhere.sum()) / served if served else 0.0
    summary["cross_zone"] = output.cross_zone
    events = pd.DataFrame(output.events, columns=["t", "component", "subject", "event"])
    return RunTables(
        summary,
        _servers(output, utilization),
        _timeseries(output, duration, window),
        quantiles,
        _faults(output, events),
        events,
        little_law(output),
        _regions(output),
        _tiers(output, cores),
    )


# Batches of one run's mean latency (each several time-series windows), as commonly
# advised: 10 to 30 batches (Law, Simulation Modeling and Analysis, 5th ed., 9.5.3).
BATCHES = 10


def batch_means_half_width(windows: LatencyHistogram, warmup: float, window_length: float) -> float:
    """The 95% half-width of one run's mean latency by non-overlapping batch means: the
    windows that start at or after ``warmup`` (rows of ``windows``, by arrival time) in BATCHES
    contiguous batches, each batch's mean of `ok` latencies, Student's t over the batches
    (Law, 9.5.3). NaN when fewer than two batches hold a request."""
    first = math.ceil(warmup / window_length - 1e-9)
    totals, counts = windows.total[first:], windows.n[first:]
    if totals.size < BATCHES:
        return math.nan
    batches = np.array_split(np.arange(totals.size), BATCHES)
    sums = np.array([totals[b].sum() for b in batches])
    n = np.array([counts[b].sum() for b in batches])
    return confidence_half_width(sums[n > 0] / n[n > 0])


def server_utilization(output: RunOutput, warmup: float, duration: float) -> np.ndarray:
    """Each server's busy worker-time over its worker-time as a member in [warmup, duration)
    (from ``t_join`` to ``t_leave``; the engine stops counting a server's busy time when it
    leaves), shape (servers,); NaN for a server that was never a member then."""
    servers = output.servers
    workers = np.array([s.workers for s in servers], dtype=float)
    joined = np.maximum([s.t_join for s in servers], warmup)
    left = np.minimum([s.t_leave for s in servers], duration)
    member = np.maximum(left - joined, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(member > 0, output.busy_time / (workers * member), np.nan)


def _tiers(output: RunOutput, utilization: np.ndarray) -> pd.DataFrame:
    """One row per balancer tier with processing: its instances and the utilization of its
    busiest and of its average instance (empty when no tier has processing)."""
    tiers = np.array(output.balancer_tiers)
    rows = [
        (name, int((tiers == name).sum()), float(utilization[tiers == name].max()),
         float(utilization[tiers == name].mean()))
        for name in dict.fromkeys(output.balancer_tiers)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["tier", "instances", "utilization_max", "utilization_mean"])


def _regions(output: RunOutput) -> pd.DataFrame:
    """One row per client region: its counted requests, error rate, latency, and the share
    of its served requests served in another region (empty without regions)."""
    tally = output.tally
    rows = []
    for r, name in enumerate(output.regions):
        n = int(tally.region_requests[r])
        p50, p99 = tally.region_latency.quantiles(np.array([0.5, 0.99]), row=r)
        served = int(tally.region_served[r])
        rows.append(
            (name, n, 1 - int(tally.region_latency.n[r]) / n if n else math.nan, tally.region_latency.mean(r),
             float(p50), float(p99), int(tally.region_elsewhere[r]) / served if served else math.nan)
        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(REGION_COLUMNS))


def little_law(output: RunOutput) -> tuple[float, float]:
    """Both sides of Little's law over the whole run: the time-average number of requests in
    the system (integrated by the engine) and the sum of sojourn times over the run length,
    which is arrival rate x mean sojourn. They agree exactly when nothing is left in flight."""
    return output.in_system_time / output.t_end, output.tally.sojourn / output.t_end


# Events that take a server out of rotation, and that bring it back.
_OUT = {"down", "ejected", "marked"}
_BACK = {"up", "returned"}


def _faults(output: RunOutput, events: pd.DataFrame) -> pd.DataFrame:
    """One row per fault occurrence: detection, restoration, and the failures it caused.

    ``t_detected`` is when a balancer instance first stopped sending new requests to a
    failed server (health check down, ejection, NGINX mark); ``t_restored`` is when it was
    back in rotation after the fault ended. ``n_failed`` counts requests that ended badly
    at the failed servers (or were dropped, for a balancer) between the start and the
    restoration (or the end); ``n_retried`` the retries those failures triggered.
    """
    t_done, server, status = output.tally.failed()
    index_of = {s.name: s.index for s in output.servers}
    retries = np.array(output.retry_log, dtype=float).reshape(-1, 2)
    rows = []
    for occurrence in output.occurrences:
        mine = events[events["subject"].isin(occurrence.servers)]
        out = mine[mine["event"].isin(_OUT) & (mine["t"] >= occurrence.t_start)]
        t_detected = float(out["t"].min()) if len(out) else math.nan
        back = mine[mine["event"].isin(_BACK) & (mine["t"] >= occurrence.t_end)]
        t_restored = float(back["t"].min()) if len(out) and len(back) else math.nan
        t_until = t_restored if not math.isnan(t_restored) else occurrence.t_end
        window = (t_done >= occurrence.t_start) & (t_done <= t_until)
        if occurrence.instance is not None:
            # Dropped by the failed instance, or (an instance of a tier below the top) answered
            # with an error by the tier above, which had no server to name.
            failed = window & ((status == DROPPED) | ((server < 0) & (status == ERROR)))
            retried = 0
        else:
            servers = [index_of[name] for name in occurrence.servers]
            failed = window & np.isin(server, servers)
            in_window = (retries[:, 0] >= occurrence.t_start) & (retries[:, 0] <= t_until)
            retried = int(np.isin(retries[in_window, 1], servers).sum())
        rows.append(
            (occurrence.target, occurrence.kind, occurrence.t_start, occurrence.t_end, t_detected, t_restored,
             int(failed.sum()), retried)
        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(FAULT_COLUMNS))


def _latency_stats(histogram: LatencyHistogram, summary: dict[str, Any]) -> np.ndarray:
    """Add the latency columns to ``summary``; return the quantiles kept for CDF plots."""
    if histogram.n[0] == 0:
        summary.update(dict.fromkeys(LATENCY_COLUMNS, math.nan))
        return np.full(CDF_PROBABILITIES.size, np.nan)
    summary["latency_mean"] = histogram.mean()
    p50, p90, p99, p999 = histogram.quantiles(np.array([0.5, 0.9, 0.99, 0.999]))
    summary.update(
        latency_p50=float(p50),
        latency_p90=float(p90),
        latency_p99=float(p99),
        latency_p999=float(p999),
        latency_max=float(histogram.high[0]),
    )
    return histogram.quantiles(CDF_PROBABILITIES)


def _servers(output: RunOutput, utilization: np.ndarray) -> pd.DataFrame:
    tally = output.tally
    with np.errstate(invalid="ignore", divide="ignore"):
        latency_mean = np.where(
            tally.server_ok > 0, tally.server_latency / np.maximum(tally.server_ok, 1), np.nan
        )
    return pd.DataFrame(
        {
            "server": [s.name for s in output.servers],
            "group": [s.group for s in output.servers],
            "n_requests": tally.server_requests,
            "n_error": tally.server_requests - tally.server_ok,
            "utilization": utilization,
            "latency_mean": latency_mean,
        }
    )


def _timeseries(output: RunOutput, duration: float, window: float) -> pd.DataFrame:
    tally = output.tally
    starts = output.sample_times
    n = tally.window_requests
    n_ok = tally.window_latency.n
    p99 = np.array([tally.window_latency.quantiles(np.array([0.99]), row=k)[0] for k in range(starts.size)])
    widths = np.minimum(starts + window, duration) - starts
    with np.errstate(invalid="ignore", divide="ignore"):
        error_rate = np.where(n > 0, (n - n_ok) / np.maximum(n, 1), np.nan)
    table = pd.DataFrame(
        {
            "t_start": starts,
            "throughput": tally.window_completed / widths,
            "error_rate": error_rate,
            "latency_p99": p99,
        }
    )
    names = [s.name for s in output.servers]
    parts = [table, pd.DataFrame(output.active_samples, columns=[f"active_{name}" for name in names])]
    if (
        output.state_samples is not None
        and output.eligible_samples is not None
        and tally.window_served is not None
    ):
        parts += [
            pd.DataFrame(output.state_samples, columns=[f"state_{name}" for name in names]),
            pd.DataFrame(output.eligible_samples, columns=[f"eligible_{name}" for name in names]),
            pd.DataFrame(tally.window_served / widths[:, None], columns=[f"served_{name}" for name in names]),
        ]
    if output.regions:
        columns = [f"region_{name}" for name in output.regions]
        parts.append(pd.DataFrame(tally.window_region / widths[:, None], columns=columns))
    return pd.concat(parts, axis=1)


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile(df: int) -> float:
    """Return the 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion around the normal quantile; error below 1e-4 for df > 30.
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def confidence_half_width(values: np.ndarray) -> float:
    """Half-width of the 95% confidence interval of the mean of ``values`` (NaN for one value)."""
    values = values[~np.isnan(values)]
    if values.size < 2:
        return math.nan
    return t_quantile(values.size - 1) * float(values.std(ddof=1)) / math.sqrt(values.size)


def cell_table(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Aggregate replications: each metric's mean and 95% half-width (``<metric>_ci``) per cell."""
    rows = []
    for key_values, group in summary.groupby(keys, sort=False, dropna=False):
        row: dict[str, Any] = dict(
            zip(keys, key_values if isinstance(key_values, tuple) else (key_values,), strict=True)
        )
        row["replications"] = len(group)
        for metric in METRICS:
            values = group[metric].to_numpy(dtype=float)
            row[metric] = float(np.nanmean(values)) if not np.isnan(values).all() else math.nan
            row[f"{metric}_ci"] = confidence_half_width(values)
        if len(group) == 1:  # one long run: its own batch means give the mean latency's interval
            row["latency_mean_ci"] = float(group["latency_mean_batch_ci"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)
