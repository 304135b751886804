"""lbsim regress catches a behaviour change and stays quiet when nothing changed."""

from pathlib import Path

import numpy as np
import pytest

from lbsim.policies.round_robin import WeightedRoundRobin
from lbsim.tools import regress

pytestmark = pytest.mark.slow

SCENARIOS = Path(__file__).parents[1] / "scenarios"
SMALL = {
    "slow-servers": {"duration": "30s", "warmup": "3s"},
    "quickstart": {"duration": "30s", "warmup": "3s"},
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baseline")
    regress.update(folder, jobs=2, scenarios_dir=SCENARIOS, canonical=SMALL)
    return folder


@pytest.mark.parametrize("seed", [None, 101, 202, 303])
def test_unchanged_code_is_not_flagged_whatever_the_seed(baseline, seed):
    changes = regress.compare(baseline, jobs=2, seed=seed)
    assert len(changes) > 100
    assert not [c for c in changes if c.moved], regress.report(changes)


def test_a_policy_that_ignores_weights_is_caught(baseline, monkeypatch):
    original = WeightedRoundRobin.update

    def ignore_weights(self, backends):
        original(self, backends)
        self._weights = np.ones_like(self._weights)
        self._plan(np.zeros_like(self._weights))

    monkeypatch.setattr(WeightedRoundRobin, "update", ignore_weights)
    changes = regress.compare(baseline, jobs=1)  # in this process, where the change is patched in
    moved = [c for c in changes if c.moved]
    assert moved and {c.cell.split(",")[0] for c in moved} == {"weighted_round_robin"}
    assert "weighted_round_robin" in regress.report(changes)


def test_missing_baseline_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="must hold"):
        regress.compare(tmp_path)


TINY = """
name: tiny
duration: 5s
seed: 3
workload: {rate: 50/s, size: exp(10ms)}
servers: [{name: web, count: 2}]
sweep:
  balancer.sticky: [null, {by: cookie}]
"""


def test_every_baseline_cell_is_compared_and_a_missing_one_is_an_error(tmp_path):
    # A null sweep value is written as an empty label; it must still meet its rerun.
    (tmp_path / "tiny.yaml").write_text(TINY)
    folder = tmp_path / "baseline"
    regress.update(folder, jobs=1, scenarios_dir=tmp_path, canonical={"tiny": {}})
    changes = regress.compare(folder, jobs=1)
    assert len(changes) == 2 * len(regress.COMPARED)
    table = folder / "tiny" / "table.csv"
    table.write_text("".join(table.read_text().splitlines(keepends=True)[:2]))  # header and one cell
    with pytest.raises(Exception, match=r"1 cell\(s\) in only one of the baseline and this run"):
        regress.compare(folder, jobs=1)
