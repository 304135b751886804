"""The engine against queueing theory: a fixed suite of cases, each a simulated quantity with
its confidence interval over replications next to the value theory gives.

A case passes when the theory value lies inside the 95% confidence interval widened by a
small bias allowance (a stated fraction of the theory value, for the warm-up and the finite
run). Bounds and orderings pass when the inequality holds within the interval. Every run
also checks Little's law as an identity on its own records.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lbsim.config.loading import load_scenario
from lbsim.results.metrics import RunTables, confidence_half_width
from lbsim.runner import run_tasks
from lbsim.tools import theory

MU = 100.0  # service rate of every case: exponential sizes with mean 10 ms
SEED = 2026

Measure = Callable[[Sequence[RunTables]], float]


@dataclass(frozen=True)
class Case:
    """One row of the validation table.

    Attributes:
        case: what is simulated.
        quantity: what is compared.
        scenarios: the scenario(s) whose runs, paired by replication, ``measure`` reads.
        measure: the value of one replication.
        theory: the value (or bound) theory gives.
        relation: ``=`` (equal), ``>=`` (at least the bound) or ``<=`` (at most the bound).
        allowance: bias allowance, as a fraction of the theory value, or in the quantity's
            own units when ``absolute`` (always when the theory value is 0).
        note: where the theory comes from, or why the allowance is what it is.
    """

    case: str
    quantity: str
    scenarios: tuple[dict[str, Any], ...]
    measure: Measure
    theory: float
    relation: str = "="
    allowance: float = 0.02
    note: str = ""
    absolute: bool = False


@dataclass
class Row:
    """A checked case."""

    case: str
    quantity: str
    theory: float
    relation: str
    simulated: float
    ci: float
    allowance: float
    passed: bool
    note: str = field(default="")

    @property
    def relative_error(self) -> float:
        return (self.simulated - self.theory) / abs(self.theory) if self.theory else math.nan


def _scenario(
    name: str, duration: float, servers: list[dict[str, Any]], workload: dict[str, Any], **balancer: Any
) -> dict[str, Any]:
    return {
        "name": re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-"),
        "duration": duration,
        "warmup": duration / 10,
        "seed": SEED,
        "workload": workload,
        "servers": servers,
        "balancer": {"policy": "random", "cost": 0, **balancer},
    }


def _open(rate: float, size: str = "exp(10ms)") -> dict[str, Any]:
    return {"arrivals": "poisson", "rate": rate, "size": size}


def _summary(metric: str) -> Measure:
    return lambda tables: float(tables[0].summary[metric])


def _ratio(numerator: str, denominator: str) -> Measure:
    return lambda tables: tables[0].summary[numerator] / tables[0].summary[denominator]


def _difference(metric: str) -> Measure:
    """The second scenario's metric minus the first's, paired by replication."""
    return lambda tables: float(tables[1].summary[metric] - tables[0].summary[metric])


def _fraction_at_least(i: int) -> Measure:
    def measure(tables: Sequence[RunTables]) -> float:
        series = tables[0].timeseries
        series = series[series["t_start"] >= series["t_start"].max() / 10]
        active = series[[c for c in series.columns if c.startswith("active_")]].to_numpy()
        return float((active >= i).mean())

    return measure


def _response_time_law(users: int, think: float) -> Measure:
    # Measured R minus the law's N / X - Z: zero when the law holds.
    return lambda tables: float(
        tables[0].summary["latency_mean"]
        - theory.response_time_law(users, tables[0].summary["throughput"], think)
    )


def _up_fraction(duration: float) -> Measure:
    def measure(tables: Sequence[RunTables]) -> float:
        faults = tables[0].faults
        down = (faults["t_end"].clip(upper=duration) - faults["t_start"]).sum()
        servers = len(tables[0].servers)
        return float(1 - down / (servers * duration))

    return measure


def cases(quick: bool) -> list[Case]:
    """The validation suite; ``quick`` runs every case shorter."""
    scale = 1.0 if quick else 4.0
    suite: list[Case] = []
    one = [{"name": "web"}]

    for load, duration in ((0.5, 120.0), (0.8, 300.0), (0.95, 1200.0)):
        s = _scenario(f"mm1-{load}", duration * scale, one, _open(load * MU))
        allowance = 0.02 if load < 0.9 else 0.05
        note = "Kleinrock I 3.2" + ("; 5% for the slow relaxation near saturation" if load > 0.9 else "")
        suite.append(
            Case(
                f"M/M/1 load {load}",
                "mean response (s)",
                (s,),
                _summary("latency_mean"),
                theory.mm1_response_mean(load * MU, MU),
                allowance=allowance,
                note=note,
            )
        )
        suite.append(
            Case(
                f"M/M/1 load {load}",
                "p99 response (s)",
                (s,),
                _summary("latency_p99"),
                theory.mm1_response_quantile(load * MU, MU, 0.99),
                allowance=allowance + 0.01,
                note=note,
            )
        )

    for capacity in (5, 10):
        for load in (0.9, 1.5):
            s = _scenario(
                f"mm1k-{capacity}-{load}",
                200.0 * scale,
                [{"name": "web", "queue": capacity - 1}],
                _open(load * MU),
            )
            suite.append(
                Case(
                    f"M/M/1/{capacity} load {load}",
                    "blocking probability",
                    (s,),
                    _ratio("n_rejected", "n_requests"),
                    theory.mm1k_blocking(load * MU, MU, capacity),
                    note="Kleinrock I 3.6; K = workers + queue",
                )
            )

    s = _scenario("mm10", 100.0 * scale, [{"name": "web", "workers": 10}], _open(0.9 * 10 * MU))
    suite.append(
        Case(
            "M/M/10 load 0.9 (one server, 10 workers)",
            "mean response (s)",
            (s,),
            _summary("latency_mean"),
            theory.mmc_response_mean(10, 900.0, MU),
            note="Erlang C, Kleinrock I 3.5",
        )
    )

    for size in ("exp(10ms)", "det(10ms)"):
        s = _scenario(
            f"erlang-b-{size}",
            100.0 * scale,
            [{"name": "web", "workers": 10, "queue": 0}],
            _open(800.0, size),
        )
        suite.append(
            Case(
                f"M/{'M' if size.startswith('exp') else 'D'}/10/10 offered load 8",
                "blocking probability",
                (s,),
                _ratio("n_rejected", "n_requests"),
                theory.erlang_b(10, 8.0),
                note="Erlang B, insensitive to the size distribution",
            )
        )

    for size, cv, label in (
        ("det(10ms)", 0.0, "M/D/1"),
        (f"hyperexp(mean=10ms, cv={math.sqrt(10):.6f})", math.sqrt(10), "M/H2/1 (cv^2 = 10)"),
    ):
        s = _scenario(f"{label}", (200.0 if cv == 0 else 1500.0) * scale, one, _open(70.0, size))
        suite.append(
            Case(
                f"{label} load 0.7",
                "mean response (s)",
                (s,),
                _summary("latency_mean"),
                theory.mg1_response_mean(70.0, 0.01, cv),
                allowance=0.02 if cv == 0 else 0.05,
                note="Pollaczek-Khinchine" + ("" if cv == 0 else "; 5% for the heavy tail"),
            )
        )

    for size in ("exp(10ms)", "lognormal(mean=10ms, cv=3)"):
        s = _scenario(f"ps-{size}", 300.0 * scale, [{"name": "web", "discipline": "ps"}], _open(70.0, size))
        suite.append(
            Case(
                f"M/G/1-PS load 0.7, {size}",
                "mean response (s)",
                (s,),
                _summary("latency_mean"),
                theory.mg1_ps_response_mean(70.0, 0.01),
                allowance=0.03,
                note="PS: depends on the mean size only",
            )
        )

    s = _scenario("random-10", 200.0 * scale, [{"name": "web", "count": 10}], _open(900.0))
    suite.append(
        Case(
            "random over 10 servers, load 0.9",
            "mean response (s)",
            (s,),
            _summary("latency_mean"),
            theory.random_dispatch_response_mean(10, 900.0, MU),
            note="10 independent M/M/1",
        )
    )
    for n in (2, 10):
        s = _scenario(
            f"rr-{n}", 200.0 * scale, [{"name": "web", "count": n}], _open(0.9 * n * MU), policy="round_robin"
        )
        suite.append(
            Case(
                f"round_robin over {n} servers, load 0.9",
                "mean response (s)",
                (s,),
                _summary("latency_mean"),
                theory.round_robin_response_mean(n, 0.9 * n * MU, MU),
                note="E_N/M/1, Kleinrock I 6.4",
            )
        )

    for d in (2, 3):
        s = _scenario(
            f"p2c-{d}",
            20.0 * scale,
            [{"name": "web", "count": 100}],
            _open(0.9 * 100 * MU),
            policy={"name": "p2c", "choices": d},
        ) | {"window": 20.0 * scale / 1000}
        note = "mean field (N -> infinity); 100 servers queue 1-3% more (finite-N), hence 5%"
        for i in (1, 2, 3):
            suite.append(
                Case(
                    f"p2c d={d} over 100 servers, load 0.9",
                    f"fraction with >= {i} requests",
                    (s,),
                    _fraction_at_least(i),
                    theory.power_of_d_fraction(0.9, d, i),
                    allowance=0.03,
                    absolute=True,
                    note="mean field; the finite-N excess grows with i and d, up to 0.03 at i = 3, d = 3",
                )
            )
        suite.append(
            Case(
                f"p2c d={d} over 100 servers, load 0.9",
                "mean response (s)",
                (s,),
                _summary("latency_mean"),
                theory.power_of_d_response_mean(0.9, d, MU),
                allowance=0.05,
                note=note,
            )
        )

    n = 20
    for load in (0.7, 0.95):
        duration = (60.0 if load < 0.9 else 200.0) * scale
        runs = {
            name: _scenario(
                f"order-{name}-{load}",
                duration,
                [{"name": "web", "count": n}],
                _open(load * n * MU),
                policy=policy,
            )
            for name, policy in (
                ("jsq", "jsq"),
                ("p2c3", {"name": "p2c", "choices": 3}),
                ("p2c2", "p2c"),
                ("random", "random"),
            )
        }
        suite.append(
            Case(
                f"jsq over {n}, load {load}",
                "mean response (s) >= M/M/c",
                (runs["jsq"],),
                _summary("latency_mean"),
                theory.mmc_response_mean(n, load * n * MU, MU),
                relation=">=",
                note="a central queue is the best any dispatcher can do",
            )
        )
        suite.append(
            Case(
                f"jsq over {n}, load {load}",
                "mean response (s) <= random",
                (runs["jsq"],),
                _summary("latency_mean"),
                theory.random_dispatch_response_mean(n, load * n * MU, MU),
                relation="<=",
                note="random splitting: independent M/M/1",
            )
        )
        for better, worse, label in (
            ("jsq", "p2c3", "p2c(3) - jsq"),
            ("p2c3", "p2c2", "p2c(2) - p2c(3)"),
            ("p2c2", "random", "random - p2c(2)"),
        ):
            suite.append(
                Case(
                    f"ordering over {n}, load {load}",
                    f"{label} mean response (s) >= 0",
                    (runs[better], runs[worse]),
                    _difference("latency_mean"),
                    0.0,
                    relation=">=",
                    allowance=0.0,
                    note="paired runs (same arrivals and sizes)",
                )
            )

    users, think = 50, 1.0
    s = _scenario(
        "closed",
        300.0 * scale,
        one,
        {"arrivals": {"kind": "closed", "users": users, "think": "exp(1s)"}, "size": "exp(15ms)"},
    )
    suite.append(
        Case(
            f"closed: {users} users, think {think:g} s",
            "R - (N / X - Z) (s)",
            (s,),
            _response_time_law(users, think),
            0.0,
            allowance=0.005,
            note="response-time law; allowance 5 ms (X is over counted requests)",
        )
    )

    duration = 2000.0 * scale
    s = _scenario("availability", duration, [{"name": "web", "count": 10}], _open(10.0)) | {
        "faults": [{"target": "web", "kind": "crash", "mtbf": "100s", "mttr": "10s"}],
        "warmup": 0.0,
    }
    suite.append(
        Case(
            "random crashes, mtbf 100 s, mttr 10 s",
            "fraction of time up",
            (s,),
            _up_fraction(duration),
            theory.availability(100.0, 10.0),
            allowance=0.005,
            note="renewal-reward",
        )
    )
    return suite


def validate(
    *,
    quick: bool = False,
    jobs: int | None = None,
    replications: int | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> list[Row]:
    """Run the suite and return its checked rows; the last is Little's law over every run."""
    suite = cases(quick)
    replications = replications or (5 if quick else 10)
    keys: dict[str, dict[str, Any]] = {}
    for case in suite:
        for scenario in case.scenarios:
            keys.setdefault(json.dumps(scenario, sort_keys=True), scenario)
    tasks = [(key, load_scenario(data), r) for key, data in keys.items() for r in range(replications)]
    outputs = run_tasks([(loaded, SEED, r) for _, loaded, r in tasks], jobs or os.cpu_count() or 1, progress)
    results = {(key, r): tables for (key, _, r), (tables, _) in zip(tasks, outputs, strict=True)}
    rows = []
    for case in suite:
        runs = [json.dumps(s, sort_keys=True) for s in case.scenarios]
        values = np.array([case.measure([results[key, r] for key in runs]) for r in range(replications)])
        rows.append(_check(case, values))
    worst = max(abs(a - b) / max(abs(a), 1e-300) for a, b in (t.little for t in results.values()))
    rows.append(
        Row(
            "every run",
            "Little's law: |L - lambda W| / L",
            0.0,
            "=",
            worst,
            0.0,
            1e-9,
            worst <= 1e-9,
            "L integrated by the engine, lambda W from the records",
        )
    )
    return rows


def _check(case: Case, values: np.ndarray) -> Row:
    mean = float(values.mean())
    ci = confidence_half_width(values)
    slack = ci + case.allowance * (abs(case.theory) if case.theory and not case.absolute else 1.0)
    if case.relation == "=":
        passed = abs(mean - case.theory) <= slack
    elif case.relation == ">=":
        passed = mean + slack >= case.theory
    else:
        passed = mean - slack <= case.theory
    return Row(
        case.case, case.quantity, case.theory, case.relation, mean, ci, case.allowance, passed, case.note
    )


def table(rows: Sequence[Row]) -> pd.DataFrame:
    """The rows as a table: case, quantity, theory, simulated mean, 95% CI, relative error, pass."""
    return pd.DataFrame(
        {
            "case": [r.case for r in rows],
            "quantity": [r.quantity for r in rows],
            "relation": [r.relation for r in rows],
            "theory": [r.theory for r in rows],
            "simulated": [r.simulated for r in rows],
            "ci": [r.ci for r in rows],
            "relative_error": [r.relative_error for r in rows],
            "allowance": [r.allowance for r in rows],
            "pass": [r.passed for r in rows],
            "note": [r.note for r in rows],
        }
    )


def markdown(rows: Sequence[Row]) -> str:
    """The table as Markdown."""
    lines = [
        "| case | quantity | theory | simulated (95% CI) | rel. error | allowance | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        bound = "" if r.relation == "=" else f"{r.relation} "
        error = "" if math.isnan(r.relative_error) else f"{r.relative_error:+.2%}"
        lines.append(
            f"| {r.case} | {r.quantity} | {bound}{r.theory:.5g} | {r.simulated:.5g} ± {r.ci:.2g} | {error} | "
            f"{r.allowance:g} | {'pass' if r.passed else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"
