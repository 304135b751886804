"""``python -m benchmarks.sim_to_real``: the sim-to-real check (see harness.py)."""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import pandas as pd
from click.core import ParameterSource

from benchmarks.sim_to_real.harness import CASES, FEW, FLEETS, Case, available, run, table, versions
from lbsim.atomic import write_atomic, write_text_atomic
from lbsim.cli import OneLineUsage

# Where a run writes unless --out says: in results/, but not the committed reference run
# (results/sim_to_real/), which only an --out naming it writes.
OUT = Path("results/sim_to_real-run")
INSTALL = "apt-get install haproxy nginx-light"
SMOKE_OUT = Path("results/sim_to_real-smoke")


def _seconds(context: click.Context, parameter: click.Parameter, value: float) -> float:
    if not 1 <= value <= 3600:  # also refuses nan
        raise click.BadParameter(f"must be from 1 to 3600 seconds; got {value:g}.")
    return value


def _out(context: click.Context, parameter: click.Parameter, value: str | None) -> Path | None:
    # Path("") is the current folder: an empty --out is a slip, not a choice of it.
    if value == "":
        raise click.BadParameter("must name a folder; got ''.")
    return None if value is None else Path(value)


@click.command(cls=OneLineUsage, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seconds", default=40.0, show_default=True, callback=_seconds, help="Length of each trace.")
@click.option(
    "--repeats",
    default=3,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Runs of each case, each its own trace.",
)
@click.option("--fleet", "fleets", multiple=True, type=click.Choice(list(FLEETS)), help="Default: both.")
@click.option(
    "--balancer", "systems", multiple=True, type=click.Choice(["haproxy", "nginx"]), help="Default: both."
)
@click.option(
    "--smoke",
    is_flag=True,
    help="About 20 s (round robin on both, 4 equal servers, 6 s, once): a check that it runs; "
    "not with --seconds, --repeats or --fleet.",
)
@click.option(
    "--out",
    callback=_out,
    help=f"Default: {OUT} ({SMOKE_OUT} with --smoke). A folder that holds an earlier run's "
    "runs.csv is refused.",
)
def main(
    seconds: float,
    repeats: int,
    fleets: tuple[str, ...],
    systems: tuple[str, ...],
    smoke: bool,
    out: Path | None,
) -> None:
    """Replay one trace through real HAProxy and NGINX and through lbsim; write runs.csv (as
    each run ends) and table.md into OUT. Exit 1 when nothing could run or a run failed,
    130 when interrupted (Ctrl-C or SIGTERM), with table.md of the runs that ended. A folder
    it made is removed again when no run ended."""
    # SIGTERM ends the run as Ctrl-C does: the balancers and backends are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    context = click.get_current_context()
    given = [
        option
        for option, name in (("--seconds", "seconds"), ("--repeats", "repeats"), ("--fleet", "fleets"))
        if context.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if smoke and given:
        raise click.UsageError(
            f"--smoke runs its own trace (6 s, once, 4 equal servers); drop {', '.join(given)}."
        )
    out = out or (SMOKE_OUT if smoke else OUT)
    if (out / "runs.csv").exists():
        raise click.UsageError(
            f"--out {str(out)[:100]!r} holds runs.csv of an earlier run; give another --out, "
            "or remove it to measure again."
        )
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # A file in it, as runs.csv will be written, before any run.
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        if made and out.is_dir():
            out.rmdir()
        raise click.UsageError(
            f"--out must be a folder it can write; got {str(out)[:100]!r} ({exc.strerror})."
        ) from None
    cases = [c for c in CASES if not systems or c.system in systems]
    if smoke:
        cases = [c for c in cases if c.policy == "round_robin"]
        seconds, repeats, fleets = 6.0, 1, ("homogeneous",)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    try:
        cases = available(cases, echo=lambda line: click.echo(line, err=True))
        if not cases:
            click.echo(f"nothing ran: install HAProxy or NGINX ({INSTALL})", err=True)
            sys.exit(1)
        fleets = tuple(dict.fromkeys(fleets)) or tuple(FLEETS)  # a fleet named twice runs once
        for row in run(seconds, repeats, fleets, cases, echo=click.echo):
            rows.append(row)
            write_atomic(out / "runs.csv", lambda path: pd.DataFrame(rows).to_csv(path, index=False))
    except KeyboardInterrupt:
        # A second Ctrl-C while the table is written is ignored.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if rows:
            _write_table(out, rows, f"interrupted after {len(rows)} run(s)", cases, seconds, started)
        click.echo("interrupted.", err=True)
        sys.exit(130)
    except RuntimeError as exc:
        if rows:
            _write_table(out, rows, f"stopped by an error after {len(rows)} run(s)", cases, seconds, started)
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        if made and not rows:
            out.rmdir()
    click.echo(_write_table(out, rows, f"{repeats} repeat(s)", cases, seconds, started))
    click.echo(f"written: {out / 'runs.csv'}, {out / 'table.md'}", err=True)


def _write_table(
    out: Path, rows: list[dict[str, Any]], how: str, cases: list[Case], seconds: float, started: float
) -> str:
    """Write OUT/table.md of ``rows`` under a heading of the balancers, traces and time; return it."""
    heading = f"{versions(cases)}; traces of {seconds:g} s, {how}; {time.monotonic() - started:.0f} s\n\n"
    if min(row["requests"] for row in rows) < FEW:
        heading += f"Traces of under {FEW:,} requests: these verdicts need thousands to mean much.\n\n"
    text = heading + table(pd.DataFrame(rows))
    write_text_atomic(out / "table.md", text)
    return text


if __name__ == "__main__":
    main()
