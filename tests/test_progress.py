"""Progress: runs done with the simulated share of those under way, plain lines away from a
terminal, a cached rerun said as such, and --no-cache."""

import yaml
from click.testing import CliRunner

import lbsim
from lbsim import runner
from lbsim.cli import main
from tests.helpers import make_scenario


def test_progress_moves_within_a_run_and_changes_no_result():
    scenario = make_scenario(duration=20.0, replications=2)
    seen = []
    with_progress = lbsim.run_sweep(scenario, jobs=1, progress=lambda done, total: seen.append((done, total)))
    # A hundred ticks a run (each 1% of its simulated duration), then the run's end.
    first_run = [done for done, _ in seen if done <= 1]
    assert first_run[:3] == [0.01, 0.02, 0.03]
    assert 0 < len([done for done in first_run if 0 < done < 1]) <= 100
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (2, 2)
    assert with_progress.summary.equals(lbsim.run_sweep(scenario, jobs=1).summary)


def test_a_pool_reports_progress_in_order_to_the_end_with_the_same_results():
    scenario = make_scenario(duration=20.0, replications=3)
    seen = []
    pooled = lbsim.run_sweep(scenario, jobs=2, progress=lambda done, total: seen.append(done))
    assert seen == sorted(seen) and seen[-1] == 3
    assert pooled.summary.equals(lbsim.run_sweep(scenario, jobs=1).summary)


def test_a_count_that_would_go_back_is_not_told():
    # What a CI run's pool reported: after run 1, runs 2 and 3 both simulated to their end
    # (their shares counted whole, 1 + 2.0) before either result had arrived.
    told = []
    report = runner._forward_only(lambda done, total: told.append(done))
    for done in [1, 3.0, 2, 2.0, 3, 3.0]:
        report(done, 3)
    assert told == [1, 3.0, 3, 3.0]


def test_away_from_a_terminal_progress_is_plain_lines(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(duration=5.0, replications=4)))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("simulating:")]
    assert lines[-1] == "simulating: 4.0 of 4 runs (100%)"
    assert 1 < len(lines) <= 10


def test_no_cache_simulates_again_and_keeps_nothing(tmp_path):
    import yaml
    from click.testing import CliRunner

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(duration=2.0, replications=2)))
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--jobs", "1"]
    CliRunner().invoke(main, args)
    assert "2 runs (2 cached in" in CliRunner().invoke(main, args).output
    fresh = tmp_path / "fresh"
    again = CliRunner().invoke(main, ["run", str(path), "--out", str(fresh), "--jobs", "1", "--no-cache"])
    assert again.exit_code == 0 and "cached" not in again.output
    assert not (fresh / "cache").exists()
    rerun = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--jobs", "1", "--no-cache"])
    assert "cached" not in rerun.output
    assert (fresh / "summary.csv").read_bytes() == (out / "summary.csv").read_bytes()
