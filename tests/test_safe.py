"""--safe: a scenario checked as untrusted names no code and reads no file outside its folder."""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lbsim.cli import main
from lbsim.config import load_scenario
from lbsim.errors import ConfigError


def scenario(folder: Path, size: str = "exp(10ms)") -> Path:
    path = folder / "s.yaml"
    workload = f"workload: {{rate: 100, size: '{size}'}}"
    path.write_text(f"name: s\nduration: 5s\n{workload}\nservers: [{{name: web, count: 2}}]\n")
    return path


@pytest.fixture
def folders(tmp_path):
    inside, outside = tmp_path / "scenario", tmp_path / "elsewhere"
    inside.mkdir(), outside.mkdir()
    for folder in (inside, outside):
        (folder / "sizes.txt").write_text("0.01\n0.02\n")
        (folder / "trace.csv").write_text("t_arrival\n0.0\n0.5\n1.0\n")
    (inside / "link.txt").symlink_to(outside / "sizes.txt")
    return inside, outside


@pytest.mark.parametrize("file", ["{outside}/sizes.txt", "../elsewhere/sizes.txt", "link.txt"])
def test_an_empirical_file_outside_the_scenarios_folder_is_refused(folders, file):
    inside, outside = folders
    path = scenario(inside)
    size = f"empirical({file.format(outside=outside)})"
    load_scenario(path, overrides=[("workload.size", size)])  # allowed without --safe
    with pytest.raises(
        ConfigError, match=r"workload.size: empirical: file must be inside the scenario's folder"
    ):
        load_scenario(path, overrides=[("workload.size", size)], safe=True)


def test_files_inside_the_scenarios_folder_are_read(folders):
    inside, _ = folders
    loaded = load_scenario(scenario(inside, size="empirical(sizes.txt)"), safe=True)
    assert loaded.workload.size.mean == pytest.approx(0.015)


def test_a_trace_outside_the_scenarios_folder_is_refused(folders):
    inside, outside = folders
    overrides = [
        ("workload.rate", None),
        ("workload.arrivals", {"kind": "trace", "file": str(outside / "trace.csv")}),
    ]
    load_scenario(scenario(inside), overrides=overrides)
    with pytest.raises(ConfigError, match=r"workload.arrivals.file must be inside the scenario's folder"):
        load_scenario(scenario(inside), overrides=overrides, safe=True)


def test_a_module_class_policy_is_refused_before_its_module_is_imported(tmp_path, monkeypatch):
    (tmp_path / "planted.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported').touch()\n"
        "from lbsim.policies.random import Random as Policy\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = scenario(tmp_path)
    with pytest.raises(ConfigError, match=r"balancer.policy must be a built-in policy with --safe"):
        load_scenario(path, overrides=[("balancer.policy", "planted:Policy")], safe=True)
    with pytest.raises(ConfigError, match=r"must be a built-in policy"):
        load_scenario(path, sweeps=[("balancer.policy", ["random", {"name": "planted:Policy"}])], safe=True)
    assert not (tmp_path / "imported").exists()
    load_scenario(path, overrides=[("balancer.policy", "planted:Policy")])  # what --safe prevents
    assert (tmp_path / "imported").exists()
    sys.modules.pop("planted")


def test_a_safe_scenario_stays_safe_in_every_override(folders):
    inside, outside = folders
    loaded = load_scenario(scenario(inside), safe=True)
    with pytest.raises(ConfigError, match=r"file must be inside the scenario's folder"):
        load_scenario(loaded, overrides=[("workload.size", f"empirical({outside}/sizes.txt)")])


def test_safe_on_the_command_line_is_one_line_and_writes_nothing(folders, tmp_path):
    inside, _ = folders
    out = tmp_path / "out"
    args = ["run", str(scenario(inside)), "--out", str(out), "--safe", "--set", "balancer.policy=os:system"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    line = "balancer.policy must be a built-in policy with --safe (module:Class runs code the scenario names)"
    assert result.output.strip().endswith(f"{line}; got 'os:system'.")
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
