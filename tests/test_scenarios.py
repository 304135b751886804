"""Every bundled scenario runs, at a reduced size, and shows its lesson."""

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lbsim.cli import main

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


# Scenarios too big for 40 simulated seconds in a test run.
SHORT = {"large-fleet": ("1s", "0.1s")}


def run_small(path: Path, out: Path, duration: str = "40s", warmup: str = "4s") -> pd.DataFrame:
    duration, warmup = SHORT.get(path.stem, (duration, warmup))
    args = ["run", str(path), "--out", str(out), "--quiet", "--jobs", "2", "--replications", "1",
            "--set", f"duration={duration}", "--set", f"warmup={warmup}"]  # fmt: skip
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


def scenario_path(name: str) -> Path:
    return Path(__file__).parents[1] / "scenarios" / f"{name}.yaml"


def test_hashing_lesson(tmp_path):
    table = run_small(scenario_path("hashing"), tmp_path / "h")
    moves = table.set_index(["policy", table["balancer.sticky"].isna()])["session_moves"]
    # Without stickiness, modulo hashing moves many sessions when the server count changes;
    # consistent hashing moves only those of the server that left.
    assert moves[("ip_hash", True)] > 3 * moves[("ring_hash(key=session)", True)]
    assert moves[("round_robin", True)] > 0.8
    assert moves[("round_robin", False)] < 0.1


def test_layer_4_lesson(tmp_path):
    run_small(scenario_path("l4-vs-l7"), tmp_path / "l", duration="60s")
    servers = pd.read_csv(tmp_path / "l" / "servers.csv")
    late = (
        servers[servers["server"] == "late-0"]
        .groupby(["balancer.layer", servers["servers[0].max_connection_age"].isna()])["utilization"]
        .mean()
    )
    assert late[(4, True)] == 0.0  # pinned connections never reach the new server
    assert late[(7, True)] > 0.1
    assert late[(4, False)] > 0.05  # connections that age out find it


def test_instances_lesson(tmp_path):
    table = run_small(scenario_path("instances"), tmp_path / "i", duration="60s").set_index(
        ["policy", "balancer.instances"]
    )
    p99 = table["latency_p99"]
    assert p99[("least_connections", 8)] > p99[("least_connections", 1)]
    assert p99[("jsq", 8)] == pytest.approx(p99[("jsq", 1)], rel=0.25)
