"""Capacity planning: the fewest servers (or workers, or balancer cores), or the highest
arrival rate, that meets every service-level objective, found by a monotone search.

The search starts from a queueing-theory estimate (each server an M/M/c queue fed by random
dispatch), brackets the answer by steps that double, then bisects. A probe simulates the
scenario with ``replications`` replications and passes when, for every objective, the 95%
confidence bound on the objective's side meets the threshold, so the answer is conservative.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from lbsim.config.loading import load_scenario
from lbsim.config.overrides import get_path, written
from lbsim.config.scenario import Scenario, fault_targets
from lbsim.config.sweep import expand
from lbsim.errors import ConfigError, shown
from lbsim.results.expectations import check_metric
from lbsim.runner import run_sweep
from lbsim.tools import theory
from lbsim.units import number_or_text, parse_share, parse_threshold

# Kinds of fault --survive accepts: the others need a factor or a probability.
SURVIVE_KINDS = ("crash", "hang")
# A probe whose busiest server is busier than this is saturated: its queue grows for as long
# as the run lasts, so its latency says more about the run length than about the system.
SATURATION = 0.98
# A continuous parameter is settled when the passing and failing values are this close.
RELATIVE_RESOLUTION = 0.01


@dataclass(frozen=True, slots=True)
class Objective:
    """One service-level objective: ``metric <= value`` or ``metric >= value``."""

    metric: str
    sense: Literal["<=", ">="]
    value: float
    text: str

    def met(self, mean: float, half_width: float) -> bool:
        """Whether the confidence bound on the objective's side meets it (NaN bound: the mean)."""
        margin = 0.0 if math.isnan(half_width) else half_width
        if math.isnan(mean):
            return False
        return mean + margin <= self.value if self.sense == "<=" else mean - margin >= self.value


def parse_objective(text: str) -> Objective:
    """``latency_p99<=200ms``, ``error_rate<=0.1%``, ``availability>=99.9%`` -> Objective.

    Latency thresholds take duration units; other metrics a number or a percentage.
    """
    match = re.fullmatch(r"\s*([a-z_0-9]+)\s*(<=|>=)\s*(\S+)\s*", text)
    if match is None:
        raise ConfigError(f"--slo must be written metric<=value or metric>=value; got {shown(text)}.")
    metric, sense, raw = match.groups()
    try:
        check_metric(metric)
    except ConfigError as exc:
        raise ConfigError(f"--slo {exc}") from None
    try:
        value = parse_threshold(metric, number_or_text(raw))
    except ConfigError as exc:
        raise ConfigError(f"--slo {metric} {exc}") from None
    return Objective(metric, sense, value, text.strip())  # type: ignore[arg-type]


def _number(text: str, where: str) -> float:
    try:
        return parse_share(number_or_text(text))
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc}") from None


def parse_range(text: str) -> tuple[float, float]:
    """``LO..HI`` -> (LO, HI), LO < HI."""
    low, sep, high = text.partition("..")
    if not sep:
        raise ConfigError(f"--range must be written LO..HI; got {shown(text)}.")
    bounds = _number(low.strip(), "--range LO"), _number(high.strip(), "--range HI")
    if not 0 < bounds[0] < bounds[1]:
        raise ConfigError(f"--range must have 0 < LO < HI; got {shown(text)}.")
    return bounds


def unsaturated(objectives: list[Objective]) -> list[Objective]:
    """``objectives`` and, unless one of them already implies it, ``utilization_max <= SATURATION``."""
    if any(o.metric == "utilization_max" and o.sense == "<=" and o.value <= SATURATION for o in objectives):
        return objectives
    return [*objectives, Objective("utilization_max", "<=", SATURATION, f"utilization_max<={SATURATION}")]


@dataclass(frozen=True, slots=True)
class Survival:
    """A fault the answer must also survive, present for the whole run (N+1 planning).

    ``text`` is ``[crash|hang] N server(s)`` (the last N servers of the varied group, or of
    the first group) or ``[crash|hang] TARGET`` (a server, a group, ``zone:<z>``).
    """

    kind: str
    servers: int | None
    target: str | None
    text: str

    def faults(self, scenario: Scenario, group: int) -> list[dict[str, Any]]:
        """The fault entries to add to ``scenario``, from before warm-up to past the end."""
        timing = {"at": 0.0, "duration": 2 * scenario.duration + 1}
        if self.servers is not None:
            chosen = scenario.servers[group]
            if self.servers >= chosen.count:
                return [{"target": chosen.name, "kind": self.kind, **timing}]
            names = [f"{chosen.name}-{i}" for i in range(chosen.count - self.servers, chosen.count)]
            return [{"target": name, "kind": self.kind, **timing} for name in names]
        if fault_targets(scenario, self.target or "") is None:
            raise ConfigError(
                f"--survive must name a server, a group or zone:<zone>; got {shown(self.target)}."
            )
        return [{"target": self.target, "kind": self.kind, **timing}]


def parse_survival(text: str) -> Survival:
    """``crash 1 server``, ``hang 2 servers``, ``zone:a``, ``crash web-3`` -> Survival."""
    words = text.split()
    kind = words.pop(0) if words and words[0] in SURVIVE_KINDS else "crash"
    if len(words) == 2 and words[0].isdigit() and words[1] in ("server", "servers") and int(words[0]) > 0:
        return Survival(kind, int(words[0]), None, text.strip())
    if len(words) == 1 and not words[0].isdigit():
        return Survival(kind, None, words[0], text.strip())
    raise ConfigError(
        f"--survive must be '[{'|'.join(SURVIVE_KINDS)}] N servers' or '[{'|'.join(SURVIVE_KINDS)}] "
        f"TARGET' (a server, a group, zone:<zone>); got {shown(text)}."
    )


@dataclass(frozen=True, slots=True)
class Parameter:
    """The varied key: whether it is a count, and which way is better."""

    key: str
    integer: bool
    maximize: bool
    low: float
    high: float

    def settled(self, passing: float, failing: float) -> bool:
        """Whether no value between the two can still be probed usefully."""
        if self.integer:
            return abs(passing - failing) <= 1
        return abs(passing - failing) <= RELATIVE_RESOLUTION * max(abs(passing), abs(failing))

    def clamp(self, value: float) -> float:
        value = min(max(value, self.low), self.high)
        return float(round(value)) if self.integer else value

    def toward(self, value: float, step: float, easier: bool) -> float:
        """``value`` moved ``step`` toward easier (more capacity) or harder, within the range."""
        up = easier != self.maximize
        if self.integer:
            return self.clamp(value + step if up else value - step)
        return self.clamp(value * (1 + 0.1 * step) if up else value / (1 + 0.1 * step))

    def between(self, a: float, b: float) -> float:
        if self.integer:
            return float(math.floor((a + b) / 2))
        return math.sqrt(a * b)

    def values(self) -> int:
        """How many values a full sweep of the range at the search's resolution would probe."""
        if self.integer:
            return int(self.high - self.low) + 1
        return math.ceil(math.log(self.high / self.low) / math.log1p(RELATIVE_RESOLUTION)) + 1

    def show(self, value: float) -> str:
        return str(int(value)) if self.integer else f"{value:.4g}"


def parameter(scenario: Scenario, key: str, bounds: tuple[float, float] | None) -> Parameter:
    """Describe the varied key of ``scenario``; its current value must be a positive number."""
    rule = "--vary must name a number in the scenario, such as servers[0].count"
    try:
        current = get_path(scenario, key)
    except (KeyError, IndexError, AttributeError, TypeError):
        raise ConfigError(f"{rule}; got {shown(key)}.") from None
    if isinstance(current, bool) or not isinstance(current, int | float):
        # What the path reaches may be a list, a section or a method: not worth echoing.
        raise ConfigError(f"{rule}; got {shown(key)}, which is not a number.")
    if current <= 0:
        raise ConfigError(
            f"--vary must name a positive number in the scenario; got {shown(key)} = {shown(current)}."
        )
    integer = isinstance(current, int)
    maximize = key.endswith("rate")
    if bounds is None:
        bounds = (1.0, max(64.0, 16.0 * current)) if integer else (current / 100, current * 100)
    if integer and (bounds[0] != int(bounds[0]) or bounds[1] != int(bounds[1])):
        raise ConfigError(f"--range must be whole numbers for {key}; got {bounds[0]:g}..{bounds[1]:g}.")
    return Parameter(key, integer, maximize, bounds[0], bounds[1])


# The most servers (or workers) the analytic estimate considers.
ESTIMATE_LIMIT = 100_000

# Quantiles of the latency metrics, for the floor that no capacity lowers.
LATENCY_QUANTILES = {"latency_p50": 0.5, "latency_p90": 0.9, "latency_p99": 0.99, "latency_p999": 0.999}


def unqueued_latency(scenario: Scenario, metric: str) -> float | None:
    """The ``metric`` requests would have if none ever waited: their size at the fastest
    server's speed plus every tier's processing cost (TLS, the network and retries left
    out), a lower bound that no added server, worker or core lowers. The mean is exact; a
    percentile is the quantile of 200,000 sizes drawn with seed 0. None for other metrics."""
    speed = max(group.speed for group in scenario.servers)
    cost = sum(tier.cost_per_request for tier in [scenario.balancer, *scenario.tiers])
    size = scenario.workload.size
    if metric == "latency_mean":
        return size.mean / speed + cost
    if metric not in LATENCY_QUANTILES:
        return None
    sizes = size.sample(np.random.default_rng(0), 200_000)
    return float(np.quantile(sizes, LATENCY_QUANTILES[metric])) / speed + cost


def check_reachable(scenario: Scenario, key: str, objectives: list[Objective]) -> None:
    """Raise when a latency objective is below what requests take with no queueing at all
    and varying ``key`` cannot change that (anything but a server speed or the request
    size): the search would only run to the end of its range. A 2% margin covers the
    sampling of percentiles.

    Raises:
        ConfigError: naming the objective and the latency no capacity goes below.
    """
    if key.endswith(".speed") or key.startswith("workload.size"):
        return
    for objective in objectives:
        floor = unqueued_latency(scenario, objective.metric) if objective.sense == "<=" else None
        if floor is not None and floor > 1.02 * objective.value:
            raise ConfigError(
                f"--slo {objective.text} cannot be met by varying {key}: with no queueing at all "
                f"{objective.metric} is {floor * 1000:.4g} ms ({scenario.workload.size} at speed "
                f"{max(g.speed for g in scenario.servers):g}, plus the balancer's processing); "
                "loosen the objective, or vary a server speed."
            )


@dataclass(frozen=True, slots=True)
class Estimate:
    """The analytic answer and how it was found."""

    value: float | None
    method: str


def estimate(scenario: Scenario, key: str, objectives: list[Objective]) -> Estimate:
    """Queueing theory's answer, treating each server of the varied group (or of the first)
    as an M/M/c queue with exponential sizes of the workload's mean, fed by random dispatch
    (exact for random over identical servers; smarter policies need fewer). The balancer's
    processing is left out, except for ``balancer.cores``, whose estimate is its stability
    bound. Objectives on errors, sessions and the like do not enter."""
    rate = scenario.workload.rate
    if rate is None:
        return Estimate(None, "none: closed-loop users have no fixed arrival rate")
    assert isinstance(rate, float)  # a Scenario resolves a share of capacity into a rate
    match = re.fullmatch(r"servers\[(\d+)\]\.(count|workers)", key)
    group = scenario.servers[int(match.group(1)) if match else 0]
    service_rate = group.speed / scenario.workload.size.mean
    others = sum(g.count for g in scenario.servers) - group.count
    if key == "balancer.cores":
        return _cores_estimate(scenario, rate, objectives)

    def meets(n_servers: int, workers: int, arrival_rate: float) -> bool:
        per_server = arrival_rate / n_servers
        if per_server >= workers * service_rate:
            return False
        for objective in objectives:
            value = _mmc_metric(objective.metric, workers, per_server, service_rate)
            if value is not None and not objective.met(value, 0.0):
                return False
        return True

    method = "M/M/c per server, random dispatch, exponential sizes"
    if match:
        counting = match.group(2) == "count"

        def enough(n: int) -> bool:
            if counting:
                return meets(others + n, group.workers, rate)
            return meets(group.count + others, n, rate)

        if not enough(ESTIMATE_LIMIT):
            # No queueing left at all, and still missed: the service time alone misses.
            return Estimate(None, "none: exponential sizes of this mean miss the objectives even unqueued")
        return Estimate(float(next(n for n in range(1, ESTIMATE_LIMIT + 1) if enough(n))), method)
    if key == "workload.rate":
        servers = others + group.count
        low, high = 0.0, servers * group.workers * service_rate
        while high - low > 1e-6 * high:
            middle = (low + high) / 2
            low, high = (middle, high) if meets(servers, group.workers, middle) else (low, middle)
        return Estimate(low, method) if low > 0 else Estimate(None, "none: no load meets the objectives")
    return Estimate(None, f"none: no analytic model for {key}")


def _cores_estimate(scenario: Scenario, rate: float, objectives: list[Objective]) -> Estimate:
    """Cores for the balancer's processing load (requests, and TLS handshakes spread over a
    connection's requests): the busy cores per instance over the utilization objective, or
    the stability bound without one."""
    config = scenario.balancer
    cost = config.cost_per_request
    if config.tls is not None:
        per_connection = scenario.workload.connection.requests
        cost += config.tls.per_request + (config.tls.handshake / per_connection if per_connection else 0.0)
    busy = rate / config.instances * cost
    limits = [o.value for o in objectives if o.metric == "balancer_utilization" and o.sense == "<="]
    if limits:
        return Estimate(
            float(max(1, math.ceil(busy / min(limits)))), "processing load over the utilization objective"
        )
    return Estimate(float(math.floor(busy) + 1), "stability bound: cores > busy cores per instance")


def _mmc_metric(metric: str, workers: int, arrival_rate: float, service_rate: float) -> float | None:
    if metric == "latency_mean":
        return theory.mmc_response_mean(workers, arrival_rate, service_rate)
    if metric in LATENCY_QUANTILES:
        return theory.mmc_response_quantile(workers, arrival_rate, service_rate, LATENCY_QUANTILES[metric])
    if metric in ("utilization_mean", "utilization_max"):
        return arrival_rate / (workers * service_rate)
    return None


@dataclass(slots=True)
class Search:
    """The probes of one policy's search and its answer."""

    policy: str
    estimate: Estimate
    full_sweep: int
    probes: list[dict[str, Any]] = field(default_factory=list)
    answer: float | None = None


def search(
    parameter: Parameter,
    start: float,
    passes: Callable[[float], bool],
) -> float | None:
    """The best value of ``parameter`` for which ``passes`` holds, assuming it holds on one
    side of a threshold: probe ``start``, step away (doubling the step) until the outcome
    flips, then bisect. None when even the easiest value of the range fails."""
    value = parameter.clamp(start)
    outcome = passes(value)
    same, flipped = _bracket(parameter, value, outcome, passes)
    if flipped is None:
        return same if outcome else None
    passing, failing = (same, flipped) if outcome else (flipped, same)
    while not parameter.settled(passing, failing):
        middle = parameter.between(passing, failing)
        if passes(middle):
            passing = middle
        else:
            failing = middle
    return passing


def _bracket(
    parameter: Parameter, value: float, outcome: bool, passes: Callable[[float], bool]
) -> tuple[float, float | None]:
    """Step from ``value`` toward harder values when it passes (easier when it fails),
    doubling the step, until the outcome flips: the last value with ``value``'s outcome and
    the first with the other (None when the range ends first)."""
    step = 1.0
    while True:
        candidate = parameter.toward(value, step, easier=not outcome)
        if candidate == value:
            return value, None
        if passes(candidate) != outcome:
            return value, candidate
        value, step = candidate, 2 * step


def plan(
    scenario: Scenario,
    key: str,
    objectives: list[Objective],
    *,
    bounds: tuple[float, float] | None = None,
    survival: Survival | None = None,
    replications: int = 3,
    jobs: int | None = None,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Search]:
    """Search the capacity of ``scenario`` for each policy it sweeps (or its one policy).

    Every probe must also be unsaturated (``utilization_max <= SATURATION``) unless a
    stricter utilization objective is given: a saturated run's latency grows with its length.

    Raises:
        ConfigError: the scenario sweeps anything but ``balancer.policy``, or an argument is bad.
    """
    if not objectives:
        raise ConfigError("--slo must be given at least once; got nothing.")
    if replications < 2:
        raise ConfigError(f"replications must be >= 2 for confidence bounds; got {replications}.")
    other_axes = [axis for axis in scenario.sweep if axis != "balancer.policy"]
    if other_axes:
        raise ConfigError(
            f"capacity sweeps only balancer.policy; fix {other_axes[0]} with --set; got a sweep over it."
        )
    varied = parameter(scenario, key, bounds)
    objectives = unsaturated(objectives)
    match = re.fullmatch(r"servers\[(\d+)\]\.\w+", key)
    group = int(match.group(1)) if match else 0
    if survival is not None:
        survival.faults(scenario, group)
    searches = []
    for cell in expand(scenario):
        policy_scenario = cell.scenario
        check_reachable(policy_scenario, key, objectives)
        guess = estimate(policy_scenario, key, objectives)
        result = Search(policy_scenario.policy_label(), guess, varied.values())
        start = guess.value if guess.value is not None else float(get_path(policy_scenario, key))

        def passes(value: float, base: Scenario = policy_scenario, result: Search = result) -> bool:
            shown = varied.show(value)
            probe = load_scenario(base, overrides=[(key, int(value) if varied.integer else value)])
            variants = [("normal", probe)]
            if survival is not None:
                faults = [*(written(probe, "faults") or []), *survival.faults(probe, group)]
                variants.append((survival.text, load_scenario(probe, overrides=[("faults", faults)])))
            ok = True
            for variant, variant_scenario in variants:
                table = run_sweep(variant_scenario, jobs=jobs, seed=seed, replications=replications).table
                row = table.iloc[0]
                met = [o.met(float(row[o.metric]), float(row[f"{o.metric}_ci"])) for o in objectives]
                result.probes.append(
                    {
                        "policy": result.policy,
                        key: value,
                        "variant": variant,
                        **{c: row[c] for o in objectives for c in (o.metric, f"{o.metric}_ci")},
                        "passes": all(met),
                    }
                )
                ok = ok and all(met)
                if not ok:
                    break
            if progress:
                progress(f"{result.policy}: {key} = {shown}: {'meets' if ok else 'misses'} the objectives")
            return ok

        result.answer = search(varied, start, passes)
        searches.append(result)
    return searches


def probes_table(searches: list[Search]) -> pd.DataFrame:
    """Every probe of every search, in the order they ran."""
    return pd.DataFrame([probe for s in searches for probe in s.probes])
