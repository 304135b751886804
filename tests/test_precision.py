"""Run until precise: replications added per swept point, in rounds, until a half-width
target holds in every cell (lbsim.precision; Law 2015, section 9.4.1)."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from lbsim.cli import main
from lbsim.config.loading import load_scenario
from lbsim.config.precision import PrecisionModel
from lbsim.errors import ConfigError, file_named
from lbsim.limits import PILOT_REPLICATIONS
from lbsim.precision import next_replications, relative_half_widths, run_until_precise
from lbsim.runner import RunCache, run_sweep, sweep_plan
from tests.helpers import make_scenario


def _sweep(rounds, spreads):
    """A sweep whose cell c has value 1 and relative half-width spreads[c] / sqrt(n)."""

    def sweep(counts):
        rounds.append(list(counts))
        widths = [spread / math.sqrt(n) for spread, n in zip(spreads, counts, strict=True)]
        table = pd.DataFrame(
            {
                "policy": [f"p{c}" for c in range(len(counts))],
                "latency_p99": [1.0] * len(counts),
                "latency_p99_ci": widths,
            }
        )
        return SimpleNamespace(table=table, keys=["scenario", "policy"])

    return sweep


def test_a_cell_grows_as_its_half_width_shrinks_with_the_square_root():
    # From 10: 0.4 / sqrt(10) = 0.1265; n = ceil(10 x (0.1265 / 0.05)^2) = ceil(64.0) = 64,
    # and 0.4 / 8 = 0.05 meets 5%. Cell 1 (0.1 / sqrt(10) = 3.2%) meets it at once.
    rounds = []
    _, missed = run_until_precise(_sweep(rounds, [0.4, 0.1]), [0, 1], PrecisionModel(relative=0.05), 10)
    assert rounds == [[10, 10], [64, 10]] and missed == []


def test_the_cells_of_one_swept_point_share_the_count_of_the_widest():
    # Cells 0 and 1 are two policies at one point: both take cell 0's 64 (see above), so they
    # stay paired replication by replication.
    rounds = []
    run_until_precise(_sweep(rounds, [0.4, 0.1]), [0, 0], PrecisionModel(relative=0.05), 10)
    assert rounds == [[10, 10], [64, 64]]


def test_at_the_maximum_the_cells_that_miss_are_named():
    rounds = []
    precision = PrecisionModel(relative=0.01, max_replications=20)
    _, missed = run_until_precise(_sweep(rounds, [0.2, 0.1]), [0, 1], precision, 10)
    assert rounds == [[10, 10], [20, 20]]
    # 0.2 / sqrt(20) = 4.47%; 0.1 / sqrt(20) = 2.24%; both above 1%.
    assert missed == [
        "policy=p0: latency_p99 half-width 4.47% of its value after 20 replications (target 1.00%)",
        "policy=p1: latency_p99 half-width 2.24% of its value after 20 replications (target 1.00%)",
    ]


def test_each_round_adds_at_least_one_replication():
    # 5.1% after 10 asks ceil(10 x 1.0404) = 11: one more, not a round that adds nothing.
    assert next_replications(10, 0.051, PrecisionModel(relative=0.05)) == 11
    assert next_replications(10, 0.05, PrecisionModel(relative=0.05)) == 10
    assert next_replications(10, math.nan, PrecisionModel(relative=0.05)) == 10


def test_a_metric_without_a_value_is_never_precise():
    def sweep(counts):
        table = pd.DataFrame({"policy": ["a"], "latency_p99": [math.nan], "latency_p99_ci": [math.nan]})
        return SimpleNamespace(table=table, keys=["scenario", "policy"])

    _, missed = run_until_precise(sweep, [0], PrecisionModel(relative=0.05), 10)
    assert missed == ["policy=a: latency_p99 has no value, so no precision"]


def test_a_metric_known_exactly_meets_any_target():
    table = pd.DataFrame({"error_rate": [0.0, 0.1], "error_rate_ci": [0.0, 0.01]})
    assert list(relative_half_widths(table, "error_rate")) == pytest.approx([0.0, 0.1])


def _poisson(**changes):
    return make_scenario(
        **{"duration": 4.0, "workload": {"arrivals": "poisson", "rate": 50, "size": "exp(10ms)"}, **changes}
    )


def test_the_scenario_key_runs_each_point_to_its_own_count(tmp_path):
    # Two loads: at 0.2 the mean latency varies less between runs than at 0.5, so the
    # heavier point needs more replications than the lighter one, and both start at 10.
    scenario = _poisson(
        precision={"metric": "latency_mean", "relative": "5%", "max_replications": 60},
        sweep={"workload.rate": [20, 50]},
    )
    result = run_sweep(scenario, jobs=1, cache=RunCache(tmp_path / "cache"))
    counts = dict(zip(result.table["workload.rate"], result.table["replications"], strict=True))
    assert counts[20.0] >= PILOT_REPLICATIONS and counts[50.0] > counts[20.0]
    widths = relative_half_widths(result.table, "latency_mean")
    assert all(widths <= 0.05) and result.notes == []


def test_a_new_target_reuses_the_runs_of_an_earlier_one(tmp_path):
    cache = RunCache(tmp_path / "cache")
    loose = run_sweep(_poisson(precision={"metric": "latency_mean", "relative": "20%"}), jobs=1, cache=cache)
    tight = run_sweep(_poisson(precision={"metric": "latency_mean", "relative": "3%"}), jobs=1, cache=cache)
    assert int(loose.table["replications"].iloc[0]) == PILOT_REPLICATIONS
    assert int(tight.table["replications"].iloc[0]) > PILOT_REPLICATIONS
    assert tight.n_cached >= PILOT_REPLICATIONS


def test_the_same_scenario_stops_at_the_same_count_however_it_runs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_poisson(sweep={"workload.rate": [30, 70]})))
    for jobs in ("1", "2"):
        args = ["run", str(path), "--out", str(tmp_path / f"out{jobs}"), "--jobs", jobs, "--precision", "10%"]
        result = CliRunner().invoke(main, [*args, "--precision-metric", "latency_mean"])
        assert result.exit_code == 0, result.output
    one, two = ((tmp_path / f"out{jobs}" / "summary.csv").read_bytes() for jobs in "12")
    assert one == two
    counts = pd.read_csv(tmp_path / "out1" / "table.csv")["replications"]
    assert counts.min() >= PILOT_REPLICATIONS
    span = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
    assert (
        f"Seed 1, {span} replication(s) per cell (as many as each cell's latency_mean needed to be known "
        "to within 10.0% of its value, or at most 100; table.csv's replications)"
    ) in (tmp_path / "out1" / "report.md").read_text()


def test_a_bad_precision_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(duration=1.0)))
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--precision", "150%"])
    assert result.exit_code == 2 and not out.exists()
    assert result.output.strip() == (
        f"error: {file_named(path)}: precision.relative must be a share of the value in (0%, 100%); "
        "got '150%'."
    )


def test_precision_options_are_checked_together(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(duration=1.0)))
    base = ["run", str(path), "--out", str(tmp_path / "o")]
    too_many = CliRunner().invoke(
        main, [*base, "--precision", "5%", "--replications", "50", "--max-replications", "20"]
    )
    assert too_many.output.strip() == (
        f"error: {file_named(path)} (--replications): replications must be at most "
        "precision.max_replications (20); got 50."
    )
    metric = CliRunner().invoke(main, [*base, "--precision", "5%", "--precision-metric", "nope"])
    assert metric.output.startswith(f"error: {file_named(path)}: precision.metric: unknown metric 'nope'.")
    alone = CliRunner().invoke(main, [*base, "--precision-metric", "latency_mean"])
    assert alone.exit_code == 2
    assert alone.output.strip() == (
        f"error: {file_named(path)}: --precision-metric and --max-replications need a target: "
        "--precision SHARE, or precision.relative in the scenario; got neither."
    )
    fraction = CliRunner().invoke(main, [*base, "--precision", "0.05", "--quiet"])
    assert fraction.exit_code == 0, fraction.output


@pytest.mark.parametrize("key", ["seed", "replications", "precision.relative", "expect"])
def test_a_sweep_cannot_vary_what_the_whole_run_shares(key):
    with pytest.raises(ConfigError, match=f"sweep must vary what a cell simulates.*got '{key}'"):
        load_scenario(make_scenario(sweep={key: [1, 2]}))


def test_a_sweep_listing_one_value_twice_is_refused_before_anything_runs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(sweep={"workload.rate": [10, 20, 10.0]})))
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert result.output.strip() == (
        f"error: {file_named(path)}: sweep cells 0 and 2 are the same cell (workload.rate=10.0): "
        "a sweep must list each value once."
    )


def test_the_plan_warns_of_runs_too_short_for_a_percentile_interval():
    # 50 requests/s for 4 s: 200 measured requests, 1% of them (2) beyond the p99.
    short = load_scenario(_poisson(precision={"relative": "5%"}))
    assert sweep_plan(short, 10).warnings[-1:] == [
        "about 2 requests per run lie beyond latency_p99, so an interval over many such runs covers "
        "less than 95% (lbsim coverage: 90.8% with 20 beyond, 94.0% with 100); runs of 100 or more "
        "beyond it fix that"
    ]
    # 50/s for 400 s minus 100 s of warm-up: 15,000 measured, 150 beyond; a mean has no tail.
    long = load_scenario(_poisson(precision={"relative": "5%"}, duration=400.0, warmup=100.0))
    mean = load_scenario(_poisson(precision={"relative": "5%", "metric": "latency_mean"}))
    assert sweep_plan(long, 10).warnings == []
    assert not any("beyond" in warning for warning in sweep_plan(mean, 10).warnings)


def test_a_metric_that_is_not_a_name_is_one_line():
    with pytest.raises(ConfigError, match=r"precision.metric must be a metric name; got \['latency_mean'\]"):
        load_scenario(make_scenario(precision={"relative": "5%", "metric": ["latency_mean"]}))


def test_runs_an_earlier_round_simulated_are_not_counted_as_cached(tmp_path):
    scenario = _poisson(precision={"metric": "latency_mean", "relative": "3%"})
    result = run_sweep(scenario, jobs=1, cache=RunCache(tmp_path / "cache"))
    assert int(result.table["replications"].iloc[0]) > PILOT_REPLICATIONS  # more than one round
    assert result.n_cached == 0 and result.cells[0]["status"] == "done"


def test_the_metric_flag_takes_a_target_set_with_set(tmp_path):
    # --set precision.relative=... is a target as much as --precision is.
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_poisson()))
    args = ["run", str(path), "--out", str(tmp_path / "o"), "--jobs", "1", "--quiet"]
    result = CliRunner().invoke(
        main, [*args, "--set", "precision.relative=20%", "--precision-metric", "latency_mean"]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "o" / "table.csv")["replications"].iloc[0] == PILOT_REPLICATIONS
