"""Paired comparisons of policies over common-random-number replications."""

import math

import numpy as np
import pandas as pd
import pytest

import lbsim
from lbsim.results.comparisons import comparisons, paired, unpaired_half_width
from tests.helpers import make_scenario


def test_a_paired_interval_is_students_t_over_the_differences():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.5, 2.25, 3.75])  # differences 0.5, 0.25, 0.75: mean 0.5, sd 0.25
    result = paired(a, b)
    assert result.difference == pytest.approx(0.5)
    assert result.half_width == pytest.approx(4.303 * 0.25 / math.sqrt(3))  # 0.621
    assert not result.excludes_zero
    # Unpaired: var(a) = 1, var(b) = (1 + 0.0625 + 1.5625) / 2 = 1.3125:
    # 4.303 x sqrt(2.3125 / 3) = 3.778, six times wider.
    assert unpaired_half_width(a, b) == pytest.approx(4.303 * math.sqrt(2.3125 / 3))
    assert paired(a, a + 0.5).excludes_zero  # a constant difference: a zero-width interval


def test_every_pair_of_policies_in_each_cell_on_each_metric():
    rows = []
    for rate in (100.0, 200.0):
        for policy, offset in (("rr", 0.0), ("lc", -0.01), ("p2c", -0.02)):
            for replication, base in enumerate((0.10, 0.20)):
                cell = {"scenario": "s", "policy": policy, "workload.rate": rate, "replication": replication}
                rows.append(
                    {**cell, "latency_mean": base + offset, "latency_p99": 2 * base, "error_rate": 0.0}
                )
    table = comparisons(pd.DataFrame(rows), ["scenario", "policy", "workload.rate"])
    assert len(table) == 2 * 3 * 3  # 2 cells x 3 pairs x 3 metrics
    row = table[
        (table["workload.rate"] == 100.0) & (table["policy_a"] == "rr") & (table["policy_b"] == "p2c")
    ]
    mean = row[row["metric"] == "latency_mean"].iloc[0]
    assert (mean["a"], mean["b"], mean["difference"]) == pytest.approx((0.15, 0.13, -0.02))
    assert mean["difference_ci"] == pytest.approx(0.0, abs=1e-12) and mean["significant"]
    assert mean["ratio"] == pytest.approx((0.08 / 0.10 + 0.18 / 0.20) / 2)
    errors = row[row["metric"] == "error_rate"].iloc[0]
    assert math.isnan(errors["ratio"]) and not errors["significant"]


def test_a_results_folder_of_several_policies_has_comparisons(tmp_path):
    from lbsim.output.report import write_results

    scenario = lbsim.load_scenario(
        make_scenario(
            duration=5.0, replications=3, sweep={"balancer.policy": ["random", "least_connections"]}
        )
    )
    result = lbsim.run_sweep(scenario, jobs=1)
    write_results(tmp_path, scenario, result, command="test", seed=1, timings={})
    table = pd.read_csv(tmp_path / "comparisons.csv")
    assert list(table[["policy_a", "policy_b"]].drop_duplicates().itertuples(index=False)) == [
        ("random", "least_connections")
    ]
    assert "[comparisons.csv](comparisons.csv)" in (tmp_path / "report.md").read_text()
