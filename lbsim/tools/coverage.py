"""Do lbsim's 95% confidence intervals cover? Many independent experiments of systems whose
answers theory gives exactly, each with the interval ``lbsim run`` would report.

An experiment is R replications of one scenario under its own seed; its interval is the mean
over the replications ± Student's t half-width (what ``table.csv`` reports). Over N
experiments, the share whose interval holds the theory value should be about 95%; the
Wilson score interval of that share (99%, z = 2.576) says whether a miss is more than chance.
Nothing here widens an interval by a bias allowance (as :mod:`lbsim.tools.validation` does):
this measures the interval as users get it. Further rows check the interval one long run gets
from its own batch means (``replications: 1``), and the intervals of ``--precision``: each
experiment runs the sequential procedure of :mod:`lbsim.precision` (the same rule, from
PILOT_REPLICATIONS), whose data-dependent stopping could make its intervals cover less.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lbsim.config.loading import load_scenario
from lbsim.config.precision import PrecisionModel
from lbsim.limits import PILOT_REPLICATIONS
from lbsim.precision import next_replications
from lbsim.results.metrics import BATCHES, confidence_half_width
from lbsim.runner import run_tasks
from lbsim.tools import theory

MU = 100.0  # service rate: exponential sizes with mean 10 ms
SEED = 4242  # experiment e runs under seed SEED + e
Z99 = 2.5758


@dataclass(frozen=True)
class System:
    """A system with a known answer: its scenario (without seed and length), the metric
    read from each run's summary, and the theory value of that metric (s)."""

    name: str
    servers: list[dict[str, Any]]
    rate: float
    metric: str
    theory: float


SYSTEMS = (
    System(
        "M/M/1 load 0.5", [{"name": "web"}], 0.5 * MU, "latency_mean", theory.mm1_response_mean(0.5 * MU, MU)
    ),
    System(
        "M/M/1 load 0.5",
        [{"name": "web"}],
        0.5 * MU,
        "latency_p99",
        theory.mm1_response_quantile(0.5 * MU, MU, 0.99),
    ),
    System(
        "M/M/2 load 0.5",
        [{"name": "web", "workers": 2}],
        MU,
        "latency_mean",
        theory.mmc_response_mean(2, MU, MU),
    ),
)


@dataclass(frozen=True)
class Coverage:
    """How often the intervals of ``experiments`` experiments held the theory value."""

    system: str
    metric: str
    theory: float
    experiments: int
    # Per experiment (the mean, under --precision).
    replications: float
    requests: int
    covered: int
    mean_half_width: float

    @property
    def coverage(self) -> float:
        return self.covered / self.experiments

    @property
    def interval(self) -> tuple[float, float]:
        """The 99% Wilson score interval of the coverage."""
        return wilson(self.covered, self.experiments, Z99)


def wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion at normal quantile ``z``."""
    p = successes / trials
    centre = (p + z**2 / (2 * trials)) / (1 + z**2 / trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    return centre - spread, centre + spread


def _scenario(system: System, requests: int) -> dict[str, Any]:
    duration = requests / system.rate
    return {
        "name": "coverage",
        "duration": duration,
        "warmup": duration / 10,
        "workload": {"arrivals": "poisson", "rate": system.rate, "size": "exp(10ms)"},
        "servers": system.servers,
        "balancer": {"policy": "random", "cost": 0},
    }


def coverage(
    experiments: int,
    replications: int = 3,
    requests: int = 2000,
    jobs: int | None = None,
    progress: Callable[[float, int], None] | None = None,
    precision: bool = True,
) -> list[Coverage]:
    """Run ``experiments`` experiments of ``replications`` runs of about ``requests``
    requests for each system of SYSTEMS (the systems sharing a scenario share its runs), then
    of one long run, then (with ``precision``) of ``--precision`` for each of PRECISION.

    Returns:
        one Coverage per system, in SYSTEMS order, then the others.
    """
    scenarios = {system.name: _scenario(system, requests) for system in SYSTEMS}
    loaded = {name: load_scenario(data) for name, data in scenarios.items()}
    tasks = [
        (loaded[name], SEED + e, r)
        for name in scenarios
        for e in range(experiments)
        for r in range(replications)
    ]
    outputs = run_tasks(tasks, jobs or os.cpu_count() or 1, progress)
    summaries = pd.DataFrame([tables.summary for tables, _ in outputs])
    summaries["system"] = [name for name in scenarios for _ in range(experiments * replications)]
    summaries["experiment"] = [e for _ in scenarios for e in range(experiments) for _ in range(replications)]
    results = []
    for system in SYSTEMS:
        runs = summaries[summaries["system"] == system.name]
        samples = [group[system.metric].to_numpy(dtype=float) for _, group in runs.groupby("experiment")]
        covered, mean_width = _covered(samples, system.theory)
        results.append(
            Coverage(
                system.name, system.metric, system.theory, experiments, replications, requests, covered,
                mean_width,
            )
        )  # fmt: skip
    results.append(_batch_coverage(experiments, BATCH_RUN * requests, jobs, progress))
    for index, relative, longer in PRECISION if precision else ():
        results.append(
            precision_coverage(SYSTEMS[index], relative, experiments, longer * requests, jobs, progress)
        )
    return results


# How much longer the one run of the batch-means experiment is than a replication.
BATCH_RUN = 10


def _batch_coverage(
    experiments: int, requests: int, jobs: int | None, progress: Callable[[float, int], None] | None
) -> Coverage:
    """The coverage of one long run's interval by batch means
    (:func:`lbsim.results.metrics.batch_means_half_width`), on the first system."""
    system = SYSTEMS[0]
    scenario = load_scenario(_scenario(system, requests))
    outputs = run_tasks(
        [(scenario, SEED + e, 0) for e in range(experiments)], jobs or os.cpu_count() or 1, progress
    )
    means = np.array([tables.summary[system.metric] for tables, _ in outputs])
    widths = np.array([tables.summary["latency_mean_batch_ci"] for tables, _ in outputs])
    covered = int(np.sum(np.abs(means - system.theory) <= widths))
    name = f"{system.name}, one run, {BATCHES} batch means"
    return Coverage(
        name, system.metric, system.theory, experiments, 1, requests, covered, float(np.mean(widths))
    )


# The --precision rows: (system of SYSTEMS, relative target, how much longer its runs are than
# --requests), each with PRECISION_MAX replications at most. The p99 row's runs are longer: a
# run's p99 from 2,000 requests (about 20 beyond it) is biased and skewed enough that an
# interval over 10 such runs held the theory value in 90.8% of 400 experiments, one over 10
# runs of 10,000 requests in 94.0% of 300 (lbsim.runner.sweep_plan warns of such short runs).
PRECISION = ((0, 0.05, 1), (1, 0.05, 5))
PRECISION_MAX = 50


def precision_coverage(
    system: System,
    relative: float,
    experiments: int,
    requests: int,
    jobs: int | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> Coverage:
    """The coverage of the intervals ``--precision`` stops at: each experiment adds
    replications in rounds by :func:`lbsim.precision.next_replications` until its relative
    half-width is within ``relative`` or it has PRECISION_MAX."""
    scenario = load_scenario(_scenario(system, requests))
    precision = PrecisionModel(metric=system.metric, relative=relative, max_replications=PRECISION_MAX)
    counts = [PILOT_REPLICATIONS] * experiments
    values: dict[tuple[int, int], float] = {}
    while wanted := [(e, r) for e in range(experiments) for r in range(counts[e]) if (e, r) not in values]:
        tasks = [(scenario, SEED + e, r) for e, r in wanted]
        for (e, r), (tables, _) in zip(
            wanted, run_tasks(tasks, jobs or os.cpu_count() or 1, progress), strict=True
        ):
            values[e, r] = tables.summary[system.metric]
        for e in range(experiments):
            sample = np.array([values[e, r] for r in range(counts[e])])
            counts[e] = next_replications(
                counts[e], confidence_half_width(sample) / abs(sample.mean()), precision
            )
    samples = [np.array([values[e, r] for r in range(counts[e])]) for e in range(experiments)]
    covered, mean_width = _covered(samples, system.theory)
    name = f"{system.name}, --precision {relative:.0%}"
    return Coverage(
        name, system.metric, system.theory, experiments, float(np.mean(counts)), requests, covered, mean_width
    )


def _covered(samples: list[np.ndarray], theory: float) -> tuple[int, float]:
    """How many of the experiments' ``samples`` (one value per replication) have a 95%
    interval (Student's t, as table.csv's) that holds ``theory``, and the mean half-width."""
    widths = np.array([confidence_half_width(sample) for sample in samples])
    means = np.array([np.mean(sample) for sample in samples])
    return int(np.sum(np.abs(means - theory) <= widths)), float(np.mean(widths))


def runs_per_experiment(replications: int) -> int:
    """The most runs (each of --requests) one experiment of every row may take: M/M/1 and
    M/M/2 for ``replications``, one long M/M/1, and each --precision row at its maximum."""
    return 2 * replications + BATCH_RUN + sum(longer * PRECISION_MAX for _, _, longer in PRECISION)


def markdown(rows: list[Coverage]) -> str:
    """The coverage figures as a Markdown table."""
    lines = [
        "| system | metric | theory | experiments x replications (--precision: mean) x requests | coverage "
        "| 99% interval "
        "| mean half-width |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, high = row.interval
        lines.append(
            f"| {row.system} | {row.metric} | {row.theory * 1000:.2f} ms | "
            f"{row.experiments} x {row.replications:.3g} x {row.requests:,} | {row.coverage:.1%} | "
            f"{low:.1%}-{high:.1%} | {row.mean_half_width * 1000:.2f} ms |"
        )
    return "\n".join(lines) + "\n"
