"""The report: figures in their units to three significant figures, half-widths only where
they mean something, a verdict per cell with its significance, the resolved scenario in units."""

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

import lbsim
from lbsim.output.quantities import shown_value, three_figures
from lbsim.output.report import _plain, markdown_table
from lbsim.output.verdict import verdicts
from tests.helpers import make_scenario

SCENARIOS = Path(__file__).parents[1] / "scenarios"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1466, "0.147"), (36.71, "36.7"), (1.401, "1.40"), (250.4, "250"), (1234.5, "1,234"), (0.0, "0"),
     (1.2e-5, "0.0000120"), (math.nan, "n/a")],
)  # fmt: skip
def test_three_significant_figures_without_an_exponent(value, text):
    assert three_figures(value) == text


@pytest.mark.parametrize(
    ("metric", "value", "half_width", "text"),
    [
        ("latency_mean", 0.1465, 0.06061, "146 ± 60.6 ms"),  # under a second: ms
        ("latency_p99", 36.7, 10.2, "36.7 ± 10.2 s"),  # a second or more: s
        ("error_rate", 0.2689, None, "26.9%"),
        ("throughput", 250.4, 2.675, "250 ± 2.67"),  # the unit is in the header
    ],
)
def test_values_are_shown_in_the_unit_a_person_reads(metric, value, half_width, text):
    assert shown_value(metric, value, half_width) == text


def _table(replications, ci):
    return pd.DataFrame({
        "scenario": ["s"], "policy": ["p2c"], "workload.rate": [250.0], "replications": [replications],
        "latency_p99": [0.1277], "latency_p99_ci": [ci],
    })  # fmt: skip


def test_the_table_shows_half_widths_only_with_three_replications_and_flags_wide_ones():
    keys = ["scenario", "policy", "workload.rate"]

    def lines(replications, ci):
        return markdown_table(_table(replications, ci), keys, ("latency_p99",)).splitlines()

    assert lines(3, 0.001828)[0] == "| policy | offered rate (requests/s) | p99 latency |"
    assert lines(3, 0.001828)[2] == "| p2c | 250 | 128 ± 1.83 ms |"
    assert lines(2, 0.001828)[2] == "| p2c | 250 | 128 ms |"
    assert lines(3, 0.2)[2] == "| p2c | 250 | 128 ± 200 ms † |"


def _summary(a, b):
    rows = [("a", r, v) for r, v in enumerate(a)] + [("b", r, v) for r, v in enumerate(b)]
    frame = pd.DataFrame(rows, columns=["policy", "replication", "latency_p99"])
    return frame.assign(scenario="s", error_rate=0.0)


def test_a_verdict_tests_the_paired_difference_of_the_best_and_the_runner_up():
    keys = ["scenario", "policy"]
    # b - a is 0.5 s in every replication: a zero-width interval, significant; 0.5 / 1.75 = 28.6%.
    p99, errors = verdicts(_summary([1.0, 1.25, 1.5], [1.5, 1.75, 2.0]), keys)
    assert p99 == (
        "p99 latency lowest with a (1.25 s), 28.6% below b (1.75 s): "
        "significant (paired 95% CI of the difference ± 0 ms)."
    )
    assert errors == "error rate 0% with every policy."
    # Differences 0.1, -0.1, 0.3 s: mean 0.1, sd 0.2, half-width 4.303 x 0.2 / sqrt(3) = 0.497 s.
    p99, _ = verdicts(_summary([1.0, 1.1, 1.2], [1.1, 1.0, 1.5]), keys)
    assert p99.endswith("not significant at 3 replications (± 497 ms).")
    # As the report shows no half-width below 3 replications, the verdict tests nothing there.
    assert verdicts(_summary([1.0, 1.1], [2.0, 2.1]), keys)[0].endswith(
        "not tested with fewer than 3 replications."
    )


def test_the_resolved_scenario_keeps_units_and_reads_back_as_the_same_scenario(tmp_path):
    checks = {"interval": "2s", "timeout": "500ms"}
    scenario = lbsim.load_scenario(SCENARIOS / "failover.yaml", overrides=[("balancer.health_check", checks)])
    text = yaml.safe_dump(_plain(scenario), sort_keys=False)
    plain = yaml.safe_load(text)
    assert plain["workload"]["rate"] == "600/s"
    assert plain["duration"] == "180s"
    assert plain["balancer"]["health_check"]["timeout"] == "500ms"
    (tmp_path / "resolved.yaml").write_text(text)
    again = lbsim.load_scenario(tmp_path / "resolved.yaml")
    assert yaml.safe_dump(_plain(again), sort_keys=False) == text


def test_a_swept_mapping_is_named_in_the_tables_as_the_scenario_wrote_it():
    retries = {"max": 1, "on": ["connect_failure"]}
    scenario = make_scenario(duration=2.0, sweep={"balancer.retries": [None, retries]})
    table = lbsim.run_sweep(scenario, jobs=1).table
    # YAML 1.1 reads the key `on` as true: it is spelled (and quoted) as a key again.
    assert list(table["balancer.retries"]) == ["None", "{max: 1, 'on': [connect_failure]}"]


def test_one_run_gets_its_mean_latencys_interval_from_batch_means():
    import numpy as np

    from lbsim.results.histogram import LatencyHistogram
    from lbsim.results.metrics import batch_means_half_width

    windows = LatencyHistogram(20)
    # Window k (1 s each) holds one request of latency (k // 2 + 1) s: batches of two windows
    # have means 1, 2, ..., 10: sd 3.0277, half-width 2.262 x 3.0277 / sqrt(10) = 2.1657.
    windows.add(np.arange(20) // 2 + 1.0, np.arange(20))
    assert batch_means_half_width(windows, 0.0, 1.0) == pytest.approx(
        2.262 * np.std(np.arange(1, 11), ddof=1) / np.sqrt(10)
    )
    assert math.isnan(batch_means_half_width(windows, 11.0, 1.0))  # 9 windows left: too few
    scenario = make_scenario(duration=20.0, warmup=2.0, sweep={"balancer.policy": ["random"]})
    result = lbsim.run_sweep(scenario, jobs=1, replications=1)
    assert result.table["latency_mean_ci"].iloc[0] == result.summary["latency_mean_batch_ci"].iloc[0] > 0
    line = markdown_table(result.table, result.keys, ("latency_mean", "latency_p99")).splitlines()[2]
    assert line.count("±") == 1  # the mean's, from batch means; the p99's needs replications
