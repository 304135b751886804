"""The ``lbsim`` command: a thin click front end over the runner and the report.

Exit codes: 0 success, 1 a check failed, 2 bad input (one line, no traceback, nothing written).
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from lbsim import __version__
from lbsim.config.emulate import EMULATIONS, Emulation
from lbsim.errors import ConfigError, LbsimError, WorkerLost, file_named, shown
from lbsim.limits import MAX_REPLICATIONS, PILOT_REPLICATIONS
from lbsim.policies import POLICIES, make_policy

if TYPE_CHECKING:
    from lbsim.config.precision import PrecisionModel
    from lbsim.config.scenario import Scenario
    from lbsim.runner import SweepResult

# The longest file name most file systems allow, in bytes.
NAME_MAX = 255
# The most requests `lbsim run` simulates without --force (about 2 hours in one process).
REQUEST_BUDGET = 1e9
# Requests a second one process simulates, for the estimate before a run: least connections
# with the default balancer cost, as benchmarks/speed.py measured it (README, Performance).
NOMINAL_RATE = 150_000


def _fail(message: str) -> NoReturn:
    """End with ``message`` (one error a line, as a scenario with several mistakes gives) and
    exit code 2."""
    for line in message.splitlines():
        click.echo(f"error: {line}", err=True)
    sys.exit(2)


def _stopping() -> None:
    """lbsim is exiting after Ctrl-C: a second Ctrl-C must not interrupt the exit with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted() -> NoReturn:
    """End after Ctrl-C: one line, exit code 130 (as a shell reports SIGINT)."""
    _stopping()
    click.echo("interrupted.", err=True)
    sys.exit(130)


# The longest usage error shown: Click's messages quote the value given, which may be long.
USAGE_LIMIT = 200


class OneLineUsage(click.Command):
    """A command whose usage mistakes (an unknown option, a value out of range) end with one
    line on stderr and exit code 2, not Click's three-line usage, and whose Ctrl-C while
    Click holds it ends with one line and exit code 130 (used by ``lbsim`` and the
    sim-to-real harness)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            # The parser's own errors (an option without its value) carry no context, and
            # the usage line would name the Python function, not the command.
            exc.ctx = exc.ctx or ctx
            raise

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
            sys.exit(2)
        except click.UsageError as exc:
            message = " ".join(exc.format_message().split())  # Click lists choices a line each
            if len(message) > USAGE_LIMIT:
                message = message[: USAGE_LIMIT - 3] + "..."
            command = exc.ctx.command_path if exc.ctx else self.name
            _fail(f"{message} (see {command} --help)")
        except click.Abort:
            _interrupted()


class _Commands(OneLineUsage, click.Group):
    """lbsim's commands, each of which ends early with one line on stderr: a usage mistake
    or a ConfigError (exit code 2), a lost worker process (exit code 1), Ctrl-C (exit code
    130)."""

    command_class = OneLineUsage

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(str(exc))
        except WorkerLost as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:  # before Click turns it into an Abort with an empty line
            _interrupted()


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lbsim")
def main() -> None:
    """lbsim: a discrete-event load-balancing simulator."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results folder (default: results/<name>).",
)
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option(
    "--replications", type=click.IntRange(1, MAX_REPLICATIONS), help="Override the number of replications."
)
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a scenario key (repeatable).",
)
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="KEY.PATH=V1,V2,...",
    help="Replace or add a sweep axis (repeatable).",
)
@click.option("--scheduler", help="Run on a Dask cluster: tcp://HOST:8786, or 'local' for a LocalCluster.")
@click.option(
    "--keep-requests",
    is_flag=True,
    help="Also write every run's per-request records as Parquet under <out>/requests/.",
)
@click.option(
    "--precision",
    metavar="SHARE",
    help="Add replications to each cell until the 95% half-width of --precision-metric is within "
    "SHARE (2%) of its value: the scenario's precision.relative.",
)
@click.option(
    "--precision-metric",
    metavar="METRIC",
    help="The metric --precision bounds: the scenario's precision.metric (default latency_p99).",
)
@click.option(
    "--max-replications",
    type=click.IntRange(PILOT_REPLICATIONS, MAX_REPLICATIONS),
    help="Where --precision stops: the scenario's precision.max_replications (default 100).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Simulate every run again: neither read nor write the runs kept in <out>/cache.",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--force", is_flag=True, help="Run even above the budget of 1e9 requests.")
@click.option(
    "--safe",
    is_flag=True,
    help="Treat the scenario as untrusted: refuse module:Class policies and files outside its folder.",
)
def run(
    scenario: Path,
    out: Path | None,
    seed: int | None,
    replications: int | None,
    jobs: int | None,
    sets: tuple[str, ...],
    sweeps: tuple[str, ...],
    scheduler: str | None,
    keep_requests: bool,
    precision: str | None,
    precision_metric: str | None,
    max_replications: int | None,
    no_cache: bool,
    quiet: bool,
    force: bool,
    safe: bool,
) -> None:
    """Simulate SCENARIO with its sweep and replications; write the results folder."""
    from lbsim.config.loading import load_scenario
    from lbsim.config.overrides import parse_assignment, split_values
    from lbsim.output.report import earlier_results, markdown_table, write_results, write_status
    from lbsim.results.expectations import check
    from lbsim.runner import RunCache, resolved_seed, run_sweep, starting_replications, sweep_plan

    overrides = [parse_assignment(text, "--set") for text in sets]
    axes = [(key, split_values(values)) for key, values in (parse_assignment(t, "--sweep") for t in sweeps)]
    loaded = load_scenario(scenario, overrides=overrides, sweeps=axes, safe=safe)
    loaded = _with_precision(scenario, loaded, precision, precision_metric, max_replications)
    seed = resolved_seed(loaded, seed)
    try:
        replications = starting_replications(loaded, replications)
    except ConfigError as exc:
        raise ConfigError(f"{file_named(scenario)} (--replications): {exc}") from None
    folder = out if out is not None else Path("results") / loaded.name
    _check_writable(folder)
    try:
        planned = sweep_plan(loaded, replications)
    except ConfigError as exc:
        raise ConfigError(f"{file_named(scenario)}: {exc}") from None
    n_cells = planned.n_cells
    per_cell = (
        f"{replications} to {loaded.precision.max_replications}" if loaded.precision else f"{replications}"
    )
    if planned.requests > REQUEST_BUDGET and not force:
        raise ConfigError(
            f"{file_named(scenario)}: a run must simulate at most {REQUEST_BUDGET:.0e} requests "
            "without --force; "
            f"got about {planned.requests:.2g} ({n_cells} cell(s) x {per_cell} replication(s))."
        )
    if not quiet:
        processes = min(jobs or os.cpu_count() or 1, n_cells * replications)
        hours = planned.requests / (NOMINAL_RATE * processes) / 3600
        click.echo(
            f"about {planned.requests:,.0f} requests in {n_cells} cell(s) x {per_cell} replication(s): "
            f"about {_span(hours * 3600)} at {NOMINAL_RATE:,} requests/s in each of {processes} process(es)",
            err=True,
        )
        click.echo(
            f"offered load (arrival rate x mean work / capacity): servers {_range(planned.server_load)}, "
            f"balancer cores {_range(planned.balancer_load)}",
            err=True,
        )
        for warning in _some_lines(planned.warnings):
            click.echo(f"warning: {warning}", err=True)
    command = shlex.join(["lbsim", *sys.argv[1:]])
    existed = folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--out must be a folder lbsim can make; got {shown(str(folder))} ({exc.strerror})."
        ) from None
    earlier = earlier_results(folder)
    if earlier is not None and earlier[0] != loaded.name and not quiet:
        click.echo(
            f"{shown(str(folder))} holds the results of scenario {shown(earlier[0])}: its {earlier[1]} "
            f"files are replaced by those of {shown(loaded.name)} (cache/ keeps the runs of both).",
            err=True,
        )
    write_status(folder, "running", command, loaded.name)
    started = time.time()
    cache = None if no_cache else RunCache(folder / "cache")
    try:
        with _progress(quiet) as progress:
            result = run_sweep(
                loaded,
                jobs=jobs,
                seed=seed,
                replications=replications,
                progress=progress,
                scheduler=scheduler,
                cache=cache,
                keep_requests=folder / "requests" if keep_requests else None,
            )
            if loaded.precision is not None and not quiet:
                _report_precision(loaded.precision, result)
    except KeyboardInterrupt:
        _stopping()
        write_status(folder, "interrupted", command, loaded.name, "Ctrl-C")
        click.echo(
            f"interrupted: finished runs are kept in {cache.folder}; the same command resumes."
            if cache is not None
            else "interrupted (--no-cache: no run was kept).",
            err=True,
        )
        sys.exit(130)
    except ConfigError:
        # A mistake found before any run (such as --scheduler): leave nothing behind.
        if not existed and not (folder / "cache").exists():
            (folder / "manifest.json").unlink()
            folder.rmdir()
        else:
            write_status(folder, "failed", command, loaded.name, "bad input")
        raise
    except Exception as exc:
        # A run that cannot go on (LbsimError), or a defect of lbsim's own: either way the
        # folder says the run failed and why, and the error goes on to its handler.
        reason = (
            str(exc)
            if isinstance(exc, LbsimError)
            else f"internal error: {type(exc).__name__}: {shown(str(exc))}"
        )
        write_status(folder, "failed", command, loaded.name, reason)
        raise
    simulated = time.time()
    planned.warnings.extend(result.notes)
    for note in [] if quiet else result.notes:
        click.echo(f"warning: {note}", err=True)
    if cache is not None and cache.damaged:
        click.echo(
            f"{cache.damaged} damaged file(s) in {cache.folder} not read: those runs were simulated again.",
            err=True,
        )
    timings = {"simulate_seconds": round(simulated - started, 3)}
    outcomes = check(loaded.expect, result.table, result.keys)
    try:
        write_results(
            folder,
            loaded,
            result,
            command=command,
            seed=seed,
            timings=timings,
            outcomes=outcomes,
            warnings=planned.warnings,
        )
    except OSError as exc:
        click.echo(f"error: could not write the results to {folder}/: {exc.strerror or exc}.", err=True)
        sys.exit(1)
    if not quiet:
        click.echo(
            markdown_table(
                result.table,
                result.keys,
                ("latency_mean", "latency_p99", "error_rate", "utilization_max"),
            )
        )
        cached = (
            f" ({result.n_cached} cached in {folder / 'cache'}, not simulated again; --no-cache reruns them)"
            if result.n_cached
            else ""
        )
        runs = f"{len(result.summary)} run{'' if len(result.summary) == 1 else 's'}"
        click.echo(f"{runs}{cached} in {simulated - started:.1f}s; results in {folder}/")
    for outcome in outcomes:
        if not (quiet and not outcome.failed):
            click.echo(f"expect {outcome.text}: {outcome.word} ({outcome.detail})")
    if any(outcome.failed for outcome in outcomes):
        sys.exit(1)


def _range(values: list[float]) -> str:
    """``values`` as one number, or their range over the cells (NaN: a closed-loop cell)."""
    known = [value for value in values if not math.isnan(value)]
    if not known:
        return "not known ahead (closed-loop users)"
    low, high = min(known), max(known)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f} over the cells"


def _some_lines(lines: list[str], limit: int = 3) -> list[str]:
    """At most ``limit`` of ``lines``, and a count of the rest."""
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... and {len(lines) - limit} more cell(s) like these"]


def _span(seconds: float) -> str:
    """``seconds`` as a person reads a wait: 40 s, 12 min, 3.5 h."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _check_writable(folder: Path) -> None:
    """Refuse, before simulating, a results folder lbsim could not create or write in.

    Raises:
        ConfigError: a name in the path is longer than the file system allows, the path runs
            through a file, or the nearest existing folder is not writable.
    """
    longest = max((len(os.fsencode(part)) for part in folder.parts), default=0)
    if longest > NAME_MAX:
        raise ConfigError(
            f"--out: every name in the path must be at most {NAME_MAX} bytes; got one of {longest}."
        )
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"--out must be a folder; got {shown(str(folder))}, inside {shown(str(existing))}, a file."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--out must be a folder lbsim can write in; got {shown(str(folder))} "
            f"({shown(str(existing))} is not writable)."
        )


def _regular_file(out: Path, source: Path) -> Path:
    """``--out`` for a file written from ``source``: a path that is a regular file or nothing
    yet (a device, a FIFO or a symbolic link there would be replaced by the rename that writes
    the file whole), and not ``source`` itself.

    Raises:
        ConfigError: something other than a regular file is there, or it is ``source``.
    """
    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise ConfigError(
            f"--out must name a regular file or a new one; got {shown(str(out))}, which is not."
        )
    if out.exists() and source.exists() and out.samefile(source):
        raise ConfigError(f"--out must not be the file it reads; got {shown(str(out))}.")
    return out


def _with_precision(
    path: Path, loaded: Scenario, relative: str | None, metric: str | None, maximum: int | None
) -> Scenario:
    """``loaded`` with the keys ``--precision``, ``--precision-metric`` and
    ``--max-replications`` set (``precision.relative`` and so on), checked there.

    Raises:
        ConfigError: a value the key refuses, or a metric or maximum without a target.
    """
    from lbsim.config.loading import load_scenario

    overrides = [
        (f"precision.{key}", str(value))
        for key, value in (("relative", relative), ("metric", metric), ("max_replications", maximum))
        if value is not None
    ]
    if not overrides:
        return loaded
    if relative is None and loaded.precision is None:
        raise ConfigError(
            f"{file_named(path)}: --precision-metric and --max-replications need a target: "
            "--precision SHARE, or precision.relative in the scenario; got neither."
        )
    return load_scenario(loaded, overrides=overrides)


def _report_precision(precision: PrecisionModel, result: SweepResult) -> None:
    """The replications ``precision`` took per cell, on stderr (the cells that missed it are
    among the result's notes, printed as warnings)."""
    from lbsim.output.quantities import three_figures

    counts = result.table["replications"]
    span = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
    click.echo(
        f"precision: {precision.metric} to within {three_figures(100 * precision.relative)}% of its value: "
        f"{span} replications per cell (table.csv's replications)",
        err=True,
    )


class _progress:
    """Progress on stderr, runs done (with the simulated share of those under way) / total:
    a bar on a terminal; elsewhere (a log, a CI job) a plain line at each tenth, with no
    carriage-return frames; nothing when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.tenths = 0
        self.total = 0

    def __enter__(self) -> Callable[[float, int], None] | None:
        if self.quiet:
            return None
        return self.update if sys.stderr.isatty() else self.line

    def update(self, done: float, total: int) -> None:
        if self.bar is not None and self.bar.total != total:  # another round of --precision
            self.bar.close()
            self.bar = None
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit="run",
                desc="simulating",
                file=sys.stderr,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} runs [{elapsed}<{remaining}]",
            )
        self.bar.update(done - self.bar.n)

    def line(self, done: float, total: int) -> None:
        if total != self.total:  # another round of --precision
            self.total, self.tenths = total, 0
        tenths = int(10 * done / total)
        if tenths > self.tenths:
            self.tenths = tenths
            click.echo(f"simulating: {done:.1f} of {total} runs ({done / total:.0%})", err=True)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--vary", "key", required=True, metavar="KEY.PATH", help="The number to search: servers[0].count, ..."
)
@click.option(
    "--slo",
    "slos",
    multiple=True,
    required=True,
    metavar="METRIC<=VALUE",
    help="An objective over a summary metric: latency_p99<=200ms, error_rate<=0.1% (repeatable).",
)
@click.option(
    "--range", "span", metavar="LO..HI", help="Values to search (default: 1..max(64, 16 x current))."
)
@click.option(
    "--survive", metavar="FAULT", help="Also meet the objectives with this fault: 'crash 1 server', 'zone:a'."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results folder (default: results/<name>-capacity).",
)
@click.option(
    "--replications", type=click.IntRange(min=2), help="Replications per probe (default: max(3, scenario's))."
)
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="Override a scenario key (repeatable)."
)
@click.option("--quiet", is_flag=True, help="Print only the answer.")
@click.option(
    "--safe",
    is_flag=True,
    help="Treat the scenario as untrusted: refuse module:Class policies and files outside its folder.",
)
def capacity(
    scenario: Path,
    key: str,
    slos: tuple[str, ...],
    span: str | None,
    survive: str | None,
    out: Path | None,
    replications: int | None,
    seed: int | None,
    jobs: int | None,
    sets: tuple[str, ...],
    quiet: bool,
    safe: bool,
) -> None:
    """Find the smallest KEY.PATH (or largest, for a rate) of SCENARIO meeting every --slo."""
    from lbsim.config.loading import load_scenario
    from lbsim.config.overrides import parse_assignment
    from lbsim.output.report import capacity_markdown, write_capacity
    from lbsim.tools.capacity import (
        parse_objective,
        parse_range,
        parse_survival,
        plan,
        probes_table,
        unsaturated,
    )

    objectives = unsaturated([parse_objective(text) for text in slos])
    bounds = parse_range(span) if span is not None else None
    survival = parse_survival(survive) if survive is not None else None
    loaded = load_scenario(scenario, overrides=[parse_assignment(text, "--set") for text in sets], safe=safe)
    replications = replications if replications is not None else max(3, loaded.replications)
    folder = out if out is not None else Path("results") / f"{loaded.name}-capacity"
    started = time.time()

    def report(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    searches = plan(
        loaded,
        key,
        objectives,
        bounds=bounds,
        survival=survival,
        replications=replications,
        jobs=jobs,
        seed=seed,
        progress=report,
    )
    probes = probes_table(searches)
    simulations = len(probes) * replications
    write_capacity(
        folder,
        probes,
        key,
        [(o.metric, o.value) for o in objectives],
        {
            "command": shlex.join(["lbsim", *sys.argv[1:]]),
            "scenario": loaded.name,
            "seed": loaded.seed if seed is None else seed,
            "replications": replications,
            "simulations": simulations,
            "seconds": round(time.time() - started, 3),
            "answers": {s.policy: s.answer for s in searches},
        },
    )
    shown = {s.policy: _value(s.answer) for s in searches}
    if not quiet:
        click.echo(capacity_markdown(probes, key, [o.metric for o in objectives]))
        for s in searches:
            estimate = f"{key} = {_value(s.estimate.value)}" if s.estimate.value is not None else "-"
            click.echo(
                f"{s.policy}: analytic estimate {estimate} ({s.estimate.method}); simulated {shown[s.policy]}"
            )
        runs = f"{simulations} simulations ({len(probes)} probes x {replications} replications)"
        click.echo(f"{runs}; results in {folder}/")
        sweep = sum(s.full_sweep for s in searches) * replications
        click.echo(f"A full sweep of the range at the same resolution would take {sweep} simulations.")
        click.echo(
            "A probe meets an objective when its 95% confidence bound on the objective's side does, "
            "so each answer is conservative: it may be one step above the true threshold."
        )
    missed = [s for s in searches if s.answer is None]
    for s in missed:
        click.echo(
            f"{s.policy}: no value of {key} in the range meets the objectives; closest: {_closest(s, key)}"
        )
    for s in searches:
        if s.answer is not None:
            suffix = f" ({s.policy})" if len(searches) > 1 else ""
            click.echo(f"{key} = {shown[s.policy]}{suffix}")
    if missed:
        sys.exit(1)


def _value(value: float | None) -> str:
    if value is None:
        return "none"
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _closest(search: Any, key: str) -> str:
    """The last probe, at the easiest end of the range, and its objectives' metrics."""
    probe = search.probes[-1]
    metrics = [m[:-3] for m in probe if m.endswith("_ci")]
    parts = [f"{m} = {probe[m]:.4g} ± {probe[f'{m}_ci']:.2g}" for m in metrics]
    return f"{key} = {_value(probe[key])} ({probe['variant']}) with " + ", ".join(parts)


@main.command(name="export")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "system", type=click.Choice(["haproxy", "nginx"]), required=True)
@click.option(
    "--backends",
    metavar="HOST:PORT,...",
    help="One address per server, in the scenario's order (default: the servers' addresses, "
    "else 127.0.0.1:8001, :8002, ...).",
)
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="Where the balancer listens.")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="Override a key (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
def export_config(
    scenario: Path, system: str, backends: str | None, listen: str, sets: tuple[str, ...], out: Path | None
) -> None:
    """Write the HAProxy or NGINX config that runs SCENARIO's balancer on real software; what
    the system cannot express is listed in the config's comments and on stderr."""
    from lbsim.atomic import write_text_atomic
    from lbsim.config.loading import load_scenario
    from lbsim.config.overrides import parse_assignment
    from lbsim.interop import haproxy, nginx
    from lbsim.interop.backends import check_address

    if out is not None:
        _regular_file(out, scenario)
    loaded = load_scenario(scenario, overrides=[parse_assignment(text, "--set") for text in sets])
    varied = [
        key
        for key, values in loaded.sweep.items()
        if key.startswith(("balancer", "servers")) and len(values) > 1
    ]
    if varied:
        raise ConfigError(
            f"{file_named(scenario)}: export writes one balancer, so the sweep must not vary the balancer "
            f"or the servers; got {shown(varied[0])} (pick one value with --set)."
        )
    addresses = backends.split(",") if backends is not None else None
    try:
        check_address(listen, "--listen")
        exported = (haproxy if system == "haproxy" else nginx).export(loaded, addresses, listen)
    except ConfigError as exc:
        raise ConfigError(f"{file_named(scenario)}: {exc}") from None
    for line in exported.unexpressed:
        click.echo(f"not expressed: {line}", err=True)
    if out is None:
        click.echo(exported.text, nl=False)
    else:
        write_text_atomic(out, exported.text)


@main.command(name="import")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "system",
    type=click.Choice(["haproxy", "nginx", "envoy"]),
    help="The config's system (default: by its suffix: .cfg HAProxy, .conf NGINX, .yaml .yml .json Envoy).",
)
@click.option("--name", default="imported", show_default=True, help="The scenario's name.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
def import_config(config: Path, system: str | None, name: str, out: Path | None) -> None:
    """Read a real balancer's CONFIG (an HAProxy backend, an NGINX upstream, an Envoy cluster)
    as a scenario with balancer.emulate set; the workload is a marked placeholder, and what
    lbsim does not read is listed in its comments and on stderr."""
    from yaml import safe_load

    from lbsim.atomic import write_text_atomic
    from lbsim.config.loading import load_scenario
    from lbsim.input_files import read_input
    from lbsim.interop import envoy, haproxy, nginx
    from lbsim.interop.imported import scenario_text

    if out is not None:
        _regular_file(out, config)
    where = file_named(config)
    suffixes = {".cfg": "haproxy", ".conf": "nginx", ".yaml": "envoy", ".yml": "envoy", ".json": "envoy"}
    system = system or suffixes.get(config.suffix)
    if system is None:
        raise ConfigError(
            f"{where}: --format must name the system of a file without a known suffix "
            f"({', '.join(suffixes)}); got none."
        )
    try:
        if system in ("haproxy", "envoy"):
            imported = (haproxy if system == "haproxy" else envoy).read(read_input(config, "the config "))
        else:
            read_input(config, "the config ")  # refuses what is no readable UTF-8 file
            imported = nginx.read(str(config))
        scenario = scenario_text(imported, config.name, name)
        load_scenario(safe_load(scenario))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).replace('<scenario>: ', 'read as a scenario, ', 1)}") from None
    for line in imported.unsupported:
        click.echo(f"not read: {line}", err=True)
    if out is None:
        click.echo(scenario, nl=False)
    else:
        write_text_atomic(out, scenario)


@main.command()
@click.option(
    "--policy", "policy_name", required=True, help="A policy name, e.g. ring_hash, maglev, ip_hash."
)
@click.option("--backends", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--keys", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def remap(policy_name: str, backends: int, keys: int, seed: int) -> None:
    """Key movement of a policy when one backend leaves and when one joins."""
    from lbsim.tools.remap import remap as measure

    try:
        result = measure(policy_name, backends=backends, keys=keys, seed=seed)
    except ConfigError as exc:
        raise ConfigError(f"--policy: {exc}") from None
    click.echo(f"{result.policy}: {keys} keys over {backends} backends (spread max/mean {result.spread:.3f})")
    click.echo(
        f"  one backend removed: {result.moved_on_remove:.2%} of keys moved (1/n = {1 / backends:.2%})"
    )
    click.echo(
        f"  one backend added:   {result.moved_on_add:.2%} of keys moved (1/(n+1) = {1 / (backends + 1):.2%})"
    )


@main.command()
@click.option("--quick", is_flag=True, help="Shorter runs (under 2 minutes on 2 cores).")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for validation.csv and .md [default: results/validation, or results/validation-quick].",
)
@click.option("--quiet", is_flag=True, help="Print only the verdict.")
def validate(quick: bool, jobs: int | None, out: Path | None, quiet: bool) -> None:
    """Check the engine against queueing theory; exit 1 if any case fails."""
    # The full run's table is committed; a quick run must not overwrite it.
    out = out if out is not None else Path("results/validation-quick" if quick else "results/validation")
    from lbsim.atomic import write_atomic, write_text_atomic
    from lbsim.tools.validation import markdown, table
    from lbsim.tools.validation import validate as run_suite

    started = time.time()
    with _progress(quiet) as progress:
        rows = run_suite(quick=quick, jobs=jobs, progress=progress)
    seconds = time.time() - started
    text = markdown(rows)
    failed = [row for row in rows if not row.passed]
    kind = "quick" if quick else "full"
    verdict = f"{len(rows) - len(failed)} of {len(rows)} cases pass ({kind} run, {seconds:.0f} s)."
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(
        out / "validation.csv", lambda tmp: table(rows).to_csv(tmp, index=False, float_format="%.8g")
    )
    write_text_atomic(out / "validation.md", text + "\n" + verdict + "\n")
    if not quiet:
        click.echo(text)
    click.echo(verdict)
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--experiments", type=click.IntRange(20, 100_000), default=1000, show_default=True)
@click.option("--replications", type=click.IntRange(2, 100), default=3, show_default=True)
@click.option("--requests", type=click.IntRange(min=100), default=2000, show_default=True, help="Per run.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/coverage"),
    show_default=True,
)
@click.option("--quiet", is_flag=True, help="Print only the verdict.")
def coverage(
    experiments: int, replications: int, requests: int, jobs: int | None, out: Path, quiet: bool
) -> None:
    """Check that lbsim's 95% intervals cover the theory value about 95% of the time; exit 1
    if a coverage's 99% interval excludes 95%."""
    from lbsim.atomic import write_text_atomic
    from lbsim.tools.coverage import coverage as run_coverage
    from lbsim.tools.coverage import markdown, runs_per_experiment

    runs = runs_per_experiment(replications)
    if runs * experiments * requests > REQUEST_BUDGET:
        raise ConfigError(
            f"coverage must simulate at most {REQUEST_BUDGET:.0e} requests ((2 x --replications + "
            f"{runs - 2 * replications}) x --experiments x --requests); "
            f"got {runs * experiments * requests:.2g}."
        )
    started = time.time()
    with _progress(quiet) as progress:
        rows = run_coverage(experiments, replications, requests, jobs, progress)
    missed = [row for row in rows if not row.interval[0] <= 0.95 <= row.interval[1]]
    text = markdown(rows)
    verdict = f"{len(rows) - len(missed)} of {len(rows)} cover at 95% ({time.time() - started:.0f} s)."
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "coverage.md", text + "\n" + verdict + "\n")
    if not quiet:
        click.echo(text)
    click.echo(verdict)
    sys.exit(1 if missed else 0)


@main.command()
@click.option(
    "--baseline",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/baseline"),
    show_default=True,
)
@click.option("--update", is_flag=True, help="Rerun the canonical scenarios and rewrite the baseline.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option(
    "--seed", type=int, help="Run with another seed than the baseline's (to test for false alarms)."
)
def regress(baseline: Path, update: bool, jobs: int | None, seed: int | None) -> None:
    """Rerun the canonical scenarios and compare with the baseline; exit 1 if behaviour moved."""
    from lbsim.tools import regress as regression

    if update:
        names = regression.update(baseline, jobs=jobs)
        click.echo(f"baseline rewritten in {baseline}/: {', '.join(names)}")
        return
    changes = regression.compare(baseline, jobs=jobs, seed=seed)
    click.echo(regression.report(changes))
    if any(change.moved for change in changes):
        sys.exit(1)


@main.command()
@click.option(
    "--emulate",
    type=click.Choice(list(EMULATIONS)),
    help="Show what each policy name and default means under balancer.emulate: SYSTEM.",
)
def policies(emulate: str | None) -> None:
    """List every balancing policy, its rule and its parameters."""
    if emulate is not None:
        _show_emulation(EMULATIONS[emulate])
        return
    for name, cls in POLICIES.items():
        params = cls.parameters()
        shown = ", ".join(f"{key}={value!r}" for key, value in params.items()) or "no parameters"
        click.echo(f"{name}\n    {cls.rule}\n    parameters: {shown}")


def _show_emulation(system: Emulation) -> None:
    click.echo(f"{system.system}\n\npolicies (a name the list leaves out is refused):")
    for name, target in system.policies.items():
        policy = make_policy(target)
        meaning = policy.label()
        click.echo(f"  {name}{'' if meaning == name else f' -> {meaning}'}\n      {policy.rule}")
    click.echo("\ndefaults (a key the scenario sets wins):")
    for key, value in system.balancer.items():
        click.echo(f"  balancer.{key}: {value}")
    for section, defaults in system.sections.items():
        for key, value in defaults.items():
            click.echo(f"  balancer.{section}.{key}: {value}  (when {section} is given)")
    if system.retry_every_server:
        click.echo("  balancer.retries.max: the number of servers - 1  (each other server once)")
    for key, value in (system.slow_start or {}).items():
        click.echo(f"  servers[*].slow_start.{key}: {value}  (when slow_start is given)")
    click.echo(f"\nretried by default: {system.retried}\n\nrefused (the system has no counterpart):")
    for key, reason in system.absent.items():
        click.echo(f"  balancer.{key}: {reason}")
    for key, reason in system.fixed.items():
        click.echo(f"  balancer.{key} other than {system.required(key)}: {reason}")
    if system.slow_start is None:
        click.echo("  servers[*].slow_start: slow start is NGINX Plus only")
    else:
        click.echo(f"  servers[*].slow_start.style other than {system.slow_start['style']}")
    click.echo("\nwhere lbsim's model is short of the system:")
    for note in system.notes:
        click.echo(f"  - {note}")
