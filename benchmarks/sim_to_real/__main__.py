"""``python -m benchmarks.sim_to_real``: the sim-to-real check (see harness.py)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from benchmarks.sim_to_real.harness import CASES, FLEETS, available, run, table, versions


@click.command()
@click.option("--seconds", default=40.0, show_default=True, help="Length of each trace.")
@click.option("--repeats", default=3, show_default=True, help="Real runs of each case, each its own trace.")
@click.option("--fleet", "fleets", multiple=True, type=click.Choice(list(FLEETS)), help="Default: both.")
@click.option(
    "--balancer", "systems", multiple=True, type=click.Choice(["haproxy", "nginx"]), help="Default: both."
)
@click.option("--smoke", is_flag=True, help="About 20 s: round robin on both, 4 equal servers, 6 s, once.")
@click.option("--out", default="results/sim_to_real", show_default=True, type=click.Path(path_type=Path))
def main(
    seconds: float, repeats: int, fleets: tuple[str, ...], systems: tuple[str, ...], smoke: bool, out: Path
) -> None:
    """Replay one trace through real HAProxy and NGINX and through lbsim; write runs.csv and
    table.md into OUT."""
    # SIGTERM ends the run as Ctrl-C does: the balancers and backends are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cases = [c for c in CASES if not systems or c.system in systems]
    if smoke:
        cases = [c for c in cases if c.policy == "round_robin"]
        seconds, repeats, fleets = 6.0, 1, ("homogeneous",)
    cases = available(cases, echo=lambda line: click.echo(line, err=True))
    if not cases:
        click.echo("nothing to run: install HAProxy or NGINX (apt-get install haproxy nginx-light)", err=True)
        return
    started = time.monotonic()
    try:
        runs = run(seconds, repeats, fleets or tuple(FLEETS), cases, echo=click.echo)
    except RuntimeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    took = time.monotonic() - started
    text = f"{versions(cases)}; traces of {seconds:g} s, {repeats} repeat(s); {took:.0f} s\n\n" + table(runs)
    (out / "table.md").write_text(text)
    click.echo(text)


if __name__ == "__main__":
    main()
