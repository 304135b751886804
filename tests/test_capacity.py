"""lbsim capacity: the answer on systems whose answer theory knows, the search, the objectives."""

import math

import pytest
import yaml
from click.testing import CliRunner

from lbsim import load_scenario
from lbsim.cli import main
from lbsim.errors import ConfigError
from lbsim.tools import theory
from lbsim.tools.capacity import Parameter, estimate, parse_objective, parse_survival, plan, search
from tests.helpers import make_scenario

MU, LAMBDA, TARGET = 100.0, 400.0, 0.1  # exp(10ms) sizes, 400/s, p99 <= 100 ms


def random_dispatch(**changes):
    """Random dispatch over identical M/M/1 servers: p99 = ln(100) / (mu - lambda / n)."""
    base = {
        "name": "capacity",
        "duration": 150.0,
        "warmup": 5.0,
        "workload": {"arrivals": "poisson", "rate": LAMBDA, "size": "exp(10ms)"},
        "servers": [{"name": "web", "count": 4}],
        "balancer": {"policy": "random"},
    }
    return make_scenario(**{**base, **changes})


def smallest_n_by_theory():
    return next(n for n in range(1, 100) if LAMBDA / n < MU and math.log(100) / (MU - LAMBDA / n) <= TARGET)


def capacity(tmp_path, scenario, *args):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return CliRunner().invoke(main, ["capacity", str(path), "--out", str(tmp_path / "out"), *map(str, args)])


@pytest.mark.slow
def test_random_dispatch_needs_the_servers_the_p99_formula_gives(tmp_path):
    n = smallest_n_by_theory()
    assert n == 8  # ln(100) / (100 - 400 / 8) = 92 ms; with 7 servers 107 ms
    result = capacity(
        tmp_path, random_dispatch(), "--vary", "servers[0].count", "--slo", "latency_p99<=100ms",
        "--replications", 6,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = int(result.output.strip().splitlines()[-1].removeprefix("servers[0].count = "))
    # The conservative bound may ask for one more server than theory, never fewer.
    assert answer in (n, n + 1)
    assert "conservative" in result.output
    assert f"analytic estimate servers[0].count = {n} " in result.output
    assert (tmp_path / "out" / "capacity.csv").exists() and (tmp_path / "out" / "capacity.png").exists()


@pytest.mark.slow
def test_mmc_workers_follow_erlang_c_for_a_mean_latency_target():
    # One server with c workers sharing a queue is M/M/c: lambda 80/s, mean size 100 ms.
    needed = next(c for c in range(9, 30) if theory.mmc_response_mean(c, 80.0, 10.0) <= 0.14)
    assert needed == 10  # 0.1205 s with 10 workers, 0.1653 s with 9
    scenario = load_scenario(
        make_scenario(
            duration=200.0,
            warmup=10.0,
            workload={"arrivals": "poisson", "rate": 80, "size": "exp(100ms)"},
            servers=[{"name": "big", "count": 1, "workers": 9}],
        )
    )
    [found] = plan(scenario, "servers[0].workers", [parse_objective("latency_mean<=140ms")], replications=4)
    assert found.estimate.value == needed
    assert found.answer in (needed, needed + 1)
    assert any(p["servers[0].workers"] == needed - 1 and not p["passes"] for p in found.probes)


@pytest.mark.slow
def test_the_largest_rate_stays_within_the_formula():
    # With 8 servers: lambda_max = 8 (mu - ln(100) / 0.1) = 431.6/s.
    limit = 8 * (MU - math.log(100) / TARGET)
    scenario = load_scenario(random_dispatch(servers=[{"name": "web", "count": 8}]))
    [found] = plan(scenario, "workload.rate", [parse_objective("latency_p99<=100ms")], replications=4)
    assert found.estimate.value == pytest.approx(limit, rel=1e-4)
    assert 0.9 * limit <= found.answer <= 1.01 * limit


@pytest.mark.slow
def test_each_policy_gets_its_answer_and_surviving_a_crash_needs_one_more(tmp_path):
    checks = {"interval": "1s", "timeout": "500ms", "fall": 2, "rise": 2}
    scenario = random_dispatch(
        warmup=10.0, balancer={"policy": "random", "health_check": checks},
        sweep={"balancer.policy": ["random", "least_connections"]},
    )  # fmt: skip
    result = capacity(
        tmp_path, scenario, "--vary", "servers[0].count", "--slo", "latency_p99<=100ms",
        "--slo", "error_rate<=1%", "--survive", "crash 1 server", "--replications", 4,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-2:]
    answers = {line.split("(")[1].rstrip(")"): int(line.split("=")[1].split()[0]) for line in last}
    n = smallest_n_by_theory()
    # Random over the n - 1 survivors must meet the objective: one more than without the crash.
    assert answers["random"] in (n + 1, n + 2)
    assert answers["least_connections"] < answers["random"]


def test_no_value_in_the_range_exits_1_naming_the_closest_miss(tmp_path):
    scenario = random_dispatch(duration=20.0)
    result = capacity(
        tmp_path, scenario, "--vary", "servers[0].count", "--slo", "latency_p99<=100ms", "--range", "1..4"
    )
    assert result.exit_code == 1
    assert "no value of servers[0].count in the range" in result.output
    assert "closest: servers[0].count = 4 (normal) with latency_p99 =" in result.output


def test_an_objective_below_the_unqueued_latency_is_refused_before_any_simulation(tmp_path):
    # exp(10ms) sizes: with no queueing at all p99 is 10 ms x ln(100) = 46.05 ms, so no
    # number of servers gets it to 40 ms; a mean of 10 ms can never be 9 ms.
    for slo, floor in (("latency_p99<=40ms", 10 * math.log(100)), ("latency_mean<=9ms", 10.0)):
        result = capacity(tmp_path, random_dispatch(), "--vary", "servers[0].count", "--slo", slo)
        assert result.exit_code == 2, result.output
        refusal = f"--slo {slo} cannot be met by varying servers[0].count: with no queueing at all"
        assert refusal in result.output
        shown = float(result.output.split(" is ")[1].split(" ms")[0])
        assert shown == pytest.approx(floor, rel=0.01)  # percentiles from 200,000 draws
        assert not (tmp_path / "out").exists()


def test_the_estimate_says_none_when_exponential_sizes_never_meet_the_objective():
    # Deterministic 10 ms sizes can meet p99 <= 20 ms (unqueued they take 10 ms), but the
    # M/M/c estimate assumes exponential sizes, whose p99 is 46 ms even unqueued: no number.
    scenario = load_scenario(random_dispatch(workload={"rate": LAMBDA, "size": "det(10ms)"}))
    guess = estimate(scenario, "servers[0].count", [parse_objective("latency_p99<=20ms")])
    assert guess.value is None and "even unqueued" in guess.method


def test_the_search_brackets_then_bisects():
    probed = []

    def at_least_37(value):
        probed.append(value)
        return value >= 37

    counts = Parameter("servers[0].count", integer=True, maximize=False, low=1, high=1000)
    assert search(counts, 5, at_least_37) == 37
    # Steps 1, 2, 4, 8, 16, 32 bracket 37 in [36, 68], then bisection: far fewer than 1000 probes.
    assert len(probed) <= 13 and len(set(probed)) == len(probed)
    rates = Parameter("workload.rate", integer=False, maximize=True, low=1, high=10_000)
    best = search(rates, 100.0, lambda rate: rate <= 431.6)
    assert 431.6 / 1.01 <= best <= 431.6


def test_nothing_passing_at_the_easiest_end_gives_none():
    counts = Parameter("servers[0].count", integer=True, maximize=False, low=1, high=10)
    assert search(counts, 3, lambda value: False) is None


@pytest.mark.parametrize(
    ("text", "metric", "sense", "value"),
    [
        ("latency_p99<=200ms", "latency_p99", "<=", 0.2),
        ("error_rate <= 0.1%", "error_rate", "<=", 0.001),
        ("availability>=0.999", "availability", ">=", 0.999),
        ("utilization_max<=0.8", "utilization_max", "<=", 0.8),
    ],
)
def test_objectives_are_parsed_never_evaluated(text, metric, sense, value):
    objective = parse_objective(text)
    assert (objective.metric, objective.sense) == (metric, sense)
    assert objective.value == pytest.approx(value)


def test_an_objective_meets_on_its_confidence_bound():
    objective = parse_objective("latency_p99<=100ms")
    assert objective.met(0.09, 0.009) and not objective.met(0.095, 0.009)
    assert parse_objective("availability>=0.99").met(0.995, 0.004)
    assert not parse_objective("availability>=0.99").met(0.995, 0.006)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "latency_p99<200ms"], "--slo must be written metric<=value or metric>=value; got"),
        (["--slo", "latency_p98<=200ms"], "Did you mean 'latency_p99'?"),
        (["--slo", "latency_p99<=fast"], "--slo latency_p99 must be a duration"),
        (["--slo", "error_rate<=0.1", "--range", "5..2"], "--range must have 0 < LO < HI; got '5..2'."),
        (["--slo", "error_rate<=0.1", "--survive", "melt 2 servers"], "--survive must be"),
        (["--slo", "error_rate<=0.1", "--survive", "crash db-1"], "--survive must name a server"),
    ],
)
def test_bad_arguments_are_one_line_with_exit_2_and_nothing_written(tmp_path, args, message):
    result = capacity(tmp_path, random_dispatch(duration=10.0), "--vary", "servers[0].count", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["balancer.policy", "servers.count"])
def test_vary_must_name_a_number(tmp_path, key):
    result = capacity(tmp_path, random_dispatch(), "--vary", key, "--slo", "error_rate<=0.1")
    assert result.exit_code == 2
    # servers.count reaches a list's count method: the rule is named, not the method echoed.
    assert result.output.strip() == (
        f"error: --vary must name a number in the scenario, such as servers[0].count; got {key!r}, "
        "which is not a number."
    )


def test_survival_grammar():
    assert parse_survival("crash 1 server").servers == 1
    assert parse_survival("hang 2 servers").kind == "hang"
    assert parse_survival("zone:a").target == "zone:a"
    with pytest.raises(ConfigError):
        parse_survival("crash")
