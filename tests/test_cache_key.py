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
