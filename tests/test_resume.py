"""An interrupted sweep resumes where it stopped and ends as if never interrupted."""

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.helpers import make_scenario

pytestmark = pytest.mark.slow

SCENARIO = make_scenario(
    name="resume",
    duration=30.0,
    replications=2,
    workload={"arrivals": "poisson", "rate": 400, "size": "exp(10ms)"},
    servers=[{"name": "web", "count": 5}],
    sweep={"balancer.policy": ["random", "round_robin", "least_connections", "p2c", "jiq", "peak_ewma"]},
)


def lbsim(*args):
    return [sys.executable, "-m", "lbsim", "run", *map(str, args), "--jobs", "1", "--quiet"]


def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    out = tmp_path / "interrupted"
    process = subprocess.Popen(lbsim(path, "--out", out))
    deadline = time.time() + 120
    while len(list((out / "cache").glob("*.npz"))) < 4 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = len(list((out / "cache").glob("*.npz")))
    assert 4 <= kept < 12
    assert not (out / "summary.csv").exists()
    subprocess.run(lbsim(path, "--out", out), check=True)
    manifest = (out / "manifest.json").read_text()
    assert '"status": "cached"' in manifest and '"status": "done"' in manifest
    clean = tmp_path / "clean"
    subprocess.run(lbsim(path, "--out", clean), check=True)
    assert (out / "summary.csv").read_bytes() == (clean / "summary.csv").read_bytes()


def test_changing_a_parameter_reruns_only_what_changed(tmp_path):
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    out = tmp_path / "out"
    subprocess.run(lbsim(path, "--out", out), check=True)
    subprocess.run(lbsim(path, "--out", out, "--sweep", "balancer.policy=random,jsq"), check=True)
    cells = json.loads((out / "manifest.json").read_text())["cells"]
    assert sorted(cell["status"] for cell in cells) == ["cached", "done"]
