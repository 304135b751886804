"""Speed and memory of lbsim: against a bare SimPy model of the same system, and against an
older revision (``--rev``, checked out in a temporary git worktree) run in the same session.

speed, simulate and startup alternate their two sides (A B A B ...) in fresh processes and
report the medians and the median of the per-pair ratios, so the machine's drift cancels out.

1. speed, whole process (Python start, import, simulation, tables, plots, report):
   ``lbsim run benchmarks/core.yaml``, each run into a fresh folder so none is a cache hit,
   against ``python benchmarks/bare_simpy.py`` (simulation and two statistics), 200,000
   requests each.
2. simulate, simulation only: the time of the ``lbsim.simulate`` call (engine and summary
   tables; the scenario is loaded and a 1,000-request warm-up call made before the timer, so
   imports and first-use costs are outside it) on the two reference models of issue 14,
   10 servers, Poisson at 90% load, exp(10ms) sizes, 200,000 requests: random dispatch with
   balancer cost 0, and least connections with the default cost; ``--rev`` against the
   working tree, in requests/s, and function calls per request as cProfile counts them.
   ``simulate`` is called with ``keep_requests=False`` in trees where it has that argument.
3. startup, whole process: ``python -m lbsim --help`` and ``python -m lbsim policies``,
   ``--rev`` against the working tree.
4. memory, peak resident memory of a fresh process: ``lbsim run`` at 100,000, 1,000,000 and
   10,000,000 requests, and at 10 million with ``--keep-requests`` (exact records written as
   Parquet as the run goes); ``lbsim.simulate`` at 2,000,000 requests (random, cost 0,
   ``keep_requests=False`` where it exists), ``--rev`` against the working tree.
5. policies, simulation only: per-request engine time of each policy with 10 and 1,000 backends.
6. fleet, simulation only: per-request engine time with 8 balancer instances over 10 and over
   1,000 servers.
7. resilience, simulation only: engine time with health checks and outlier detection
   configured but nothing failing.
8. topology, simulation only: per-request engine time of one balancer over 10 servers before
   regions, zones and tiers existed (``--rev``) and now, each as a ratio against the bare
   SimPy model timed in the same process.
9. instructions, simulation only, deterministic: instructions executed per request of the two
   reference models (callgrind; a 100,000-request ``simulate`` call less a 20,000-request one,
   so start-up and fixed costs cancel out), ``--rev`` against the working tree. Needs
   valgrind; with a fixed hash seed and one BLAS thread the count repeats to within 0.1%,
   where wall time moves by tens of percent on a shared machine.

Usage: python benchmarks/speed.py [--repeat N] [--rev REV]
           [--only speed|simulate|startup|memory|policies|fleet|resilience|topology|instructions]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).parent
ROOT = HERE.parent

# The commit before regions, zones and tiers (issue 8) were added.
BEFORE_TOPOLOGIES = "3a9785b"
# The commit before the request pipeline (issue 14): the default --rev of simulate, startup, memory.
BEFORE_PIPELINE = "125df7d"

# The reference models of issue 14, as balancer sections.
REFERENCE_MODELS = {
    "random, cost 0": {"policy": "random", "cost": 0},
    "least_connections, default cost": {"policy": "least_connections"},
}

T = TypeVar("T")


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A temporary git worktree of ``rev``, removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", tmp, rev],
                       check=True, capture_output=True)  # fmt: skip
        try:
            yield Path(tmp)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tmp], check=True)


def python(*args: str, tree: Path = ROOT, under: tuple[str, ...] = (), **env: str) -> str:
    """Run ``python *args`` (under a tool such as valgrind, with ``env`` added) in a fresh
    process that imports lbsim from ``tree``; return its output and, with a tool, its log."""
    # The working directory matters too: ``python -m`` puts it first on the path.
    environment = {**os.environ, "PYTHONPATH": str(tree), **env}
    command = [*under, sys.executable, *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=environment, cwd=tree)
    return done.stdout + done.stderr if under else done.stdout


def timed(*args: str, tree: Path = ROOT) -> float:
    """Wall time in seconds of ``python(*args, tree=tree)``."""
    started = time.perf_counter()
    python(*args, tree=tree)
    return time.perf_counter() - started


def interleaved(repeat: int, a: Callable[[], T], b: Callable[[], T]) -> tuple[list[T], list[T]]:
    """``repeat`` results of ``a`` and of ``b``, run in turn (A B A B ...)."""
    pairs = [(a(), b()) for _ in range(repeat)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def pair_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the per-pair ratios."""
    return statistics.median(x / y for x, y in zip(numerators, denominators, strict=True))


def speed(repeat: int) -> None:
    def lbsim_run() -> float:
        with tempfile.TemporaryDirectory() as out:
            command = ["-m", "lbsim", "run", str(HERE / "core.yaml"), "--jobs", "1", "--quiet", "--out", out]
            return timed(*command)

    a, b = interleaved(repeat, lbsim_run, partial(timed, str(HERE / "bare_simpy.py"), "200000"))
    print("whole process (Python start, import, simulation, tables, plots, report), 200,000 requests,")
    print(
        f"10 servers, 90% load, random dispatch; {repeat} interleaved pairs, each lbsim run in a new folder"
    )
    print(f"  lbsim run (results folder with plots): {statistics.median(a):.2f} s")
    print(f"  bare SimPy model:                      {statistics.median(b):.2f} s")
    print(f"  ratio lbsim / bare (median of pairs):  {pair_ratio(a, b):.2f}  (target <= 1.5)")


def model(n_requests: int, n_servers: int = 10, **balancer: Any) -> Any:
    """A scenario of ``n_servers`` identical servers, Poisson arrivals at 90% load, exp(10ms)
    sizes, about ``n_requests`` requests, one window; ``balancer`` is its balancer section."""
    import lbsim

    rate = 0.9 * n_servers * 100
    return lbsim.load_scenario(
        {
            "name": "benchmark",
            "duration": n_requests / rate,
            "seed": 1,
            "window": n_requests / rate,
            "workload": {"rate": rate, "size": "exp(10ms)"},
            "servers": [{"name": "web", "count": n_servers}],
            "balancer": balancer,
        }
    )


def simulate_child(name: str, n_requests: int, profile: bool) -> None:
    """Print, as JSON, one ``lbsim.simulate`` run of a reference model in this process: its
    time, requests arrived, peak memory, whether it kept no requests, and (with ``profile``)
    the function calls cProfile counted."""
    import cProfile
    import inspect
    import pstats
    import resource

    import lbsim

    scenario = model(n_requests, **REFERENCE_MODELS[name])
    # Older trees have no keep_requests argument: they always keep every request.
    options = (
        {"keep_requests": False} if "keep_requests" in inspect.signature(lbsim.simulate).parameters else {}
    )
    # A warm-up call first, so that neither tree's timer counts imports or first-use costs
    # (lbsim imports pandas on first use where older trees imported it with lbsim).
    lbsim.simulate(model(1_000, **REFERENCE_MODELS[name]), **options)
    profiler = cProfile.Profile()
    run = partial(profiler.runcall, lbsim.simulate) if profile else lbsim.simulate
    started = time.perf_counter()
    result = run(scenario, **options)
    seconds = time.perf_counter() - started
    record = {
        "seconds": seconds,
        "n_requests": int(result.summary["n_requests"].iloc[0]),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "keep_requests": "keep_requests=False" if options else "no keep_requests argument",
        "calls": pstats.Stats(profiler).total_calls if profile else None,
    }
    print(json.dumps(record))


def simulate_in(tree: Path, name: str, n_requests: int, profile: bool = False) -> dict[str, Any]:
    """One ``lbsim.simulate`` run of a reference model in a fresh process against ``tree``."""
    args = ["--simulate", name, str(n_requests)] + (["--profile"] if profile else [])
    return json.loads(python(str(HERE / "speed.py"), *args, tree=tree))


def simulate(repeat: int, rev: str) -> None:
    n = 200_000
    print("lbsim.simulate, simulation only (the call alone: engine and summary tables; no import,")
    print("no loading, no files, after a warm-up call); 10 servers, 900/s (90% load), exp(10ms),")
    print(f"{n:,} requests, seed 1; {rev} against the working tree, {repeat} pairs, fresh processes")
    print("  calls: function calls per request arrived, as cProfile counts them (Python and built-in)")
    print(f"  {'model':32s} {'':12s} {'req/s':>8s} {'calls':>6s}")
    with worktree(rev) as old:
        for name in REFERENCE_MODELS:
            runs = interleaved(
                repeat, partial(simulate_in, old, name, n), partial(simulate_in, ROOT, name, n)
            )
            rates = [[r["n_requests"] / r["seconds"] for r in rows] for rows in runs]
            for label, tree, rows, rate in zip((rev, "working tree"), (old, ROOT), runs, rates, strict=True):
                profiled = simulate_in(tree, name, n, profile=True)
                calls = profiled["calls"] / profiled["n_requests"]
                print(f"  {name:32s} {label:12s} {statistics.median(rate):8,.0f} {calls:6.1f}"
                      f"  (simulate with {rows[0]['keep_requests']})")  # fmt: skip
            print(f"  {name:32s} {'new / old':12s} {pair_ratio(rates[1], rates[0]):8.2f}  (target >= 2)")


def startup(repeat: int, rev: str) -> None:
    print(f"start-up, whole process, {rev} against the working tree, {repeat} interleaved pairs")
    with worktree(rev) as old:
        for command in (["--help"], ["policies"]):
            before, now = interleaved(
                repeat,
                partial(timed, "-m", "lbsim", *command, tree=old),
                partial(timed, "-m", "lbsim", *command, tree=ROOT),
            )
            label = " ".join(["python -m lbsim", *command])
            print(
                f"  {label:24s} {rev} {statistics.median(before):.2f} s, now {statistics.median(now):.2f} s, "
                f"now/old {pair_ratio(now, before):.2f}  (target < 0.5 s)"
            )


def peak_memory(n_requests: int, *options: str) -> float:
    """Peak resident memory in MiB of ``lbsim run`` on about ``n_requests`` requests."""
    duration = n_requests / 900
    with tempfile.TemporaryDirectory() as out:
        output = python(
            "-c",
            "import resource, sys; from lbsim.cli import main; sys.argv = sys.argv[1:]\n"
            "try: main()\n"
            "except SystemExit: pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            "lbsim", "run", str(HERE / "core.yaml"), "--jobs", "1", "--quiet", "--out", out,
            "--set", f"duration={duration}s", *options,
        )  # fmt: skip
    return int(output.split()[-1]) / 1024


def memory(rev: str) -> None:
    print("peak memory of lbsim run (MiB)")
    for n in (100_000, 1_000_000, 10_000_000):
        print(f"  {n:>10,} requests:                  {peak_memory(n):6.0f}")
    print(f"  {10_000_000:>10,} requests, --keep-requests: {peak_memory(10_000_000, '--keep-requests'):6.0f}")
    n = 2_000_000
    print(f"peak memory of a process running lbsim.simulate, {n:,} requests, random, cost 0 (MiB)")
    with worktree(rev) as old:
        for label, tree in ((rev, old), ("working tree", ROOT)):
            run = simulate_in(tree, "random, cost 0", n)
            print(f"  {label:12s} {run['peak_mib']:6.0f}  (simulate with {run['keep_requests']})")


def policy_cost(policy: str, n_servers: int, n_requests: int = 200_000, instances: int = 1) -> float:
    """Seconds of simulation per request for ``policy`` over ``n_servers`` identical servers."""
    from lbsim import engine

    scenario = model(n_requests, n_servers, policy=policy, cost=0, instances=instances)
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


def engine_against_bare(policy: str) -> None:
    """Print the per-request engine time of ``policy`` over 10 servers, the bare SimPy
    model's, and their ratio, timed in this process (child of ``topology``)."""
    import io

    import bare_simpy

    engine = policy_cost(policy, 10)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        bare_simpy.main(200_000)
    bare = (time.perf_counter() - started) / 200_000
    print(engine, bare, engine / bare)


def engine_against_bare_in(tree: Path, policy: str) -> list[float]:
    """``engine_against_bare`` in a fresh process against ``tree``."""
    return [
        float(x) for x in python(str(HERE / "speed.py"), "--engine-against-bare", policy, tree=tree).split()
    ]


def topology(repeat: int, rev: str) -> None:
    """Per-request cost before topologies existed (``rev``) and now, in interleaved child
    processes, each against the bare model it timed."""
    print(f"per-request cost of one layer-7 balancer over 10 servers, {rev} against the working tree")
    print(f"  (engine time / bare SimPy time in the same process; {repeat} interleaved runs each)")
    with worktree(rev) as old:
        for policy in ("round_robin", "least_connections"):
            runs = interleaved(
                repeat,
                partial(engine_against_bare_in, old, policy),
                partial(engine_against_bare_in, ROOT, policy),
            )
            engine, ratio = ([statistics.median(r[i] for r in rows) for rows in runs] for i in (0, 2))
            print(
                f"  {policy:18s} before {engine[0] * 1e6:.1f} us ({ratio[0]:.3f} x bare), "
                f"now {engine[1] * 1e6:.1f} us ({ratio[1]:.3f} x bare): {ratio[1] / ratio[0] - 1:+.1%}"
            )


def instructions_in(tree: Path, name: str, n_requests: int) -> int:
    """Instructions callgrind counts in a fresh process that makes one ``simulate`` call of a
    reference model (after the warm-up call) against ``tree``."""
    callgrind = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
    log = python(
        str(HERE / "speed.py"), "--simulate", name, str(n_requests),
        tree=tree, under=callgrind, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1",
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", log)
    assert found is not None, "callgrind printed no instruction count"
    return int(found.group(1))


def instructions(rev: str) -> None:
    if shutil.which("valgrind") is None:
        print("instructions: skipped, valgrind is not installed (apt-get install valgrind)")
        return
    small, large = 20_000, 100_000
    print(f"instructions per request (callgrind, a {large:,}-request simulate call less a {small:,}-request")
    print(f"one, PYTHONHASHSEED=0, one BLAS thread), {rev} against the working tree")
    with worktree(rev) as old:
        for name in REFERENCE_MODELS:
            counts = [
                (instructions_in(tree, name, large) - instructions_in(tree, name, small)) / (large - small)
                for tree in (old, ROOT)
            ]
            change = counts[1] / counts[0] - 1
            print(f"  {name:32s} {rev} {counts[0]:9,.0f}, now {counts[1]:9,.0f} ({change:+.0%})")


SECTIONS = [
    "speed", "simulate", "startup", "memory", "policies", "fleet", "resilience", "topology", "instructions",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeat", type=int, default=5,
        help="pairs (or runs) per figure of speed, simulate, startup, resilience, topology (default 5)",
    )  # fmt: skip
    parser.add_argument("--only", choices=SECTIONS)
    parser.add_argument(
        "--rev",
        help=f"the revision to compare against (default {BEFORE_TOPOLOGIES} for topology, "
        f"{BEFORE_PIPELINE} for simulate, startup, memory and instructions)",
    )
    parser.add_argument("--engine-against-bare", metavar="POLICY", help=argparse.SUPPRESS)
    parser.add_argument("--simulate", nargs=2, metavar=("MODEL", "N_REQUESTS"), help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_against_bare:
        engine_against_bare(args.engine_against_bare)
        return
    if args.simulate:
        simulate_child(args.simulate[0], int(args.simulate[1]), args.profile)
        return
    sections = [args.only] if args.only else SECTIONS
    if "speed" in sections:
        speed(args.repeat)
    if "simulate" in sections:
        simulate(args.repeat, args.rev or BEFORE_PIPELINE)
    if "startup" in sections:
        startup(args.repeat, args.rev or BEFORE_PIPELINE)
    if "memory" in sections:
        memory(args.rev or BEFORE_PIPELINE)
    if "policies" in sections:
        policies()
    if "fleet" in sections:
        fleet()
    if "resilience" in sections:
        resilience(args.repeat)
    if "topology" in sections:
        topology(args.repeat, args.rev or BEFORE_TOPOLOGIES)
    if "instructions" in sections:
        instructions(args.rev or BEFORE_PIPELINE)


if __name__ == "__main__":
    main()
