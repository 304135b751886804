"""``python -m benchmarks.sim_to_real``: the sim-to-real check (see harness.py)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
import pandas as pd

from benchmarks.sim_to_real.harness import CASES, FLEETS, available, run, table, versions
from lbsim.atomic import write_atomic, write_text_atomic


def _seconds(context: click.Context, parameter: click.Parameter, value: float) -> float:
    if not 1 <= value <= 3600:  # also refuses nan
        raise click.BadParameter(f"must be from 1 to 3600 seconds; got {value:g}.")
    return value


@click.command()
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
    help="About 20 s (round robin on both, 4 equal servers, 6 s, once): a check that it runs.",
)
@click.option("--out", default="results/sim_to_real", show_default=True, type=click.Path(path_type=Path))
def main(
    seconds: float, repeats: int, fleets: tuple[str, ...], systems: tuple[str, ...], smoke: bool, out: Path
) -> None:
    """Replay one trace through real HAProxy and NGINX and through lbsim; write runs.csv (as
    each run ends) and table.md into OUT. Exit 1 when nothing could run or a run failed."""
    # SIGTERM ends the run as Ctrl-C does: the balancers and backends are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        click.echo(
            f"error: --out must be a folder it can write; got {str(out)[:200]!r} ({exc.strerror}).", err=True
        )
        sys.exit(2)
    cases = [c for c in CASES if not systems or c.system in systems]
    if smoke:
        cases = [c for c in cases if c.policy == "round_robin"]
        seconds, repeats, fleets = 6.0, 1, ("homogeneous",)
    cases = available(cases, echo=lambda line: click.echo(line, err=True))
    if not cases:
        click.echo("nothing ran: install HAProxy or NGINX (apt-get install haproxy nginx-light)", err=True)
        sys.exit(1)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    try:
        for row in run(seconds, repeats, fleets or tuple(FLEETS), cases, echo=click.echo):
            rows.append(row)
            write_atomic(out / "runs.csv", lambda path: pd.DataFrame(rows).to_csv(path, index=False))
    except RuntimeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    took = time.monotonic() - started
    heading = f"{versions(cases)}; traces of {seconds:g} s, {repeats} repeat(s); {took:.0f} s\n\n"
    text = heading + table(pd.DataFrame(rows))
    write_text_atomic(out / "table.md", text)
    click.echo(text)


if __name__ == "__main__":
    main()
