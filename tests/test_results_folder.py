"""The results folder says what it holds: manifest.json has a status from the start of a run
to its end, and a finished run leaves no table or plot of an earlier scenario beside its own."""

import json

import yaml
from click.testing import CliRunner

from lbsim.cli import main
from tests.helpers import make_scenario


def run(tmp_path, **changes):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(make_scenario(**changes)))
    return CliRunner().invoke(
        main, ["run", str(path), "--out", str(tmp_path / "out"), "--quiet", "--jobs", "1"]
    )


def manifest(tmp_path):
    return json.loads((tmp_path / "out" / "manifest.json").read_text())


def test_a_finished_run_says_done_and_lists_its_files(tmp_path):
    assert run(tmp_path).exit_code == 0
    written = manifest(tmp_path)
    assert written["status"] == "done"
    assert "summary.csv" in written["files"] and "report.md" in written["files"]
    assert all((tmp_path / "out" / name).is_file() for name in written["files"])


def test_a_run_that_stops_says_why(tmp_path, monkeypatch):
    from lbsim import runner
    from lbsim.errors import WorkerLost

    def lost(*args, **kwargs):
        raise WorkerLost("a worker process ended in the middle of a run")

    monkeypatch.setattr(runner, "run_tasks", lost)
    result = run(tmp_path)
    assert result.exit_code == 1
    written = manifest(tmp_path)
    assert written["status"] == "failed"
    assert "worker process ended" in written["reason"]


def test_a_run_that_hits_a_defect_of_lbsim_says_it_failed(tmp_path, monkeypatch):
    from lbsim import runner

    def defect(*args, **kwargs):
        raise IndexError("list index out of range")

    monkeypatch.setattr(runner, "run_tasks", defect)
    result = run(tmp_path)
    assert isinstance(result.exception, IndexError)
    written = manifest(tmp_path)
    assert written["status"] == "failed"
    assert written["reason"] == "internal error: IndexError: 'list index out of range'"


def test_files_of_an_earlier_scenario_are_removed_and_a_users_own_are_kept(tmp_path):
    # A sweep over the rate plots against it; the next scenario, without that sweep, does not.
    assert run(tmp_path, sweep={"workload.rate": [5, 10]}).exit_code == 0
    out = tmp_path / "out"
    stale = out / "plots" / "latency_p99_vs_workload.rate.png"
    assert stale.exists()
    (out / "notes.csv").write_text("mine\n")
    (out / "plots" / "mine.png").write_bytes(b"mine")
    assert run(tmp_path).exit_code == 0
    assert not stale.exists()
    assert (out / "notes.csv").read_text() == "mine\n"
    assert (out / "plots" / "mine.png").read_bytes() == b"mine"
    listed = manifest(tmp_path)["files"]
    assert "plots/latency_p99_vs_workload.rate.png" not in listed
    assert "notes.csv" not in listed and "plots/mine.png" not in listed


def test_replacing_another_scenarios_results_says_so(tmp_path):
    path = tmp_path / "scenario.yaml"
    out = tmp_path / "out"

    def run_named(name):
        path.write_text(yaml.safe_dump(make_scenario(name=name)))
        return CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--jobs", "1"])

    assert run_named("first").exit_code == 0
    n_files = len(manifest(tmp_path)["files"])
    again = run_named("first")
    assert "holds the results of scenario" not in again.output  # the same scenario, rerun
    second = run_named("second")
    assert second.exit_code == 0
    line = f"holds the results of scenario 'first': its {n_files} files are replaced by those of 'second'"
    assert line in second.output
    assert manifest(tmp_path)["scenario"] == "second"
