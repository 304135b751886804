"""The sim-to-real check: the same trace through real HAProxy or NGINX and through lbsim.

For each fleet and repeat, a Poisson trace of exponential sizes (mean 50 ms of work at
speed 1) at 70% of the fleet's capacity is drawn. For each case (a balancer and its
algorithm), with the backends of ``backends.py`` (one worker and a FCFS queue each, all
served by one process on loopback):

1. the case's scenario (``balancer.emulate`` set to the system) is exported with
   ``lbsim export``, and the real balancer runs that config, started and stopped by PID;
2. the trace is replayed open-loop through the balancer (``replay.py``), from the
   balancer's start, so its rotation begins where lbsim's does;
3. then 100 requests of size 0, 20 ms apart, measure the overhead: what a request costs
   with no service (HTTP on loopback, the balancer, the hand-over to a backend's worker);
4. lbsim replays the same trace with the same scenario (*raw*; 40 seeds for random
   policies), and again *calibrated*: each request's size is the service its backend
   actually delivered times that backend's speed, the balancer's cost is 0, and
   ``network.local`` (the client-balancer round trip) is the measured overhead.

Each run is compared on the latency mean, p50, p90 and p99 of the same requests; the
backends' oversleep (delivered service over requested, less 1) above 2% marks a run
noisy. Writes ``runs.csv`` (every run) and ``table.md`` (each case over its repeats).
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import lbsim
from benchmarks.sim_to_real.balancers import check_free, command, missing, running, version
from benchmarks.sim_to_real.replay import Reply, replay

# Mean work per request: 50 ms keeps loopback's 1.5-2.5 ms per request here (the balancer's
# connection to a backend, Python's event loops, wake-ups) a small part of the latency, as
# a real service's would be.
MEAN_SIZE = 0.050
LOAD = 0.7
LISTEN = 18480
METRICS = ("mean", "p50", "p90", "p99")
# The targets for deterministic policies: |sim / real - 1| at most this, per metric.
RAW_TARGET = {"mean": 0.05, "p50": 0.05, "p90": 0.05, "p99": 0.10}
CALIBRATED_TARGET = {"mean": 0.03, "p50": 0.03, "p90": 0.03, "p99": 0.10}
# Oversleep above this marks a run noisy: the machine, not the model, made the gap.
NOISY = 0.02
# Seeds lbsim runs a random policy with, for the spread it is compared against: one more
# run of the same model falls outside the range of 40 with probability 2/41, about 5%.
SEEDS = tuple(range(1, 41))
OVERHEAD_REQUESTS, OVERHEAD_GAP = 100, 0.020
# Traces shorter than this many requests get a line saying their verdicts are noise.
FEW = 1000
# The pause between the trace's last request and the overhead's first (the queues drain).
OVERHEAD_PAUSE = 1.0

# Fleets: server groups as a scenario gives them.
FLEETS: dict[str, list[dict[str, Any]]] = {
    "homogeneous": [{"name": "s", "count": 4}],
    "heterogeneous": [
        {"name": "fast", "count": 3, "speed": 1.0, "weight": 2},
        {"name": "half", "count": 1, "speed": 0.5, "weight": 1},
    ],
}


@dataclass(frozen=True)
class Case:
    """A balancer and one of its algorithms: ``algorithm`` as the system names it, ``policy``
    as the scenario names it under ``emulate``; ``random`` policies are compared with
    lbsim's spread over seeds."""

    system: str
    algorithm: str
    policy: str
    random: bool = False


CASES = (
    Case("haproxy", "roundrobin", "round_robin"),
    Case("haproxy", "leastconn", "least_connections"),
    Case("haproxy", "random", "random", random=True),
    Case("nginx", "round robin", "round_robin"),
    Case("nginx", "least_conn", "least_connections"),
    Case("nginx", "random", "random", random=True),
    Case("nginx", "random two least_conn", "random_two", random=True),
)


def servers_of(fleet: str) -> list[tuple[str, float]]:
    """Each server of ``fleet`` in the scenario's order: (name as lbsim names it, speed)."""
    return [
        (f"{group['name']}-{i}", float(group.get("speed", 1.0)))
        for group in FLEETS[fleet]
        for i in range(group["count"])
    ]


def rate_of(fleet: str) -> float:
    """Requests per second that keep ``fleet`` at LOAD."""
    return LOAD * sum(speed for _, speed in servers_of(fleet)) / MEAN_SIZE


def draw_trace(rate: float, seconds: float, seed: int) -> list[tuple[float, float]]:
    """Poisson arrivals at ``rate`` for ``seconds``, exponential sizes of mean MEAN_SIZE."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1 / rate, int(rate * seconds * 1.2) + 10))
    times = times[times < seconds]
    sizes = rng.exponential(MEAN_SIZE, times.size)
    return list(zip(times.round(6).tolist(), sizes.round(6).tolist(), strict=True))


def write_trace(path: Path, trace: Sequence[tuple[float, float]]) -> Path:
    path.write_text("t_arrival,size\n" + "".join(f"{t!r},{s!r}\n" for t, s in trace))
    return path


def scenario(fleet: str, case: Case, trace: Path, end: float, **balancer: Any) -> dict[str, Any]:
    """The case's scenario replaying ``trace`` (a CSV) until every request ends."""
    return {
        "name": f"sim-to-real-{fleet}-{case.system}-{case.policy}",
        "duration": end + 30.0,
        "warmup": 0,
        "workload": {"arrivals": {"kind": "trace", "file": str(trace)}, "size": f"exp({MEAN_SIZE}s)"},
        "servers": FLEETS[fleet],
        "balancer": {"emulate": case.system, "policy": case.policy, **balancer},
    }


def export(path: Path, system: str, ports: Sequence[int], out: Path) -> list[str]:
    """``lbsim export`` the scenario at ``path`` to ``out``, as a user would; return what it
    could not express (its notes on standard error)."""
    backends = ",".join(f"127.0.0.1:{port}" for port in ports)
    arguments = ["export", str(path), "--to", system, "--backends", backends]
    arguments += ["--listen", f"127.0.0.1:{LISTEN}", "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "lbsim", *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lbsim export failed: {done.stderr.strip()}")
    return [line.removeprefix("not expressed: ") for line in done.stderr.splitlines()]


def statistics(latencies: np.ndarray) -> dict[str, float]:
    """Mean and percentiles (linear interpolation) of ``latencies``, in seconds."""
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    return {"mean": float(latencies.mean()), "p50": p50, "p90": p90, "p99": p99}


def simulated(spec: dict[str, Any], seed: int) -> np.ndarray:
    """lbsim's latency of each request of the scenario's trace, in trace order."""
    requests = lbsim.simulate(spec, seed=seed).requests
    assert requests is not None
    ended = requests[requests["status"] == "ok"].sort_values("t_arrival", kind="stable")
    if len(ended) != len(requests):
        raise RuntimeError(f"lbsim: {len(requests) - len(ended)} requests of the trace failed")
    return ended["latency"].to_numpy()


def calibrated_trace(
    trace: Sequence[tuple[float, float]], replies: Sequence[Reply], speeds: dict[str, float]
) -> list[tuple[float, float]]:
    """The trace with each size the work its backend delivered: service x speed."""
    return [(t, reply.service * speeds[reply.server]) for (t, _), reply in zip(trace, replies, strict=True)]


def failures(replies: Sequence[Reply]) -> str | None:
    """How many of ``replies`` failed and how (``3 of 10 requests failed (2 with no answer,
    1 answered 502)``), or None when every one was a 200."""
    failed = Counter(r.status for r in replies if r.status != 200)
    if not failed:
        return None
    how = ", ".join(
        f"{n} {'with no answer' if status == 0 else f'answered {status}'}" for status, n in failed.items()
    )
    return f"{failed.total()} of {len(replies)} requests failed ({how})"


def run_case(
    fleet: str, case: Case, trace: list[tuple[float, float]], ports: Sequence[int], folder: Path
) -> dict[str, Any]:
    """One real run of ``case`` over ``trace`` and its lbsim replays; one row of runs.csv."""
    speeds = dict(servers_of(fleet))
    trace_path = write_trace(folder / "trace.csv", trace)
    end = trace[-1][0]
    spec = scenario(fleet, case, trace_path, end)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    config = folder / f"{case.system}.cfg"
    notes = export(folder / "scenario.yaml", case.system, ports, config)
    idle = [(i * OVERHEAD_GAP, 0.0) for i in range(OVERHEAD_REQUESTS)]
    with running(command(case.system, config), LISTEN, folder / f"{case.system}.log"):
        # The trace first: the balancer's rotation starts where lbsim's does.
        replies = replay(trace, LISTEN)
        time.sleep(OVERHEAD_PAUSE)
        overhead = replay(idle, LISTEN)
    failed = failures([*replies, *overhead])
    if failed:
        raise RuntimeError(f"{case.system} {case.algorithm}: {failed}")
    real = np.array([r.latency for r in replies])
    overhead_mean = float(np.mean([r.latency for r in overhead]))
    requested = sum(size / speeds[r.server] for (_, size), r in zip(trace, replies, strict=True))
    row: dict[str, Any] = {
        "fleet": fleet,
        "balancer": case.system,
        "algorithm": case.algorithm,
        "policy": case.policy,
        "requests": len(trace),
        "overhead_ms": overhead_mean * 1e3,
        "oversleep": sum(r.service for r in replies) / requested - 1,
        "late_p99_ms": float(np.percentile([r.late for r in replies], 99)) * 1e3,
        "not_expressed": "; ".join(notes),
    }
    row |= {f"real_{m}": v for m, v in statistics(real).items()}
    seeds = SEEDS if case.random else SEEDS[:1]
    raw = [simulated(spec, seed) for seed in seeds]
    for m in METRICS:
        values = [statistics(r)[m] for r in raw]
        row[f"sim_{m}"] = np.mean(values)
        ratios = [value / row[f"real_{m}"] for value in values]
        row[f"raw_{m}"], row[f"raw_{m}_min"], row[f"raw_{m}_max"] = np.mean(ratios), min(ratios), max(ratios)
    row["correlation"] = float(np.corrcoef(real, raw[0])[0, 1])
    calibrated_path = write_trace(folder / "calibrated.csv", calibrated_trace(trace, replies, speeds))
    calibrated_spec = scenario(fleet, case, calibrated_path, end, cost=0)
    calibrated_spec["network"] = {"local": overhead_mean}
    calibrated = [statistics(simulated(calibrated_spec, seed)) for seed in seeds]
    for m in METRICS:
        row[f"calibrated_sim_{m}"] = np.mean([c[m] for c in calibrated])
        row[f"calibrated_{m}"] = row[f"calibrated_sim_{m}"] / row[f"real_{m}"]
    return row


def run(
    seconds: float,
    repeats: int,
    fleets: Sequence[str],
    cases: Sequence[Case],
    echo: Callable[[str], None] = print,
) -> Iterator[dict[str, Any]]:
    """Every case of ``cases`` on every fleet of ``fleets``, ``repeats`` times over traces of
    ``seconds``; yields one row per real run as it ends (see :func:`run_case`)."""
    for fleet in fleets:
        names = servers_of(fleet)
        ports = [LISTEN + 1 + i for i in range(len(names))]
        check_free([LISTEN, *ports])
        specs = [f"{name}={port}:{speed}" for (name, speed), port in zip(names, ports, strict=True)]
        for repeat in range(repeats):
            trace = draw_trace(rate_of(fleet), seconds, seed=1000 + repeat)
            if len(trace) < FEW:
                echo(f"{fleet}: {len(trace)} requests a trace; the verdicts need thousands to mean much")
            with tempfile.TemporaryDirectory(prefix="lbsim-sim-to-real-") as tmp:
                folder = Path(tmp)
                backends = [sys.executable, "-m", "benchmarks.sim_to_real.backends", *specs]
                with running(backends, ports[-1], folder / "backends.log"):
                    for case in cases:
                        row = run_case(fleet, case, trace, ports, folder) | {"repeat": repeat}
                        echo(
                            f"{fleet} {case.system} {case.algorithm} #{repeat + 1}: real mean "
                            f"{row['real_mean'] * 1e3:.2f} ms p99 {row['real_p99'] * 1e3:.2f} ms; lbsim/real "
                            + " ".join(f"{m} {row[f'raw_{m}']:.3f}" for m in METRICS)
                            + f"; calibrated mean {row['calibrated_mean']:.3f}"
                            + f"; oversleep {row['oversleep']:.2%}"
                        )
                        yield row


def _ratios(mid: float, low: float, high: float) -> str:
    return f"{mid:.3f}" if math.isclose(low, high, abs_tol=5e-4) else f"{mid:.3f} ({low:.3f}-{high:.3f})"


def verdict(runs: pd.DataFrame, random: bool) -> str:
    """Whether one case's runs meet the targets. A deterministic policy: its median ratio
    over the repeats (the table's figure) within RAW_TARGET raw and CALIBRATED_TARGET
    calibrated, on every metric. A random one: in how many (repeat, metric) pairs the real
    value lies inside lbsim's range over seeds, widened by RAW_TARGET (the overhead raw
    leaves out); were lbsim right, each falls outside about 1 time in 20."""
    if random:
        inside = sum(
            int(
                (
                    (runs[f"raw_{m}_min"] * (1 - RAW_TARGET[m]) <= 1)
                    & (runs[f"raw_{m}_max"] * (1 + RAW_TARGET[m]) >= 1)
                ).sum()
            )
            for m in METRICS
        )
        return f"{inside}/{len(runs) * len(METRICS)} inside lbsim's seed spread"
    raw = all(abs(runs[f"raw_{m}"].median() - 1) <= RAW_TARGET[m] for m in METRICS)
    calibrated = all(abs(runs[f"calibrated_{m}"].median() - 1) <= CALIBRATED_TARGET[m] for m in METRICS)
    return f"raw {'meets' if raw else 'misses'}, calibrated {'meets' if calibrated else 'misses'}"


def table(runs: pd.DataFrame) -> str:
    """Markdown: one row per (fleet, balancer, algorithm), medians over repeats with their
    range (a random policy's raw range: lbsim's over seeds); ratios are lbsim / real."""
    head = (
        "| fleet | balancer | algorithm | real mean / p50 / p90 / p99 (ms) "
        "| lbsim/real mean | p50 | p90 | p99 | calibrated mean | p50 | p90 | p99 "
        "| overhead (ms) | oversleep | per-request r | verdict |"
    )
    lines = [head, "|" + "---|" * 16]
    random = {(c.system, c.policy): c.random for c in CASES}
    for (fleet, system, algorithm, policy), case in runs.groupby(
        ["fleet", "balancer", "algorithm", "policy"], sort=False
    ):
        real = " / ".join(f"{case[f'real_{m}'].median() * 1e3:.1f}" for m in METRICS)
        noisy = (case["oversleep"] > NOISY).sum()
        oversleep = f"{case['oversleep'].max():.2%}" + (f" ({noisy} noisy)" if noisy else "")
        cells = [fleet, system, algorithm, real]
        for m in METRICS:
            seeds = random[(system, policy)]
            low, high = (f"raw_{m}_min", f"raw_{m}_max") if seeds else (f"raw_{m}", f"raw_{m}")
            cells.append(_ratios(case[f"raw_{m}"].median(), case[low].min(), case[high].max()))
        for m in METRICS:
            calibrated = case[f"calibrated_{m}"]
            cells.append(_ratios(calibrated.median(), calibrated.min(), calibrated.max()))
        cells += [f"{case['overhead_ms'].median():.2f}", oversleep, f"{case['correlation'].median():.3f}"]
        cells.append(verdict(case, random[(system, policy)]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def versions(cases: Sequence[Case]) -> str:
    return ", ".join(f"{system} {version(system)}" for system in dict.fromkeys(c.system for c in cases))


def available(cases: Sequence[Case], echo: Callable[[str], None] = print) -> list[Case]:
    """The cases whose balancer is installed; says which are skipped and why."""
    for system in dict.fromkeys(c.system for c in cases):
        reason = missing(system)
        if reason:
            echo(f"skipped: {reason}: its cases do not run")
    return [c for c in cases if missing(c.system) is None]
