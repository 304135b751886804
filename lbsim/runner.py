"""Run scenarios: one cell with :func:`simulate`, a sweep grid x replications with :func:`sweep`.

Everything a worker needs travels as (cell, seed, replication), plain picklable data, so a
sweep gives identical results serially or in a process pool.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import math
import multiprocessing
import os
import re
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel

from lbsim import engine
from lbsim.atomic import write_atomic
from lbsim.config.base import on_spelled
from lbsim.config.loading import load_scenario
from lbsim.config.overrides import get_path
from lbsim.config.scenario import Scenario
from lbsim.config.sweep import Cell, expand
from lbsim.config.workload import Arrivals
from lbsim.distributions import Empirical
from lbsim.errors import ConfigError, WorkerLost, shown
from lbsim.limits import MAX_REPLICATIONS, MAX_RUNS, PILOT_REPLICATIONS
from lbsim.policies import Policy, make_policy
from lbsim.precision import run_until_precise
from lbsim.results.metrics import RunTables, cell_table, summarize
from lbsim.results.mser import BATCH, mser5
from lbsim.results.recorder import Records
from lbsim.results.request_log import RequestsFile, RequestsInMemory, require_parquet
from lbsim.results.run_file import DamagedRunFile, read_run, write_run
from lbsim.status import OK
from lbsim.workload import ClosedUsers

ScenarioSource = Scenario | str | Path | Mapping[str, Any]

# Seconds to wait for a Dask scheduler to answer before giving up.
SCHEDULER_TIMEOUT = 5


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """The tables of one simulated run.

    Attributes:
        summary: one row (the summary.csv columns).
        servers: one row per server.
        timeseries: one row per time window.
        requests: one row per request that ended: arrival, start and end instants, latency,
            size, server, status, client, session; None when simulated with
            ``keep_requests=False``.
        faults: one row per fault occurrence (faults.csv).
        events: every state change: health checks, ejections, circuit breakers, faults, DNS.
        regions: one row per client region (regions.csv; empty without regions).
        tiers: one row per balancer tier with processing (tiers.csv).
    """

    summary: pd.DataFrame
    servers: pd.DataFrame
    timeseries: pd.DataFrame
    requests: pd.DataFrame | None
    faults: pd.DataFrame
    events: pd.DataFrame
    regions: pd.DataFrame
    tiers: pd.DataFrame


@dataclass(slots=True)
class SweepResult:
    """The tables of a whole sweep, in cell then replication order."""

    summary: pd.DataFrame
    table: pd.DataFrame
    servers: pd.DataFrame
    timeseries: pd.DataFrame
    cdf: pd.DataFrame
    faults: pd.DataFrame
    regions: pd.DataFrame
    tiers: pd.DataFrame
    keys: list[str]
    cells: list[dict[str, Any]] = field(default_factory=list)
    # Runs taken from the run cache instead of simulated.
    n_cached: int = 0
    # What the run found that the plan could not know (warmup: auto's cuts).
    notes: list[str] = field(default_factory=list)


def resolved_seed(scenario: Scenario, seed: int | None) -> int:
    """The seed to run with: ``seed``, or the scenario's (>= 0, as the file's must be)."""
    if seed is None:
        return scenario.seed
    if seed < 0:
        raise ConfigError(f"seed must be >= 0; got {seed}.")
    return seed


def _scenario(source: ScenarioSource, policy: Policy | str | None = None) -> Scenario:
    scenario = source if isinstance(source, Scenario) else load_scenario(source)
    if policy is not None:
        scenario = load_scenario(scenario, overrides=[("balancer.policy", policy)])
    return scenario


def simulate(
    scenario: ScenarioSource,
    *,
    seed: int | None = None,
    replication: int = 0,
    policy: Policy | str | None = None,
    keep_requests: bool = True,
) -> SimulationResult:
    """Simulate one replication of a scenario, as written (its ``sweep`` is not applied).

    Args:
        scenario: a Scenario, a YAML path or a mapping.
        seed: overrides the scenario's seed.
        replication: which replication's random streams to use.
        policy: a policy name or Policy object to use instead of the scenario's.
        keep_requests: keep every request's record for ``SimulationResult.requests``
            (about 230 bytes each); with False, ``requests`` is None and memory stays
            bounded however long the run.
    """
    scenario = _scenario(scenario, policy)
    seed = resolved_seed(scenario, seed)
    kept = RequestsInMemory() if keep_requests else None
    output = engine.run(scenario, seed, replication, [kept] if kept is not None else [])
    tables = summarize(output, scenario)
    row = {
        "scenario": scenario.name,
        "policy": scenario.policy_label(),
        "replication": replication,
        "seed": seed,
    }
    summary = pd.DataFrame([{**row, **tables.summary}])
    requests = kept.frame([server.name for server in output.servers]) if kept is not None else None
    return SimulationResult(
        summary,
        tables.servers,
        tables.timeseries,
        requests,
        tables.faults,
        tables.events,
        tables.regions,
        tables.tiers,
    )


Task = tuple[Scenario, int, int]


def run_task(
    task: Task, requests_path: Path | None = None, tick: Callable[[float], None] | None = None
) -> tuple[RunTables, float]:
    """Simulate one (scenario cell, seed, replication) and return its tables and wall time;
    with ``requests_path``, also write its per-request records there as Parquet; ``tick`` is
    told the share of the run's simulated time done (see :func:`lbsim.engine.run`)."""
    scenario, seed, replication = task
    started = time.perf_counter()
    kept = RequestsFile(requests_path) if requests_path is not None else None
    output = engine.run(scenario, seed, replication, [kept] if kept is not None else [], tick)
    if kept is not None:
        kept.close()
    tables = summarize(output, scenario)
    return tables, time.perf_counter() - started


# Arrival-time bins of the series MSER-5 reads for warmup: auto.
TRUNCATION_BINS = 1000


def auto_warmup(scenario: Scenario, seed: int, replications: int) -> tuple[float, bool]:
    """Where MSER-5 (:func:`lbsim.results.mser.mser5`) cuts a cell's response times: pilot
    runs of its replications with no warm-up (the same seeds, so the same sample paths as the
    measured runs), their `ok` requests' response times averaged over all replications in
    TRUNCATION_BINS bins of arrival time, the cut applied to every replication. Averaging over
    replications first is what makes MSER reliable on a strongly correlated output (White and
    Robinson, 2010): cut per replication, an M/M/1 at load 0.95 started empty came out
    further below theory than not cut at all.

    Returns:
        the warm-up (s) and whether it is a steady state (False: MSER's minimum is at half
        the run, which is then cut).
    """
    pilot = load_scenario(scenario, overrides=[("warmup", 0.0)])
    sums, counts = np.zeros(TRUNCATION_BINS), np.zeros(TRUNCATION_BINS)
    for replication in range(replications):
        chunks: list[Records] = []
        engine.run(pilot, seed, replication, [chunks.append])
        records = Records.join(chunks)
        ok = records.status == OK
        bins = np.minimum(
            (records.t_arrival[ok] / scenario.duration * TRUNCATION_BINS).astype(int), TRUNCATION_BINS - 1
        )
        sums += np.bincount(bins, records.t_done[ok] - records.t_arrival[ok], TRUNCATION_BINS)
        counts += np.bincount(bins, None, TRUNCATION_BINS)
    filled = np.flatnonzero(counts)
    if filled.size < 10 * BATCH:
        raise ConfigError(
            f"warmup: auto needs ok requests in at least {10 * BATCH} of its {TRUNCATION_BINS} arrival-time "
            f"bins over the replications; got {filled.size}: give a fixed warmup or a longer run."
        )
    cut = mser5(sums[filled] / counts[filled])
    if cut is None:
        return scenario.duration / 2, False
    return float(filled[cut] * scenario.duration / TRUNCATION_BINS), True


def cell_values(cell: Cell) -> dict[str, Any]:
    """The swept values of a cell as table columns: resolved numbers (``250/s`` is 250.0),
    policy labels, and mappings or lists as the scenario wrote them, in YAML's flow style
    (``{interval: 2s, fall: 3}``)."""
    values: dict[str, Any] = {}
    for key, written in cell.values.items():
        if key == "balancer.policy":
            continue
        value = get_path(cell.scenario, key)
        if isinstance(value, int | float | str):
            values[key] = value
        elif isinstance(written, dict | list):
            values[key] = yaml.safe_dump(
                _as_written(written), default_flow_style=True, sort_keys=False, width=math.inf
            ).strip()
        else:
            values[key] = str(value)
    return values


def _as_written(value: Any) -> Any:
    """``value`` with each mapping key YAML 1.1 read as true (``on``) spelled ``on`` again."""
    if isinstance(value, dict):
        return {key: _as_written(item) for key, item in on_spelled(value).items()}
    if isinstance(value, list):
        return [_as_written(item) for item in value]
    return value


def run_sweep(
    scenario: ScenarioSource,
    *,
    jobs: int | None = None,
    seed: int | None = None,
    replications: int | None = None,
    progress: Callable[[float, int], None] | None = None,
    scheduler: str | None = None,
    cache: RunCache | None = None,
    keep_requests: Path | None = None,
) -> SweepResult:
    """Simulate every cell of the sweep grid for every replication. With the scenario's
    ``precision``, each cell runs in rounds from at least PILOT_REPLICATIONS until its
    half-width target holds (:mod:`lbsim.precision`); ``notes`` name the cells that missed it.

    Args:
        scenario: a Scenario, a YAML path or a mapping.
        jobs: worker processes (default: all cores; 1 runs in this process).
        seed: overrides the scenario's seed.
        replications: overrides the scenario's number of replications (with ``precision``,
            where each cell starts).
        progress: called as ``progress(done, total)``: runs done (a float: finished runs plus
            the simulated share of those under way, except on Dask) of ``total``.
        scheduler: a Dask scheduler address (``tcp://host:8786``), or ``local`` for a
            LocalCluster of 2 workers on this machine; None runs in ``jobs`` processes.
        cache: where finished runs are kept; runs found there are not simulated again.
        keep_requests: a folder to write each run's per-request records to, as Parquet
            (``<task key>.parquet``; the manifest maps cells to them).

    Raises:
        ConfigError: a bad scenario, more than MAX_RUNS runs (at ``precision``'s maximum),
            or two cells of the sweep that are the same cell.
    """
    scenario = _scenario(scenario)
    seed = resolved_seed(scenario, seed)
    replications = starting_replications(scenario, replications)
    jobs = os.cpu_count() or 1 if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1; got {jobs}.")
    if keep_requests is not None:
        require_parquet()
    precision = scenario.precision
    cells = expand(scenario)
    _check_runs(len(cells), _most_replications(scenario, replications))
    points = swept_points(cells)
    # warmup: auto cuts each cell once, over the replications it starts with, so later rounds
    # of precision reuse the earlier rounds' runs.
    truncations = {
        cell.index: auto_warmup(cell.scenario, seed, replications)
        for cell in cells
        if cell.scenario.warmup == "auto"
    }
    # The runs this sweep simulated: a later round of precision finds them in the cache, yet
    # they are not counted as cached.
    simulated: set[str] = set()
    run = functools.partial(
        _run_cells,
        scenario,
        cells,
        truncations,
        seed,
        jobs,
        progress,
        scheduler,
        cache,
        keep_requests,
        simulated,
    )
    if precision is None:
        return run([replications] * len(cells))
    result, missed = run_until_precise(run, points, precision, replications)
    result.notes.extend(missed)
    return result


def _most_replications(scenario: Scenario, replications: int) -> int:
    """The most replications a cell of ``scenario`` may run: ``replications``, or with
    ``precision`` its maximum."""
    return scenario.precision.max_replications if scenario.precision is not None else replications


def starting_replications(scenario: Scenario, replications: int | None) -> int:
    """The replications each cell of ``scenario`` starts with: ``replications`` (None: the
    scenario's), and with ``precision`` at least PILOT_REPLICATIONS.

    Raises:
        ConfigError: not in [1, MAX_REPLICATIONS], or above ``precision``'s maximum.
    """
    replications = scenario.replications if replications is None else replications
    if not 1 <= replications <= MAX_REPLICATIONS:
        raise ConfigError(f"replications must be >= 1 and <= {MAX_REPLICATIONS}; got {replications}.")
    if scenario.precision is None:
        return replications
    if replications > scenario.precision.max_replications:
        raise ConfigError(
            f"replications must be at most precision.max_replications "
            f"({scenario.precision.max_replications}); got {replications}."
        )
    return max(replications, PILOT_REPLICATIONS)


def swept_points(cells: list[Cell]) -> list[int]:
    """The swept point of each cell, numbered in order of first appearance: cells that differ
    only in their policy share one (the policies compared there, replication by replication).

    Raises:
        ConfigError: two cells with the same values and policy (a value listed twice, or two
            values that resolve to one: ``rate: [300, 100%]`` on a fleet of capacity 300).
    """
    points: dict[str, int] = {}
    seen: dict[str, int] = {}
    numbers = []
    for cell in cells:
        values = yaml.safe_dump(cell_values(cell), sort_keys=True)
        same = seen.setdefault(f"{cell.scenario.policy_label()}|{values}", cell.index)
        if same != cell.index:
            raise ConfigError(
                f"sweep cells {same} and {cell.index} are the same cell "
                f"({', '.join(f'{k}={shown(v)}' for k, v in cell.values.items())}): "
                "a sweep must list each value once."
            )
        numbers.append(points.setdefault(values, len(points)))
    return numbers


def _run_cells(
    scenario: Scenario,
    cells: list[Cell],
    truncations: dict[int, tuple[float, bool]],
    seed: int,
    jobs: int,
    progress: Callable[[float, int], None] | None,
    scheduler: str | None,
    cache: RunCache | None,
    keep_requests: Path | None,
    simulated: set[str],
    counts: list[int],
) -> SweepResult:
    """Run cell c of ``cells`` for replications 0 to counts[c] - 1 (see :func:`run_sweep`);
    the keys of the runs it simulates join ``simulated``."""
    measured = [
        load_scenario(cell.scenario, overrides=[("warmup", truncations[cell.index][0])])
        if cell.index in truncations
        else cell.scenario
        for cell in cells
    ]
    tasks = [(cell, seed, r) for cell, n in zip(measured, counts, strict=True) for r in range(n)]
    cell_of = [c for c, n in enumerate(counts) for _ in range(n)]
    # One key per task, taken once: the files it hashes could change while the sweep runs.
    keys = [task_key(task) for task in tasks]
    paths = [keep_requests / f"{key}.parquet" if keep_requests else None for key in keys]
    found = [
        cache.load(key) if cache is not None and (path is None or path.exists()) else None
        for key, path in zip(keys, paths, strict=True)
    ]
    todo = [i for i, result in enumerate(found) if result is None]
    reused = len(tasks) - len(todo)

    def finished(done: float, total: int) -> None:
        if progress:
            progress(reused + done, len(tasks))

    fresh = run_tasks(
        [tasks[i] for i in todo],
        jobs,
        finished,
        scheduler,
        (lambda k, run: cache.store(keys[todo[k]], run)) if cache else None,
        [paths[i] for i in todo],
    )
    for i, run in zip(todo, fresh, strict=True):
        found[i] = run
    simulated.update(keys[i] for i in todo)
    here = [i for i, key in enumerate(keys) if key in simulated]
    result = _assemble(scenario, cells, seed, counts, found, {cell_of[i] for i in here})  # type: ignore[arg-type]
    result.n_cached = len(tasks) - len(here)
    if truncations:
        per_run = [truncations.get(c, (math.nan, None)) for c in cell_of]
        result.summary["truncation"] = [cut for cut, _ in per_run]
        result.summary["steady_state"] = [steady for _, steady in per_run]
        result.notes = _truncation_notes(cells, truncations)
    if keep_requests is not None:
        for row, first, n in zip(result.cells, itertools.accumulate([0, *counts]), counts, strict=False):
            row["requests"] = [path.name for path in paths[first : first + n] if path]
    return result


def _truncation_notes(cells: list[Cell], truncations: dict[int, tuple[float, bool]]) -> list[str]:
    """A line per cell that warmup: auto cut without a steady state, or whose cut hides a
    scheduled fault that starts before it."""
    notes = []
    for cell in cells:
        if cell.index not in truncations:
            continue
        cut, steady = truncations[cell.index]
        if not steady:
            notes.append(
                f"cell {cell.index}: warmup: auto found no steady state (MSER-5's minimum at half the run, "
                f"{cut:g}s, which is cut): its figures depend on the run's length"
            )
        hidden = [i for i, f in enumerate(cell.scenario.faults) if f.at is not None and f.at < cut]
        if hidden:
            notes.append(
                f"cell {cell.index}: warmup: auto cut {cut:.3g}s, after faults[{hidden[0]}] starts: "
                "what the fault did before the cut is not measured (give a fixed warmup)"
            )
    return notes


def _check_runs(n_cells: int, replications: int) -> None:
    if n_cells * replications > MAX_RUNS:
        raise ConfigError(
            f"replications must be at most {MAX_RUNS // n_cells:,} with {n_cells:,} sweep cell(s) "
            f"(at most {MAX_RUNS:,} runs); got {replications:,}."
        )


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will simulate, known before it runs.

    Attributes:
        n_cells: cells of the sweep grid.
        requests: about how many requests arrive over every cell and replication.
        server_load: each cell's offered load on the servers: arrival rate x mean size /
            the fleet's capacity, sum of count x workers x speed (1 or more: overloaded);
            NaN for closed-loop users, whose rate follows from the run.
        balancer_load: each cell's offered load on the balancer's cores: arrival rate x
            processing cost / (instances x cores); NaN for closed-loop users.
        warnings: one line per cell that is overloaded (its means and percentiles grow with
            the run's length), or whose request sizes vary so much that a run's mean size is
            likely to miss the configured mean by more than SIZE_MEAN_ERROR, or with a
            fault scheduled at or after the run's end (a shortened run, --set duration=...).
    """

    n_cells: int
    requests: float
    server_load: list[float]
    balancer_load: list[float]
    warnings: list[str]


# The relative standard error of a run's mean request size above which a cell is warned about.
SIZE_MEAN_ERROR = 0.05


# The requests beyond a percentile each run should have for --precision on that percentile:
# see lbsim.tools.coverage.PRECISION.
TAIL_REQUESTS = 100


def _beyond(metric: str, rate: float, cell: Scenario) -> float:
    """About how many measured requests of one run of ``cell`` lie beyond the percentile
    ``metric`` (``latency_p99``: 1%); infinite for a metric that is not a percentile."""
    digits = re.fullmatch(r"latency_p(\d+)", metric)
    if digits is None:
        return math.inf
    measured = cell.duration - (cell.warmup if isinstance(cell.warmup, float) else 0.0)
    return rate * measured * (1 - float(f"0.{digits.group(1)}"))


def sweep_plan(scenario: Scenario, replications: int) -> SweepPlan:
    """The plan of ``scenario``'s sweep for ``replications`` replications (with ``precision``,
    for its maximum: the most it may run). Each cell's
    requests are its mean arrival rate times its duration (for closed-loop users, users /
    (mean think + mean size), an upper bound); the mean size of n requests of a size
    distribution with coefficient of variation cv has a standard error of cv / sqrt(n) of
    the mean (any distribution with a finite variance, as every lbsim size distribution has).

    Raises:
        ConfigError: more than MAX_RUNS runs (cells x replications), or two cells of the sweep
            that are the same cell.
    """
    replications = _most_replications(scenario, replications)
    cells = expand(scenario)
    _check_runs(len(cells), replications)
    swept_points(cells)
    total = 0.0
    server_load, balancer_load, warnings = [], [], []
    for cell in cells:
        workload = cell.scenario.workload
        process = workload.process()
        if isinstance(process, ClosedUsers):
            rate = process.users / (process.think.mean + workload.size.mean)
        else:
            rate = process.mean_rate
        server_load.append(cell.scenario.offered_load)
        balancer_load.append(cell.scenario.balancer_load)
        n = rate * cell.scenario.duration
        total += n
        where = f"cell {cell.index}: " if len(cells) > 1 else ""
        for what, load in (("the servers'", server_load[-1]), ("the balancer cores'", balancer_load[-1])):
            if load >= 1:
                warnings.append(
                    f"{where}offered load {load:.2f} of {what} capacity: queues grow for the whole "
                    "run, so its means and percentiles depend on the run's length (no steady state)"
                )
        error = workload.size.cv / math.sqrt(max(n, 1.0))
        if error > SIZE_MEAN_ERROR:
            warnings.append(
                f"{where}workload.size {workload.size} over about {n:,.0f} requests: a run's mean size "
                f"has a standard error of {error:.0%} of its mean (cv / sqrt(requests)); "
                "longer runs or more replications narrow it"
            )
        if scenario.precision is not None:
            metric = scenario.precision.metric
            beyond = _beyond(metric, rate, cell.scenario)
            if beyond < TAIL_REQUESTS:
                warnings.append(
                    f"{where}about {beyond:,.0f} requests per run lie beyond {metric}, so an interval "
                    "over many such runs covers less than 95% (lbsim coverage: 90.8% with 20 beyond, "
                    f"94.0% with 100); runs of {TAIL_REQUESTS} or more beyond it fix that"
                )
        for i, fault in enumerate(cell.scenario.faults):
            if fault.at is not None and fault.at >= cell.scenario.duration:
                warnings.append(
                    f"{where}faults[{i}] starts at {fault.at:g}s, at or after the end of the run "
                    f"({cell.scenario.duration:g}s): it never happens"
                )
    return SweepPlan(len(cells), total * replications, server_load, balancer_load, warnings)


def task_key(task: Task) -> str:
    """A name for one run: a hash of what decides its result.

    It covers the resolved cell (its repr), the seed, the replication, the contents of the
    files the cell reads (trace replays and ``empirical()`` sizes) and the code that runs
    it: lbsim's own source and the source file of each policy class from outside lbsim that
    the cell uses (balancer, pools, tiers). So a changed parameter, input file, engine or
    user policy never matches an old run. Not covered: modules a user's policy file imports,
    and the versions of Python, numpy and simpy.

    Raises:
        ConfigError: a trace file the cell replays can no longer be read.
    """
    scenario, seed, replication = task
    # The keys that set up the whole run but not what one run simulates are left out, so a
    # new precision target or replication count reuses the runs it shares with an earlier one.
    run_alone = scenario.model_copy(
        update={"replications": 1, "precision": None, "expect": [], "description": ""}
    )
    parts = [
        repr(run_alone), str(seed), str(replication), *_files_read(scenario), _lbsim_source(),
        *_policy_sources(scenario),
    ]  # fmt: skip
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _files_read(value: object) -> Iterator[str]:
    """A hash of each input file ``value`` (a scenario, or any part of one) reads: the values
    of each ``empirical()`` distribution (read when the scenario was loaded) and the current
    contents of each trace it replays (read when the run starts)."""
    if isinstance(value, Empirical):
        yield hashlib.sha256(np.asarray(value.values, dtype=np.float64).tobytes()).hexdigest()
    elif isinstance(value, Arrivals) and value.kind == "trace":
        try:
            yield hashlib.sha256(Path(str(value.file)).read_bytes()).hexdigest()
        except OSError as exc:
            raise ConfigError(
                f"workload.arrivals.file: must be readable; got {shown(str(value.file))} ({exc.strerror})."
            ) from None
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _files_read(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _files_read(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _files_read(item)


@functools.cache
def _lbsim_source() -> str:
    """A hash of every .py file of the lbsim package, by relative path in sorted order; read
    once per process, as the code a process runs does not change once imported."""
    root = Path(__file__).parent
    files = sorted((path.relative_to(root).as_posix(), path) for path in root.rglob("*.py"))
    lines = [f"{name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n" for name, path in files]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _policy_sources(scenario: Scenario) -> list[str]:
    """A hash of the file of the module that defines each policy class from outside lbsim the
    scenario uses; a class from a module with no file (typed at a prompt or in a notebook)
    counts by its name only."""
    specs = [
        spec
        for balancer in (scenario.balancer, *scenario.tiers)
        for spec in (balancer.policy, *(pool.policy for pool in balancer.pools.values()))
        if spec is not None
    ]
    sources = []
    for spec in specs:
        cls = type(make_policy(spec))
        if cls.__module__.partition(".")[0] == "lbsim":
            continue
        file = getattr(sys.modules.get(cls.__module__), "__file__", None)
        if file is None:
            sources.append(f"{cls.__module__}:{cls.__qualname__}")
        else:
            sources.append(hashlib.sha256(Path(file).read_bytes()).hexdigest())
    return sources


class RunCache:
    """Finished runs kept in a folder, one file each, named by :func:`task_key`: a hash of
    the resolved cell, the seed, the replication, the files it reads, lbsim's source and the
    source of the cell's user policies. Files hold only data (``lbsim.results.run_file``), so
    a file planted in a results folder cannot run code; they are written whole or not at
    all, and one that does not read back is simulated again and counted in ``damaged``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.damaged = 0

    def path(self, key: str) -> Path:
        """Where the run named ``key`` is kept."""
        return self.folder / f"{key}.npz"

    def load(self, key: str) -> tuple[RunTables, float] | None:
        """The kept run named ``key``, or None (also when its file is damaged)."""
        path = self.path(key)
        try:
            # lbsim writes regular files only: a folder, a FIFO (which would block) or a
            # symbolic link (dangling, or to a file elsewhere) was put there by something else.
            if not stat.S_ISREG(path.lstat().st_mode):
                raise DamagedRunFile(f"{path.name}: not a regular file.")
            return read_run(path)
        except FileNotFoundError:
            return None
        except (DamagedRunFile, OSError):
            self.damaged += 1
            return None

    def store(self, key: str, result: tuple[RunTables, float]) -> None:
        """Keep the run named ``key``; where its place is taken (by a folder planted there, or
        a full disk), the run is not kept: the cache only saves time."""
        with contextlib.suppress(OSError):
            write_atomic(self.path(key), lambda tmp: write_run(tmp, *result))


def run_tasks(
    tasks: list[Task],
    jobs: int,
    progress: Callable[[float, int], None] | None = None,
    scheduler: str | None = None,
    store: Callable[[int, tuple[RunTables, float]], None] | None = None,
    requests_paths: list[Path | None] | None = None,
) -> list[tuple[RunTables, float]]:
    """Run (scenario, seed, replication) tasks, results in task order: in this process, in a
    process pool of ``jobs``, or on a Dask cluster (``scheduler``: an address or ``local``).
    ``store(position, result)`` is called with each result as soon as it arrives;
    ``requests_paths`` says where each task writes its per-request records (None: nowhere);
    ``progress(done, total)`` is told the runs done, with the simulated share of those under
    way in this process or its pool (not on Dask), a count that never goes back."""
    if progress:
        progress = _forward_only(progress)
    paths: list[Path | None] = requests_paths if requests_paths is not None else [None] * len(tasks)
    results: list[tuple[RunTables, float] | None] = [None] * len(tasks)

    def arrived(i: int, result: tuple[RunTables, float], done: int) -> None:
        results[i] = result
        if store is not None:
            store(i, result)
        if progress:
            progress(done, len(tasks))

    if not tasks:
        return []
    if scheduler is not None:
        _on_dask(tasks, paths, scheduler, arrived)
    elif jobs == 1 or len(tasks) == 1:
        for i, (task, path) in enumerate(zip(tasks, paths, strict=True)):
            tick = functools.partial(_partly, progress, len(tasks), i) if progress else None
            arrived(i, run_task(task, path, tick), i + 1)
    else:
        under_way = functools.partial(_partly, progress, len(tasks)) if progress else None
        _in_processes(tasks, paths, min(jobs, len(tasks)), arrived, under_way)
    return results  # type: ignore[return-value]


def _forward_only(progress: Callable[[float, int], None]) -> Callable[[float, int], None]:
    """``progress``, told only counts at least as high as the last it was told. A pool's count
    can otherwise go back: the shares of the runs under way include a run whose simulation
    has ended but whose result has not reached this process (counted whole), so the runs
    done plus those shares can exceed the next count of the runs done."""
    highest = 0.0

    def report(done: float, total: int) -> None:
        nonlocal highest
        if done >= highest:
            highest = done
            progress(done, total)

    return report


def _partly(progress: Callable[[float, int], None], total: int, done: float, fraction: float) -> None:
    """Tell ``progress`` the runs ``done`` and the ``fraction`` (summed) of those under way."""
    progress(done + fraction, total)


def _in_processes(
    tasks: list[Task],
    paths: list[Path | None],
    workers: int,
    arrived: Callable[[int, tuple[RunTables, float], int], None],
    under_way: Callable[[float, float], None] | None = None,
) -> None:
    """Run ``tasks`` in a pool of ``workers`` processes, handing each result to ``arrived``;
    every PROGRESS_INTERVAL seconds ``under_way(done, fraction)`` is told the runs done and
    the simulated share of those running, summed (each worker writes its run's share into a
    slot of a shared array).

    Tasks are handed to the pool as it takes them (at most two per worker waiting), so a
    sweep of a million runs does not hold a million queued work items. Ctrl-C
    (KeyboardInterrupt) or any error stops the pool at once: queued runs are cancelled and
    running workers terminated before the exception goes on, so no worker outlives the
    sweep. Workers leave Ctrl-C to this process and exit if it dies.

    Raises:
        WorkerLost: a worker process ended while running a task.
    """
    shares = multiprocessing.Array("d", workers, lock=False)
    slots = multiprocessing.Value("i", 0)
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_starts, initargs=(shares, slots))
    waiting = iter(enumerate(zip(tasks, paths, strict=True)))
    running: dict[Future[tuple[RunTables, float]], int] = {}
    done = 0
    try:
        while True:
            for i, (task, path) in itertools.islice(waiting, 2 * workers - len(running)):
                running[pool.submit(_run_in_worker, task, path)] = i
            if not running:
                break
            for future in wait(running, PROGRESS_INTERVAL, return_when=FIRST_COMPLETED).done:
                done += 1
                arrived(running.pop(future), future.result(), done)
            if under_way is not None:
                under_way(done, min(sum(shares), len(running)))
    except BrokenProcessPool:
        _stop(pool)
        raise WorkerLost(
            "a worker process ended in the middle of a run (killed, or out of memory?); "
            "the runs that finished are kept, and the same command resumes from them."
        ) from None
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what ``pool`` has queued and terminate its workers (a second Ctrl-C meanwhile is ignored)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool.shutdown(wait=False, cancel_futures=True)
        workers = multiprocessing.active_children()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()
    finally:
        signal.signal(signal.SIGINT, previous)


# Seconds between two progress reports of a process pool.
PROGRESS_INTERVAL = 0.5
# A worker's slot in the pool's shared array of run shares done, and the array.
_slot: list[Any] = []


def _worker_starts(shares: Any, slots: Any) -> None:
    """In a new worker: leave Ctrl-C to the parent, which stops the pool, and exit as soon as
    the parent is gone (killed), so no worker is left behind; take a slot of ``shares`` to
    report how far its runs are."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_without, args=(os.getppid(),), daemon=True).start()
    with slots.get_lock():
        _slot[:] = [shares, slots.value]
        slots.value += 1


def _run_in_worker(task: Task, path: Path | None) -> tuple[RunTables, float]:
    """:func:`run_task` in a pool worker, writing the share of the run done into its slot
    (back to 0 before the result goes to the parent, which then counts the run as done)."""
    shares, slot = _slot
    try:
        return run_task(task, path, functools.partial(shares.__setitem__, slot))
    finally:
        shares[slot] = 0.0


def _exit_without(parent: int) -> None:
    """Exit this process once its parent, process ``parent``, has ended (it is adopted)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _on_dask(
    tasks: list[Task],
    paths: list[Path | None],
    scheduler: str,
    arrived: Callable[[int, tuple[RunTables, float], int], None],
) -> None:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise ConfigError(
            f"--scheduler needs Dask distributed: pip install 'lbsim[dask]'; got {shown(scheduler)}."
        ) from None
    cluster = (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) if scheduler == "local" else None
    )
    try:
        with _connect(Client, cluster if cluster is not None else scheduler) as client:
            futures = client.map(run_task, tasks, paths, pure=False)
            position = {future.key: i for i, future in enumerate(futures)}
            for done, future in enumerate(dask_completed(futures), start=1):
                arrived(position[future.key], future.result(), done)
    finally:
        if cluster is not None:
            cluster.close()


def _connect(client: Any, scheduler: Any) -> Any:
    """A Dask ``client`` of ``scheduler`` (an address or a LocalCluster); a bad or unreachable
    address, or a peer that accepts the connection and never answers, is a ConfigError within
    a few seconds."""
    try:
        if isinstance(scheduler, str) and "://" not in scheduler:
            raise ValueError("no protocol, such as tcp://")
        # Dask's handshake waits for the peer's reply with no timeout of its own: connect in a
        # thread and stop waiting after twice the connect timeout (the thread is left to end).
        made: dict[str, Any] = {}

        def connect() -> None:
            try:
                made["client"] = client(scheduler, timeout=f"{SCHEDULER_TIMEOUT}s")
            except BaseException as exc:  # handed to the caller's thread below
                made["error"] = exc

        thread = threading.Thread(target=connect, daemon=True)
        thread.start()
        thread.join(2 * SCHEDULER_TIMEOUT)
        if thread.is_alive():
            raise TimeoutError(f"no answer within {2 * SCHEDULER_TIMEOUT} s")
        if "error" in made:
            raise made["error"]
        return made["client"]
    except (OSError, ValueError, TypeError, MemoryError) as exc:  # MemoryError: a peer that is not Dask
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"--scheduler must be 'local' or the address of a reachable Dask scheduler (tcp://HOST:8786); "
            f"got {shown(scheduler)} ({shown(reason, 80)[1:-1]})."
        ) from None


def _assemble(
    scenario: Scenario,
    cells: list[Cell],
    seed: int,
    counts: list[int],
    results: list[tuple[RunTables, float]],
    simulated: set[int],
) -> SweepResult:
    keys = ["scenario", "policy", *(key for key in scenario.sweep if key != "balancer.policy")]
    summary_rows, servers, series, cdf, faults, regions, tiers, cell_rows = [], [], [], [], [], [], [], []
    firsts = itertools.accumulate([0, *counts])
    for c, (cell, first) in enumerate(zip(cells, firsts, strict=False)):
        label = {
            "scenario": scenario.name,
            "policy": cell.scenario.policy_label(),
            **cell_values(cell),
        }
        wall = 0.0
        for r in range(counts[c]):
            tables, seconds = results[first + r]
            wall += seconds
            ids = {**label, "replication": r, "seed": seed}
            summary_rows.append({**ids, **tables.summary})
            servers.append(tables.servers.assign(**ids))
            series.append(tables.timeseries.assign(**ids))
            faults.append(tables.faults.assign(**ids))
            regions.append(tables.regions.assign(**ids))
            tiers.append(tables.tiers.assign(**ids))
            cdf.append(
                pd.DataFrame(
                    {"probability": _probabilities(tables), "latency": tables.latency_quantiles}
                ).assign(**ids)
            )
        status = "done" if c in simulated else "cached"
        cell_rows.append({**label, "replications": counts[c], "status": status, "wall_time": round(wall, 3)})
    summary = pd.DataFrame(summary_rows)
    id_columns = [*keys, "replication", "seed"]
    return SweepResult(
        summary=summary,
        table=cell_table(summary, keys),
        servers=_ids_first(pd.concat(servers, ignore_index=True), id_columns),
        timeseries=_ids_first(pd.concat(series, ignore_index=True), id_columns),
        cdf=_ids_first(pd.concat(cdf, ignore_index=True), id_columns),
        faults=_ids_first(pd.concat(faults, ignore_index=True), id_columns),
        regions=_ids_first(pd.concat(regions, ignore_index=True), id_columns),
        tiers=_ids_first(pd.concat(tiers, ignore_index=True), id_columns),
        keys=keys,
        cells=cell_rows,
    )


def _probabilities(tables: RunTables) -> np.ndarray:
    from lbsim.results.metrics import CDF_PROBABILITIES

    return CDF_PROBABILITIES[: tables.latency_quantiles.size]


def _ids_first(frame: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    return frame[ids + [column for column in frame.columns if column not in ids]]


def sweep(
    scenario: ScenarioSource,
    *,
    jobs: int | None = None,
    seed: int | None = None,
    replications: int | None = None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Simulate the sweep grid x replications and return the summary table (summary.csv)."""
    return run_sweep(scenario, jobs=jobs, seed=seed, replications=replications, scheduler=scheduler).summary
