"""Speed and memory of lbsim, as ratios against a bare SimPy model of the same system.

1. Whole process against whole process: ``lbsim run benchmarks/core.yaml`` (simulation,
   tables, plots, report) against ``python benchmarks/bare_simpy.py`` (simulation and two
   statistics), 200,000 requests each; the median of several runs.
2. Peak memory of ``lbsim run`` at 100,000, 1,000,000 and 10,000,000 requests, and at 10
   million with ``--keep-requests`` (exact records written as Parquet as the run goes).
3. Per-request cost of each policy with 10 and with 1,000 backends.
4. Per-request cost with 8 balancer instances over 10 and over 1,000 servers.
5. Engine time with health checks and outlier detection configured but nothing failing.
6. Per-request cost of one balancer over 10 servers before regions, zones and tiers existed
   (``--rev``, checked out in a temporary git worktree) and now, each as a ratio against the
   bare SimPy model timed in the same process, so the machine's drift cancels out.

Usage: python benchmarks/speed.py [--repeat N] [--rev REV]
                                  [--only speed|memory|policies|fleet|resilience|topology]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def speed(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        lbsim = [
            sys.executable,
            "-m",
            "lbsim",
            "run",
            str(HERE / "core.yaml"),
            "--jobs",
            "1",
            "--quiet",
            "--out",
            out,
        ]
        bare = [sys.executable, str(HERE / "bare_simpy.py"), "200000"]
        lbsim_times = [timed(lbsim) for _ in range(repeat)]
        bare_times = [timed(bare) for _ in range(repeat)]
    a, b = statistics.median(lbsim_times), statistics.median(bare_times)
    print("whole process, 200,000 requests, 10 servers, 90% load, random dispatch")
    print(f"  lbsim run (results folder with plots): {a:.2f} s")
    print(f"  bare SimPy model:                      {b:.2f} s")
    print(f"  ratio lbsim / bare:                    {a / b:.2f}  (target <= 1.5)")


def peak_memory(n_requests: int, *options: str) -> float:
    """Peak resident memory in MiB of ``lbsim run`` on about ``n_requests`` requests."""
    duration = n_requests / 900
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-c",
            "import resource, sys; from lbsim.cli import main; sys.argv = sys.argv[1:]\n"
            "try: main()\n"
            "except SystemExit: pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            "lbsim", "run", str(HERE / "core.yaml"), "--jobs", "1", "--quiet", "--out", out,
            "--set", f"duration={duration}s", *options,
        ]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return int(output.split()[-1]) / 1024


def memory() -> None:
    print("peak memory of lbsim run (MiB)")
    for n in (100_000, 1_000_000, 10_000_000):
        print(f"  {n:>10,} requests:                  {peak_memory(n):6.0f}")
    print(f"  {10_000_000:>10,} requests, --keep-requests: {peak_memory(10_000_000, '--keep-requests'):6.0f}")


def policy_cost(policy: str, n_servers: int, n_requests: int = 200_000, instances: int = 1) -> float:
    """Seconds of simulation per request for ``policy`` over ``n_servers`` identical servers."""
    import lbsim
    from lbsim import engine

    rate = 0.9 * n_servers * 100
    scenario = lbsim.load_scenario(
        {
            "name": "cost",
            "duration": n_requests / rate,
            "seed": 1,
            "window": n_requests / rate,
            "workload": {"rate": rate, "size": "exp(10ms)"},
            "servers": [{"name": "web", "count": n_servers}],
            "balancer": {"policy": policy, "cost": 0, "instances": instances},
        }
    )
    started = time.perf_counter()
    output = engine.run(scenario, 1, 0)
    return (time.perf_counter() - started) / output.n_arrived


def policies() -> None:
    import lbsim

    print("per-request cost of the engine (microseconds), 200,000 requests at 90% load")
    print(f"  {'policy':28s} {'10 backends':>12s} {'1000 backends':>14s} {'ratio':>6s}")
    for name in lbsim.POLICIES:
        small, large = policy_cost(name, 10), policy_cost(name, 1000)
        print(f"  {name:28s} {small * 1e6:12.2f} {large * 1e6:14.2f} {large / small:6.2f}")


def fleet() -> None:
    """Per-request cost with 8 balancer instances: 10 servers against 1,000."""
    print("per-request cost of the engine (microseconds), 8 balancer instances, 200,000 requests at 90% load")
    print(f"  {'policy':20s} {'10 servers':>11s} {'1000 servers':>13s} {'ratio':>6s}")
    for name in ("least_connections", "p2c", "maglev"):
        small, large = policy_cost(name, 10, instances=8), policy_cost(name, 1000, instances=8)
        print(f"  {name:20s} {small * 1e6:11.2f} {large * 1e6:13.2f} {large / small:6.2f}  (target <= 2)")


def resilience(repeat: int) -> None:
    """Engine time with health checks and outlier detection configured but nothing failing."""
    import lbsim
    from lbsim import engine

    plain = lbsim.load_scenario(HERE / "core.yaml")
    guarded = lbsim.load_scenario(
        plain,
        overrides=[
            ("balancer.health_check", {"interval": "2s", "timeout": "1s", "rise": 2, "fall": 3}),
            ("balancer.outlier_detection", {"consecutive_errors": 5}),
        ],
    )

    def seconds(scenario: lbsim.Scenario) -> float:
        started = time.perf_counter()
        engine.run(scenario, 1, 0)
        return time.perf_counter() - started

    a = statistics.median(seconds(plain) for _ in range(repeat))
    b = statistics.median(seconds(guarded) for _ in range(repeat))
    print("engine time, 200,000 requests, nothing failing")
    print(f"  without health checks:                       {a:.2f} s")
    print(f"  with health checks and outlier detection:    {b:.2f} s")
    print(f"  slowdown: {b / a - 1:+.1%}  (target <= +20%)")


# The commit before regions, zones and tiers (issue 8) were added.
BEFORE_TOPOLOGIES = "3a9785b"


def engine_against_bare(policy: str) -> None:
    """Print the per-request engine time of ``policy`` over 10 servers, the bare SimPy
    model's, and their ratio, timed in this process (child of ``topology``)."""
    import contextlib
    import io

    import bare_simpy

    engine = policy_cost(policy, 10)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        bare_simpy.main(200_000)
    bare = (time.perf_counter() - started) / 200_000
    print(engine, bare, engine / bare)


def topology(repeat: int, rev: str) -> None:
    """Per-request cost before topologies existed (``rev``) and now, in interleaved child
    processes, each against the bare model it timed."""
    root = HERE.parent
    print(f"per-request cost of one layer-7 balancer over 10 servers, {rev} against the working tree")
    print(f"  (engine time / bare SimPy time in the same process; {repeat} interleaved runs each)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", tmp, rev],
                       check=True, capture_output=True)  # fmt: skip
        try:
            for policy in ("round_robin", "least_connections"):
                runs: dict[str, list[list[float]]] = {"before": [], "now": []}
                for _ in range(repeat):
                    for name, path in (("before", tmp), ("now", str(root))):
                        command = [sys.executable, str(HERE / "speed.py"), "--engine-against-bare", policy]
                        env = {**os.environ, "PYTHONPATH": path}
                        out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
                        runs[name].append([float(x) for x in out.stdout.split()])
                ratio = {name: statistics.median(r[2] for r in rows) for name, rows in runs.items()}
                engine = {name: statistics.median(r[0] for r in rows) * 1e6 for name, rows in runs.items()}
                print(f"  {policy:18s} before {engine['before']:.1f} us ({ratio['before']:.3f} x bare), "
                      f"now {engine['now']:.1f} us ({ratio['now']:.3f} x bare): "
                      f"{ratio['now'] / ratio['before'] - 1:+.1%}")  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", tmp], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["speed", "memory", "policies", "fleet", "resilience", "topology"])
    parser.add_argument("--rev", default=BEFORE_TOPOLOGIES, help="the revision topology compares against")
    parser.add_argument("--engine-against-bare", metavar="POLICY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_against_bare:
        engine_against_bare(args.engine_against_bare)
        return
    if args.only in (None, "speed"):
        speed(args.repeat)
    if args.only in (None, "memory"):
        memory()
    if args.only in (None, "policies"):
        policies()
    if args.only in (None, "fleet"):
        fleet()
    if args.only in (None, "resilience"):
        resilience(args.repeat)
    if args.only in (None, "topology"):
        topology(args.repeat, args.rev)


if __name__ == "__main__":
    main()
