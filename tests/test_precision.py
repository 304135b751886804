"""--precision: replications added in rounds until a half-width target holds in every cell."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from lbsim.cli import main
from lbsim.precision import Precision, relative_half_widths, run_until_precise
from tests.helpers import make_scenario


def _sweep(rounds):
    """A sweep whose two cells' relative half-widths are 0.2 / sqrt(n) and 0.1 / sqrt(n)."""

    def sweep(n):
        rounds.append(n)
        half_width = 0.2 / math.sqrt(n)
        table = pd.DataFrame(
            {"policy": ["a", "b"], "latency_p99": [1.0, 2.0], "latency_p99_ci": [half_width] * 2}
        )
        return SimpleNamespace(table=table, keys=["scenario", "policy"])

    return sweep


def test_rounds_grow_as_the_half_width_shrinks_with_the_square_root():
    rounds = []
    _, n, missed = run_until_precise(_sweep(rounds), Precision("latency_p99", 0.05, 100), 3)
    # After 3: widest 0.2 / sqrt(3) = 0.1155; n = ceil(3 x (0.1155 / 0.05)^2) = 16: 0.2 / 4 = 0.05.
    assert rounds == [3, 16] and n == 16 and missed == []


def test_at_the_maximum_the_cells_that_miss_are_named():
    rounds = []
    _, n, missed = run_until_precise(_sweep(rounds), Precision("latency_p99", 0.01, 20), 3)
    assert rounds == [3, 20] and n == 20
    # 0.2 / sqrt(20) = 4.5% for cell 0; cell 1 (value 2): 2.2%; both above 1%.
    assert (
        missed[0]
        == "policy=a: latency_p99 half-width 4.47% of its value after 20 replications (target 1.00%)"
    )
    assert len(missed) == 2


def test_a_metric_without_a_value_is_never_precise():
    def sweep(n):
        table = pd.DataFrame({"policy": ["a"], "latency_p99": [math.nan], "latency_p99_ci": [math.nan]})
        return SimpleNamespace(table=table, keys=["scenario", "policy"])

    _, n, missed = run_until_precise(sweep, Precision("latency_p99", 0.05, 100), 3)
    assert n == 3 and missed == ["policy=a: latency_p99 has no value, so no precision"]


def test_a_metric_known_exactly_meets_any_target():
    table = pd.DataFrame({"error_rate": [0.0, 0.1], "error_rate_ci": [0.0, 0.01]})
    assert list(relative_half_widths(table, "error_rate")) == pytest.approx([0.0, 0.1])


def test_the_same_scenario_stops_at_the_same_count_however_it_runs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(duration=4.0, replications=2)))
    counts = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        args = ["run", str(path), "--out", str(out), "--jobs", jobs, "--precision", "5%"]
        result = CliRunner().invoke(
            main, [*args, "--precision-metric", "latency_mean", "--max-replications", "12"]
        )
        assert result.exit_code == 0, result.output
        counts.append(len(pd.read_csv(out / "summary.csv")))
    assert counts[0] == counts[1] >= 3
    assert (tmp_path / "out1" / "summary.csv").read_bytes() == (
        tmp_path / "out2" / "summary.csv"
    ).read_bytes()


def test_a_bad_precision_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(duration=1.0)))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o"), "--precision", "150%"])
    assert result.exit_code == 2
    assert (
        result.output.strip() == "error: --precision must be a share of the value in (0%, 100%); got '150%'."
    )


def test_precision_options_are_checked_together(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(duration=1.0)))
    base = ["run", str(path), "--out", str(tmp_path / "o"), "--precision"]
    too_many = CliRunner().invoke(main, [*base, "5%", "--replications", "50", "--max-replications", "10"])
    assert too_many.output.strip() == (
        "error: --replications must be at most --max-replications (10) with --precision; got 50."
    )
    metric = CliRunner().invoke(main, [*base, "5%", "--precision-metric", "nope"])
    assert metric.output.startswith("error: --precision-metric: unknown metric 'nope'.")
    fraction = CliRunner().invoke(main, [*base, "0.05", "--max-replications", "3", "--quiet"])
    assert fraction.exit_code == 0, fraction.output
