"""Every bundled scenario runs, at a reduced size, and shows its lesson."""

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lbsim.cli import main

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


def run_small(path: Path, out: Path, duration: str = "40s") -> pd.DataFrame:
    args = ["run", str(path), "--out", str(out), "--quiet", "--jobs", "2", "--replications", "1",
            "--set", f"duration={duration}", "--set", "warmup=4s"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "table.csv")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_bundled_scenario_runs_small(path, tmp_path):
    table = run_small(path, tmp_path / path.stem)
    assert len(table) >= 1
    assert (table["n_requests"] > 0).all()


def p99(table: pd.DataFrame, policy: str) -> float:
    return float(table.loc[table["policy"] == policy, "latency_p99"].max())


def test_slow_servers_lesson(tmp_path):
    table = run_small(Path(__file__).parents[1] / "scenarios" / "slow-servers.yaml", tmp_path / "s")
    # Round robin overloads the old servers (57/s each against a capacity of 50/s).
    assert p99(table, "round_robin") > 10 * p99(table, "weighted_round_robin")
    assert p99(table, "least_connections") < p99(table, "weighted_round_robin")


def test_high_variance_lesson(tmp_path):
    table = run_small(Path(__file__).parents[1] / "scenarios" / "high-variance.yaml", tmp_path / "h", "60s")
    assert p99(table, "least_connections") < 0.6 * p99(table, "round_robin")
