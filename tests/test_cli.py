"""The command line as a user runs it: files, columns, options."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from lbsim.cli import main
from lbsim.policies import POLICIES
from tests.helpers import make_scenario

SUMMARY_COLUMNS = [
    "scenario", "policy", "replication", "seed", "n_requests", "n_ok", "n_error", "n_rejected",
    "n_timeout", "n_no_backend", "n_dropped", "error_rate", "throughput", "latency_mean",
    "latency_p50", "latency_p90", "latency_p99", "latency_p999", "latency_max",
    "utilization_mean", "utilization_max", "imbalance",
]  # fmt: skip

SMALL = {
    "name": "small",
    "duration": 5.0,
    "warmup": 0.5,
    "seed": 3,
    "replications": 2,
    "workload": {"rate": "200/s", "size": "exp(10ms)"},
    "servers": [{"name": "web", "count": 3}],
    "sweep": {"balancer.policy": ["random", "least_connections"]},
}


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path


def run(*args):
    result = CliRunner().invoke(main, ["run", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def test_run_writes_every_file_with_the_contract_columns(small, tmp_path):
    out = tmp_path / "out"
    run(small, "--out", out, "--jobs", 1)
    names = {p.name for p in out.iterdir()}
    assert {
        "summary.csv",
        "table.csv",
        "table.md",
        "servers.csv",
        "timeseries.csv",
        "report.md",
        "manifest.json",
        "plots",
    } <= names
    summary = pd.read_csv(out / "summary.csv")
    assert all(column in summary.columns for column in SUMMARY_COLUMNS)
    assert len(summary) == 4
    table = pd.read_csv(out / "table.csv")
    assert {"latency_p99", "latency_p99_ci", "error_rate_ci", "replications"} <= set(table.columns)
    servers = pd.read_csv(out / "servers.csv")
    assert {"server", "group", "n_requests", "n_error", "utilization", "latency_mean"} <= set(servers.columns)
    assert len(servers) == 4 * 3
    timeseries = pd.read_csv(out / "timeseries.csv")
    assert {"t_start", "throughput", "error_rate", "latency_p99", "active_web-0"} <= set(timeseries.columns)
    assert list((out / "plots").glob("*.png"))
    report = (out / "report.md").read_text()
    assert "![Latency CDF per policy](plots/latency_cdf.png)" in report
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["replications"] == 2
    assert set(manifest["versions"]) == {"lbsim", "python", "numpy", "pandas", "simpy"}
    assert [cell["status"] for cell in manifest["cells"]] == ["done", "done"]


def test_default_folder_is_results_slash_name(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(small, "--jobs", 1)
    assert (tmp_path / "results" / "small" / "summary.csv").exists()
    assert "results/small/" in result.output


def test_options_override_the_scenario(small, tmp_path):
    out = tmp_path / "out"
    run(small, "--out", out, "--jobs", 1, "--seed", 9, "--replications", 1, "--set", "servers[0].count=2",
        "--sweep", "workload.rate=100/s,150/s", "--quiet")  # fmt: skip
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["seed"]) == {9}
    assert list(summary["workload.rate"]) == [100.0, 150.0, 100.0, 150.0]
    assert list(summary["policy"]) == ["random", "random", "least_connections", "least_connections"]
    assert pd.read_csv(out / "servers.csv")["server"].nunique() == 2


def test_sweep_option_replaces_an_axis(small, tmp_path):
    out = tmp_path / "out"
    run(
        small,
        "--out",
        out,
        "--jobs",
        1,
        "--replications",
        1,
        "--sweep",
        "balancer.policy=ip_hash",
        "--quiet",
    )
    assert list(pd.read_csv(out / "summary.csv")["policy"]) == ["ip_hash"]


def test_quiet_prints_nothing(small, tmp_path):
    result = run(small, "--out", tmp_path / "out", "--jobs", 1, "--quiet")
    assert result.output == ""


def test_policies_lists_every_policy_with_rule_and_parameters():
    result = CliRunner().invoke(main, ["policies"])
    assert result.exit_code == 0
    for name, cls in POLICIES.items():
        assert f"{name}\n    {cls.rule}\n    parameters:" in result.output


def test_readme_commands_name_the_bundled_scenario():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "lbsim run scenarios/quickstart.yaml" in readme
    assert "python -m pytest" in readme


def test_expectations_are_checked_reported_and_set_the_exit_code(tmp_path):
    expect = [
        {"metric": "latency_p99", "policy": "least_connections", "below": "random"},
        {"metric": "error_rate", "max": 0.01},
        {"metric": "latency_mean", "policy": "random", "within": "1%", "of": 1.0},
    ]
    path = tmp_path / "expect.yaml"
    path.write_text(yaml.safe_dump(SMALL | {"expect": expect}))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--jobs", "1", "--quiet"])
    assert result.exit_code == 1
    # Quiet prints only what fails; every file is still written.
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "latency_mean of random within 1% of 1.00 s: FAILS" in lines[0]
    report = (out / "report.md").read_text()
    assert "latency_p99 of least_connections below random: **holds**" in report
    assert "error_rate <= 1.00%: **holds** (largest 0%)" in report
    assert (out / "summary.csv").exists()


def test_an_expectation_on_a_policy_the_run_lacks_is_not_applicable(tmp_path):
    # The README's tip: --set balancer.policy=... leaves expectations about other policies.
    expect = [
        {"metric": "latency_p99", "policy": "least_connections", "below": "random"},
        {"metric": "latency_p99", "max": "2s", "where": {"workload.rate": 200}},
    ]
    path = tmp_path / "expect.yaml"
    sweep = {"workload.rate": ["200/s", "100rps"]}
    path.write_text(yaml.safe_dump(SMALL | {"expect": expect, "sweep": sweep}))
    args = ["run", str(path), "--out", str(tmp_path / "out"), "--jobs", "1", "--replications", "1"]
    result = CliRunner().invoke(main, [*args, "--set", "balancer.policy=p2c"])
    assert result.exit_code == 0, result.output
    assert (
        "expect latency_p99 of least_connections below random: not applicable "
        "(no policy 'least_connections' in this run)" in result.output
    )
    # A swept rate matches as a number, 200 as 200.0 (the table's) or as 200/s.
    assert "expect latency_p99 where workload.rate=200 <= 2.00 s: holds" in result.output


def test_an_overloaded_cell_is_warned_about_in_the_report_and_summary(tmp_path):
    # 3 servers of capacity 1 (work-seconds per second) offered 200/s x 10 ms = 2 at the
    # first rate, 400/s x 10 ms = 4 at the second: offered load 2/3, then 4/3.
    path = tmp_path / "load.yaml"
    path.write_text(
        yaml.safe_dump(SMALL | {"replications": 1, "sweep": {"workload.rate": ["200/s", "400/s"]}})
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--jobs", "1", "--quiet"])
    assert result.exit_code == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["offered_load"].tolist() == pytest.approx([2 / 3, 4 / 3])
    report = (out / "report.md").read_text()
    assert "## Warnings\n\n- cell 1: offered load 1.33 of the servers' capacity" in report
    assert "cell 0:" not in report


def test_an_unknown_expectation_metric_is_bad_input(tmp_path):
    path = tmp_path / "expect.yaml"
    path.write_text(yaml.safe_dump(SMALL | {"expect": [{"metric": "latency_p95", "max": 1}]}))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "expect[0].metric: unknown metric 'latency_p95'. Did you mean" in result.output
    assert not (tmp_path / "out").exists()


def test_keep_requests_writes_each_runs_records_as_parquet(small, tmp_path):
    out = tmp_path / "out"
    run(small, "--out", out, "--keep-requests", "--quiet")
    manifest = json.loads((out / "manifest.json").read_text())
    summary = pd.read_csv(out / "summary.csv")
    files = [name for cell in manifest["cells"] for name in cell["requests"]]
    assert len(files) == len(summary) == 4
    for name, (_, row) in zip(files, summary.iterrows(), strict=True):
        requests = pd.read_parquet(out / "requests" / name)
        counted = requests[(requests["t_arrival"] >= SMALL["warmup"]) & (requests["status"] == "ok")]
        assert len(counted) == row["n_ok"]
        assert counted["latency"].mean() == pytest.approx(row["latency_mean"], rel=1e-9)
        exact = np.quantile(counted["latency"], 0.99, method="inverted_cdf")
        assert row["latency_p99"] == pytest.approx(exact, rel=0.005)
    assert not list((out / "requests").glob(".*partial"))
    (out / "requests" / files[0]).unlink()
    run(small, "--out", out, "--keep-requests", "--quiet")
    statuses = [cell["status"] for cell in json.loads((out / "manifest.json").read_text())["cells"]]
    assert statuses == ["done", "cached"]
    assert (out / "requests" / files[0]).exists()


def test_keep_requests_without_pyarrow_says_what_to_install(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = CliRunner().invoke(main, ["run", str(small), "--out", str(tmp_path / "out"), "--keep-requests"])
    assert result.exit_code == 2
    assert "pip install 'lbsim[parquet]'" in result.output
    assert not (tmp_path / "out").exists()


def test_set_on_a_swept_key_replaces_that_axis(small, tmp_path):
    out = tmp_path / "out"
    run(small, "--out", out, "--jobs", 1, "--replications", 1, "--set", "balancer.policy=p2c", "--quiet")
    assert list(pd.read_csv(out / "summary.csv")["policy"]) == ["p2c"]


def test_one_run_is_counted_in_the_singular(small, tmp_path):
    result = run(
        small, "--out", tmp_path / "out", "--jobs", 1, "--replications", 1, "--set", "balancer.policy=p2c"
    )
    assert "\n1 run in " in result.output


def test_a_rerun_says_its_runs_came_from_the_cache(small, tmp_path):
    out = tmp_path / "out"
    first = run(small, "--out", out, "--jobs", 1)
    assert "cached" not in first.output
    second = run(small, "--out", out, "--jobs", 1)
    assert f"4 runs (4 cached in {out / 'cache'}, not simulated again" in second.output


def test_an_expectation_on_a_key_the_sweep_does_not_vary_is_bad_input(tmp_path):
    path = tmp_path / "expect.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                **SMALL,
                "expect": [{"metric": "error_rate", "where": {"balancer.policy": "random"}, "max": 0.1}],
            }
        )
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--set", "sweep={}"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {path}: expect[0].where must name a key the sweep varies; got 'balancer.policy', "
        "and the sweep varies nothing."
    ]
    assert not out.exists()


def test_a_number_too_long_for_python_is_a_one_line_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario()).replace("count: 1", "count: " + "9" * 5000))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "the file must hold numbers of at most 4,300 digits" in result.output
    path.write_text(yaml.safe_dump(make_scenario()))
    flag = CliRunner().invoke(main, ["run", str(path), "--set", "servers[0].count=" + "9" * 5000])
    assert flag.exit_code == 2 and "must be a number of at most 4,300 digits" in flag.output
