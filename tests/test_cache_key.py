"""The run cache reuses a run only when nothing that decides its result changed, the code of
a user's ``module:Class`` policy included."""

import json
import os
import subprocess
import sys

import pandas as pd
import yaml

from tests.helpers import make_scenario

# Ten requests at 0.0, 0.1, ..., 0.9 s over three servers.
SCENARIO = make_scenario(
    name="mine", servers=[{"name": "web", "count": 3}], balancer={"policy": "mymod:Mine"}
)

POLICY = '''
from lbsim import Policy


class Mine(Policy):
    """A user's policy; its choice is filled in by the test."""

    name = "mine"
    rule = "the test's rule"

    def update(self, backends):
        self.backends = list(backends)
        self.n_chosen = 0

    def choose(self, request):
        self.n_chosen += 1
        return self.backends[{choice}]
'''
ROUND_ROBIN = "self.n_chosen % len(self.backends)"
FIRST = "0"


def run(tmp_path, choice):
    """Write the policy with ``choice``, run the scenario into ``out``, and return each cell's
    status and the requests each server got."""
    (tmp_path / "mymod.py").write_text(POLICY.replace("{choice}", choice))
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    out = tmp_path / "out"
    # A fresh process imports the policy's current source; no bytecode is written, since a
    # rewritten file of the same size within the same second would pass for the old one.
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "lbsim", "run", path, "--out", out, "--jobs", "1", "--quiet"]
    subprocess.run(command, env=env, check=True)
    manifest = json.loads((out / "manifest.json").read_text())
    servers = pd.read_csv(out / "servers.csv")
    return [cell["status"] for cell in manifest["cells"]], list(servers["n_requests"])


def test_a_changed_user_policy_is_simulated_again(tmp_path):
    assert run(tmp_path, ROUND_ROBIN) == (["done"], [3, 4, 3])
    assert run(tmp_path, FIRST) == (["done"], [10, 0, 0])


def test_an_unchanged_rerun_is_taken_from_the_cache(tmp_path):
    assert run(tmp_path, ROUND_ROBIN) == (["done"], [3, 4, 3])
    assert run(tmp_path, ROUND_ROBIN) == (["cached"], [3, 4, 3])


def sweep_in(folder, scenario_file):
    """Load ``scenario_file`` afresh (as a new ``lbsim run`` would) and sweep it with the run
    cache in ``folder``; return (runs taken from the cache, requests of the one run)."""
    from lbsim.config.loading import load_scenario
    from lbsim.runner import RunCache, run_sweep

    result = run_sweep(load_scenario(scenario_file), jobs=1, cache=RunCache(folder))
    return result.n_cached, int(result.summary["n_requests"].iloc[0])


def test_a_replaced_trace_is_simulated_again(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("t_arrival\n0.1\n0.2\n0.3\n")
    path = tmp_path / "replay.yaml"
    workload = {"arrivals": {"kind": "trace", "file": "trace.csv"}, "size": "det(10ms)"}
    path.write_text(yaml.safe_dump(make_scenario(workload=workload)))
    assert sweep_in(tmp_path / "cache", path) == (0, 3)
    assert sweep_in(tmp_path / "cache", path) == (1, 3)
    trace.write_text("t_arrival\n0.1\n0.2\n0.3\n0.4\n0.5\n")
    assert sweep_in(tmp_path / "cache", path) == (0, 5)


def test_replaced_empirical_sizes_are_simulated_again(tmp_path):
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("0.01\n")
    path = tmp_path / "sizes.yaml"
    workload = {"arrivals": "deterministic", "rate": 10, "size": "empirical(sizes.csv)"}
    path.write_text(yaml.safe_dump(make_scenario(workload=workload)))

    def mean_latency():
        from lbsim.config.loading import load_scenario
        from lbsim.runner import RunCache, run_sweep

        result = run_sweep(load_scenario(path), jobs=1, cache=RunCache(tmp_path / "cache"))
        return result.n_cached, round(float(result.summary["latency_mean"].iloc[0]), 6)

    # One server, arrivals 0.1 s apart: every request is served alone, latency = its size.
    assert mean_latency() == (0, 0.01)
    assert mean_latency() == (1, 0.01)
    sizes.write_text("0.02\n")
    assert mean_latency() == (0, 0.02)
