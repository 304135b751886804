"""The README's lessons, measured: rerun every bundled scenario and rewrite the figures the
README quotes.

Each figure is named (``high-variance.random.p99.80``) and defined below from a result table
of a bundled scenario at its full size (its own seed and replications, every run simulated
afresh); ``docs/lessons.json`` holds the measured figures and
``docs/lessons.template.md`` the README's lessons with ``[[name]]`` where a figure goes.
This command measures the figures, writes the JSON and renders the template into the
README between its ``lessons`` markers; ``tests/test_lessons.py`` checks that the README
says what the JSON holds. Rerun it whenever a change moves a result.

Usage: python docs/lessons.py [--jobs N] [--render]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
ROOT = HERE.parent
FIGURES = HERE / "lessons.json"
TEMPLATE = HERE / "lessons.template.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- lessons: {name} (docs/lessons.py writes this) -->", "<!-- lessons: {name} end -->"
BLOCK = re.compile(r"^<!-- block: ([a-z]+) -->$", re.MULTILINE)
PLACEHOLDER = re.compile(r"\[\[([a-z0-9_.\-]+)\]\]")


@dataclass(frozen=True)
class Value:
    """A metric of the cell of ``scenario`` that ``where`` selects (the mean over its
    replications; for servers, regions and tiers, of the rows ``where`` also selects), in its
    unit, to three significant figures; ``± half-width`` with ``ci``; a whole number with
    ``count``."""

    scenario: str
    metric: str
    where: Mapping[str, Any] = field(default_factory=dict)
    table: str = "summary"
    ci: bool = False
    count: bool = False

    def measure(self, results: Mapping[str, Any]) -> str:
        from lbsim.output.quantities import shown_value
        from lbsim.results.metrics import confidence_half_width

        rows = _select(getattr(results[self.scenario], self.table), self.where)
        by_replication = rows.groupby("replication")[self.metric].mean().to_numpy(dtype=float)
        mean = float(np.mean(by_replication))
        if self.count:
            return f"{mean:,.0f}"
        return shown_value(self.metric, mean, confidence_half_width(by_replication) if self.ci else None)


@dataclass(frozen=True)
class Versus:
    """Whether ``metric`` differs between the cells ``a`` and ``b`` of ``scenario``: a paired
    test over their replications (the same seeds), ``significant (...)`` or not."""

    scenario: str
    metric: str
    a: Mapping[str, Any]
    b: Mapping[str, Any]

    def measure(self, results: Mapping[str, Any]) -> str:
        from lbsim.output.verdict import significance

        summary = results[self.scenario].summary
        a, b = (_select(summary, where).sort_values("replication")[self.metric] for where in (self.a, self.b))
        return significance(self.metric, a.to_numpy(dtype=float), b.to_numpy(dtype=float))


@dataclass(frozen=True)
class Span:
    """The least and the greatest, over replications, of ``end - start`` (columns of the
    fault occurrences that ``where`` selects), in seconds: ``4.3-5.9 s``."""

    scenario: str
    start: str
    end: str
    where: Mapping[str, Any] = field(default_factory=dict)

    def measure(self, results: Mapping[str, Any]) -> str:
        from lbsim.output.quantities import three_figures

        rows = _select(results[self.scenario].faults, self.where)
        spans = (rows[self.end] - rows[self.start]).to_numpy(dtype=float)
        return f"{three_figures(float(spans.min()))}-{three_figures(float(spans.max()))} s"


@dataclass(frozen=True)
class Share:
    """The sum of ``column`` over the rows ``part`` selects, as a share of its sum over the
    rows ``whole`` selects (both of ``table``, every replication), in %."""

    scenario: str
    table: str
    column: str
    part: Mapping[str, Any]
    whole: Mapping[str, Any]

    def measure(self, results: Mapping[str, Any]) -> str:
        from lbsim.output.quantities import three_figures

        frame = getattr(results[self.scenario], self.table)
        part, whole = (_select(frame, where)[self.column].sum() for where in (self.part, self.whole))
        return f"{three_figures(100 * float(part) / float(whole))}%"


@dataclass(frozen=True)
class Remap:
    """The share of keys ``policy`` moves when one of 10 backends is ``removed`` (or one is
    ``added``), as ``lbsim remap --policy POLICY`` prints it."""

    policy: str
    removed: bool

    def measure(self, results: Mapping[str, Any]) -> str:
        from lbsim.tools.remap import remap

        moved = remap(self.policy)
        return f"{100 * (moved.moved_on_remove if self.removed else moved.moved_on_add):.2f}%"


# The capacity searches the README walks through: `lbsim capacity scenarios/capacity.yaml`
# with these arguments.
CAPACITY_RUNS: dict[str, dict[str, Any]] = {
    "servers": {"key": "servers[0].count", "slos": ["latency_p99<=500ms", "error_rate<=0.1%"], "sets": []},
    "survive": {
        "key": "servers[0].count",
        "slos": ["latency_p99<=500ms", "error_rate<=0.1%"],
        "sets": [("sweep", {})],
        "survive": "crash 1 server",
    },
    "cores": {
        "key": "balancer.cores",
        "slos": ["balancer_utilization<=0.7", "latency_p99<=500ms"],
        "sets": [("sweep", {}), ("servers[0].count", 32)],
    },
}


@dataclass(frozen=True)
class Capacity:
    """A figure of the capacity search ``run`` (of CAPACITY_RUNS) for ``policy``: its
    ``answer``, queueing theory's ``estimate``, the values it ``probes`` (every policy's with
    ``policy`` ``*``), or ``METRIC@VALUE`` (optionally ``@VARIANT``, the survived fault): the
    probe's metric at that value."""

    run: str
    policy: str
    what: str

    def measure(self, results: Mapping[str, Any]) -> str:
        from lbsim.output.quantities import shown_value

        searches = [s for s in results[f"capacity:{self.run}"] if self.policy in ("*", s.policy)]
        if self.what == "answer":
            return f"{searches[0].answer:g}"
        if self.what == "estimate":
            return f"{searches[0].estimate.value:g}"
        probes = pd.DataFrame([probe for search in searches for probe in search.probes])
        if self.what == "probes":
            return str(int((probes["variant"] == "normal").sum()))
        metric, value, *variant = self.what.split("@")
        key = CAPACITY_RUNS[self.run]["key"]
        row = _select(probes, {key: float(value), "variant": variant[0] if variant else "normal"})
        return shown_value(metric, float(row[metric].iloc[0]))


# The coverage study the README quotes: `lbsim coverage` at its defaults.
COVERAGE = {"experiments": 1000, "replications": 3, "requests": 2000}


@dataclass(frozen=True)
class Covers:
    """The coverage of the 95% intervals of row ``index`` of ``lbsim coverage`` (the systems
    of :data:`lbsim.tools.coverage.SYSTEMS`, then one run's batch means, then ``--precision``;
    ``interval``: its 99% Wilson interval; ``replications``: the mean replications)."""

    index: int
    interval: bool = False
    replications: bool = False

    def measure(self, results: Mapping[str, Any]) -> str:
        row = results["coverage"][self.index]
        if self.replications:
            return f"{row.replications:.1f}"
        if self.interval:
            low, high = row.interval
            return f"{100 * low:.1f}-{100 * high:.1f}%"
        return f"{100 * row.coverage:.1f}%"


def _select(frame: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``frame`` whose columns hold ``where``'s values (numbers compared as
    numbers, anything else as its text; a tuple for any of its values)."""
    keep = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        if isinstance(value, tuple):
            keep &= frame[column].astype(str).isin([str(v) for v in value]).to_numpy()
        elif isinstance(value, int | float):
            keep &= np.isclose(pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float), value)
        else:
            keep &= (frame[column].astype(str) == str(value)).to_numpy()
    if not keep.any():
        raise KeyError(f"no row has {dict(where)}")
    return frame[keep]


NO = "None"
CHECKS = "{interval: 2s, timeout: 1s, rise: 2, fall: 3, style: haproxy}"
RETRY = "{max: 2, 'on': [connect_failure], max_concurrent: null}"


def _policies(scenario: str, metric: str, policies: Mapping[str, str], **where: Any) -> dict[str, Value]:
    """One Value of ``metric`` per policy (its short name in the figure's name)."""
    return {
        f"{scenario}.{short}.{metric}": Value(scenario, metric, {"policy": policy, **where})
        for short, policy in policies.items()
    }


SPECS: dict[str, Value | Versus | Span | Share | Remap | Capacity | Covers] = {
    # Coverage of the 95% intervals (lbsim coverage).
    **{f"coverage.{i}": Covers(i) for i in range(6)},
    **{f"coverage.{i}.interval": Covers(i, interval=True) for i in range(6)},
    **{f"coverage.{i}.replications": Covers(i, replications=True) for i in (4, 5)},
    # Remapping a key space (lbsim remap).
    **{
        f"remap.{policy}.{'removed' if removed else 'added'}": Remap(policy, removed)
        for policy in ("maglev", "ip_hash", "ring_hash")
        for removed in (True, False)
    },
    # Capacity planning (lbsim capacity scenarios/capacity.yaml).
    **{
        f"capacity.servers.{short}.{what}": Capacity("servers", policy, what)
        for short, policy in (("lc", "least_connections"), ("p2c", "p2c"), ("rr", "round_robin"))
        for what in ("answer", "estimate")
    },
    "capacity.servers.probes": Capacity("servers", "*", "probes"),
    "capacity.survive.answer": Capacity("survive", "least_connections", "answer"),
    "capacity.survive.probes": Capacity("survive", "*", "probes"),
    "capacity.survive.utilization_max.31": Capacity(
        "survive", "least_connections", "utilization_max@31@crash 1 server"
    ),
    "capacity.cores.answer": Capacity("cores", "least_connections", "answer"),
    "capacity.cores.estimate": Capacity("cores", "least_connections", "estimate"),
    "capacity.cores.latency_p99.1": Capacity("cores", "least_connections", "latency_p99@1"),
    "capacity.cores.latency_p99.2": Capacity("cores", "least_connections", "latency_p99@2"),
    # quickstart: speed-blind policies overload the slow servers.
    "quickstart.rr.mean.350": Value(
        "quickstart", "latency_mean", {"policy": "round_robin", "workload.rate": 350}, ci=True
    ),
    "quickstart.wrr.mean.350": Value(
        "quickstart", "latency_mean", {"policy": "weighted_round_robin", "workload.rate": 350}
    ),
    "quickstart.wlc.mean.350": Value(
        "quickstart", "latency_mean", {"policy": "weighted_least_connections", "workload.rate": 350}
    ),
    "quickstart.rr.p99.250": Value(
        "quickstart", "latency_p99", {"policy": "round_robin", "workload.rate": 250}
    ),
    "quickstart.lc.p99.250": Value(
        "quickstart", "latency_p99", {"policy": "least_connections", "workload.rate": 250}
    ),
    "quickstart.lc-wlc.p99.250": Versus(
        "quickstart",
        "latency_p99",
        {"policy": "least_connections", "workload.rate": 250},
        {"policy": "weighted_least_connections", "workload.rate": 250},
    ),
    "quickstart.wlc.p99.250": Value(
        "quickstart", "latency_p99", {"policy": "weighted_least_connections", "workload.rate": 250}
    ),
    # slow-servers.
    **{
        f"slow-servers.{short}.{metric}": Value("slow-servers", metric, {"policy": policy})
        for short, policy in (
            ("rr", "round_robin"),
            ("wrr", "weighted_round_robin"),
            ("lc", "least_connections"),
            ("wlc", "weighted_least_connections"),
        )
        for metric in ("latency_mean", "latency_p99")
    },
    "slow-servers.wrr.utilization_max": Value(
        "slow-servers", "utilization_max", {"policy": "weighted_round_robin"}
    ),
    "slow-servers.lc-wlc.p99": Versus(
        "slow-servers",
        "latency_p99",
        {"policy": "least_connections"},
        {"policy": "weighted_least_connections"},
    ),
    # high-variance.
    **{
        f"high-variance.{short}.{metric}.80": Value(
            "high-variance", metric, {"policy": policy, "workload.rate": 320}, ci=True
        )
        for short, policy in (("rr", "round_robin"), ("random", "random"), ("lc", "least_connections"))
        for metric in ("latency_mean", "latency_p99")
    },
    "high-variance.rr-random.p99.80": Versus(
        "high-variance",
        "latency_p99",
        {"policy": "round_robin", "workload.rate": 320},
        {"policy": "random", "workload.rate": 320},
    ),
    # algorithms at 90% (720/s).
    **_policies(
        "algorithms",
        "latency_mean",
        {
            "rr": "round_robin",
            "random": "random",
            "ip_hash": "ip_hash",
            "ring_hash": "ring_hash",
            "maglev": "maglev",
            "wrr": "weighted_round_robin",
            "peak_ewma": "peak_ewma",
            "p2c": "p2c",
            "jiq": "jiq",
            "lrt": "least_response_time",
            "lc": "least_connections",
            "wlc": "weighted_least_connections",
            "jsq": "jsq",
            "lwl": "least_work_left",
        },
        **{"workload.rate": 720},
    ),
    "algorithms.lc-jsq.mean": Versus(
        "algorithms",
        "latency_mean",
        {"policy": "least_connections", "workload.rate": 720},
        {"policy": "jsq", "workload.rate": 720},
    ),
    # instances.
    **{
        f"instances.{short}.{metric}.{n}": Value(
            "instances", metric, {"policy": policy, "balancer.instances": n}
        )
        for short, policy in (
            ("lc", "least_connections"),
            ("p2c", "p2c"),
            ("jsq", "jsq"),
            ("random", "random"),
        )
        for metric in ("latency_mean", "latency_p99")
        for n in (1, 8)
    },
    # l4-vs-l7: load follows connections at layer 4.
    **{
        f"l4-vs-l7.l{layer}.{age}.{metric}": Value(
            "l4-vs-l7", metric, {"balancer.layer": layer, "servers[0].max_connection_age": value}
        )
        for layer in (4, 7)
        for age, value in (("no-age", NO), ("age", 10.0))
        for metric in ("latency_mean", "latency_p99", "imbalance")
    },
    **{
        f"l4-vs-l7.l{layer}.{age}.{server}": Value(
            "l4-vs-l7",
            "utilization",
            {"balancer.layer": layer, "servers[0].max_connection_age": value, "server": server},
            table="servers",
        )
        for layer in (4, 7)
        for age, value in (("no-age", NO), ("age", 10.0))
        for server in ("late-0", "web-0")
    },
    # content-routing.
    "content-routing.canary.share": Share(
        "content-routing", "servers", "n_requests", {"group": "canary"}, {"group": ("canary", "web")}
    ),
    **{
        f"content-routing.{group}.latency_mean": Value(
            "content-routing", "latency_mean", {"group": group}, table="servers"
        )
        for group in ("static", "premium", "web", "canary", "api")
    },
    "content-routing.balancer_utilization": Value("content-routing", "balancer_utilization"),
    # hashing.
    **{
        f"hashing.{short}.{metric}": Value("hashing", metric, {"policy": policy, "balancer.sticky": sticky})
        for short, policy, sticky in (
            ("rr", "round_robin", NO),
            ("rr-sticky", "round_robin", "{by: cookie}"),
            ("ip_hash", "ip_hash", NO),
            ("ring_hash", "ring_hash(key=session)", NO),
            ("maglev", "maglev(key=session)", NO),
            ("bounded", "maglev(key=session, balance_factor=1.25)", NO),
        )
        for metric in ("session_moves", "latency_mean")
    },
    # failover.
    **{
        f"failover.{name}.{metric}": Value(
            "failover",
            metric,
            {"balancer.health_check": checks, "balancer.retries": retries},
            count=metric != "error_rate",
        )
        for name, checks, retries in (
            ("none", NO, NO),
            ("retries", NO, RETRY),
            ("checks", CHECKS, NO),
            ("both", CHECKS, RETRY),
        )
        for metric in ("error_rate", "n_retries", "n_error")
    },
    "failover.detected": Span(
        "failover", "t_start", "t_detected", {"balancer.health_check": CHECKS, "balancer.retries": NO}
    ),
    "failover.restored": Span(
        "failover", "t_end", "t_restored", {"balancer.health_check": CHECKS, "balancer.retries": NO}
    ),
    # gray-failure.
    **{
        f"gray-failure.{short}.{metric}": Value("gray-failure", metric, {"policy": policy})
        for short, policy in (
            ("rr", "round_robin"),
            ("lc", "least_connections"),
            ("p2c", "p2c"),
            ("peak_ewma", "peak_ewma"),
        )
        for metric in ("latency_mean", "error_rate")
    },
    **{
        f"gray-failure.{short}.{server}.share": Share(
            "gray-failure", "servers", "n_requests", {"policy": policy, "server": server}, {"policy": policy}
        )
        for short, policy in (
            ("rr", "round_robin"),
            ("lc", "least_connections"),
            ("p2c", "p2c"),
            ("peak_ewma", "peak_ewma"),
        )
        for server in ("web-0", "web-1")
    },
    # retry-storm.
    **{
        f"retry-storm.{name}.{metric}": Value(
            "retry-storm", metric, {"balancer.retries": retries}, count=metric == "n_retries"
        )
        for name, retries in (
            ("none", NO),
            ("unlimited", "{max: 3, 'on': [timeout], try_timeout: 100ms, max_concurrent: null}"),
            ("breaker", "{max: 3, 'on': [timeout], try_timeout: 100ms}"),
            ("budget", "{max: 3, 'on': [timeout], try_timeout: 100ms, budget: 0.2}"),
        )
        for metric in ("error_rate", "n_retries")
    },
    # balancer-failover.
    **{
        f"balancer-failover.{name}.{metric}": Value(
            "balancer-failover", metric, {"balancer.standby": standby}, count=metric == "n_dropped"
        )
        for name, standby in (("lone", NO), ("standby", "{failover: 3s}"))
        for metric in ("n_dropped", "error_rate")
    },
    # tiers.
    **{
        f"tiers.{target}.{name}.{metric}": Value(
            "tiers",
            metric,
            {"faults[0].target": target, "tiers[1].retries": retries},
            count=metric == "n_error",
        )
        for target in ("balancer-3", "regional-1")
        for name, retries in (
            ("none", NO),
            ("retries", "{max: 1, 'on': [connect_failure], backoff: 0ms, max_concurrent: null}"),
        )
        for metric in ("error_rate", "n_error")
    },
    # geo.
    **{
        f"geo.{ttl}.{region}.error_rate": Value(
            "geo", "error_rate", {"dns.ttl": ttl, "region": region}, table="regions"
        )
        for ttl in (30, 300)
        for region in ("eu", "us")
    },
    **{f"geo.{ttl}.error_rate": Value("geo", "error_rate", {"dns.ttl": ttl}) for ttl in (30, 300)},
    "geo.30.eu.latency_mean": Value("geo", "latency_mean", {"dns.ttl": 30, "region": "eu"}, table="regions"),
    "geo.30.us.latency_mean": Value("geo", "latency_mean", {"dns.ttl": 30, "region": "us"}, table="regions"),
}


def measure(jobs: int | None) -> dict[str, Any]:
    """Run every bundled scenario and capacity search the figures read, afresh, and return
    the sweeps' results by scenario name and the searches by ``capacity:<run>``."""
    import lbsim
    from lbsim.tools import capacity, coverage

    results: dict[str, Any] = {}
    for name in sorted({spec.scenario for spec in SPECS.values() if hasattr(spec, "scenario")}):
        print(f"simulating scenarios/{name}.yaml", file=sys.stderr, flush=True)
        results[name] = lbsim.run_sweep(lbsim.load_scenario(ROOT / "scenarios" / f"{name}.yaml"), jobs=jobs)
    print("measuring interval coverage", file=sys.stderr, flush=True)
    results["coverage"] = coverage.coverage(**COVERAGE, jobs=jobs)
    for run, args in CAPACITY_RUNS.items():
        print(f"searching capacity: {run}", file=sys.stderr, flush=True)
        scenario = lbsim.load_scenario(ROOT / "scenarios" / "capacity.yaml", overrides=args["sets"])
        survival = capacity.parse_survival(args["survive"]) if "survive" in args else None
        objectives = [capacity.parse_objective(text) for text in args["slos"]]
        results[f"capacity:{run}"] = capacity.plan(
            scenario, args["key"], objectives, survival=survival, jobs=jobs
        )
    return results


def render(template: str, figures: Mapping[str, str]) -> dict[str, str]:
    """The blocks of ``template`` (each after a ``<!-- block: NAME -->`` line) by name, with
    each ``[[name]]`` replaced by its figure.

    Raises:
        KeyError: a name has no figure.
    """
    filled = PLACEHOLDER.sub(lambda match: figures[match.group(1)], template)
    parts = BLOCK.split(filled)
    return {name: text.strip() for name, text in zip(parts[1::2], parts[2::2], strict=True)}


def with_lessons(readme: str, blocks: Mapping[str, str]) -> str:
    """``readme`` with the text between each block's markers replaced by the block."""
    for name, text in blocks.items():
        begin, end = BEGIN.format(name=name), END.format(name=name)
        start, stop = readme.index(begin) + len(begin), readme.index(end)
        readme = readme[:start] + "\n" + text + "\n" + readme[stop:]
    return readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite the README from docs/lessons.json (after a template edit)",
    )
    args = parser.parse_args()
    if args.render:
        figures = json.loads(FIGURES.read_text())["figures"]
    else:
        results = measure(args.jobs)
        figures = {name: spec.measure(results) for name, spec in SPECS.items()}
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
        FIGURES.write_text(json.dumps({"commit": commit.stdout.strip(), "figures": figures}, indent=2) + "\n")
    README.write_text(with_lessons(README.read_text(), render(TEMPLATE.read_text(), figures)))
    print(f"{len(figures)} figures of {FIGURES.name} written into {README.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
