"""Fuzzing: every bundled scenario, with one key changed to a hostile value, removed, or added,
either runs or is refused with one short line (exit 2, no traceback, nothing written).

Each case is checked through ``lbsim run`` in this process. So that each stays small, the
scenarios are first cut to 2 simulated seconds, one replication and at most two values per
sweep axis; a mutated case that would still simulate more than about 20,000 requests (a
huge rate or fleet) is only loaded and planned, not simulated.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbsim.cli import main
from lbsim.config.loading import load_scenario
from lbsim.config.sweep import expand
from lbsim.engine.build import plan
from lbsim.errors import ConfigError

pytestmark = pytest.mark.slow

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**63, 1e308, -1e308, math.inf, math.nan, 0.5, "", " ",
    "x" * 5000, "nan", ".inf", "-5s", "1e9/s", "exp(-1ms)", "lognormal(mean=1ms, cv=1e9)",
    "empirical(/dev/zero)", "empirical(/proc/self/environ)", "os:system", "lbsim.policies.base:Policy",
    [], {}, [[[[[]]]]], {"name": None}, [None], [1, "a", None], {"kind": "trace", "file": "/etc"},
]  # fmt: skip


def shrunk(path: Path) -> dict[str, Any]:
    """The scenario of ``path``, cut to a size every case can afford."""
    data = yaml.safe_load(path.read_text())
    data["duration"] = 2
    data.pop("warmup", None)
    data.pop("window", None)
    data["replications"] = 1
    data.pop("expect", None)
    if isinstance(data.get("sweep"), dict):
        data["sweep"] = {key: values[:2] for key, values in data["sweep"].items()}
    return data


def key_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``value`` (mapping keys and list positions)."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += key_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            paths += key_paths(item, (*prefix, i))
    return paths


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    path = draw(st.sampled_from(SCENARIOS))
    data = shrunk(path)
    where = draw(st.sampled_from(key_paths(data)))
    parent = data
    for part in where[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
    if action == "replace":
        parent[where[-1]] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
    elif action == "remove":
        del parent[where[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.sampled_from(["nonsense", "count", "rate", "policy", "sweep"]))] = draw(
            st.sampled_from(HOSTILE)
        )
    return path.name, data


def expected_requests(data: dict[str, Any]) -> float:
    """About how many requests a run of the loaded scenario ``data`` simulates (inf: unknown)."""
    try:
        cells = expand(load_scenario(data))
        total = 0.0
        for cell in cells:
            scenario = cell.scenario
            workload = scenario.workload
            # Closed-loop users send at most about 1,000 requests a second each; traces are short.
            rate = workload.rate or (workload.arrivals.users or 1) * 1000
            servers = sum(group.count for group in scenario.servers)
            if servers > 500:
                return math.inf
            total += rate * scenario.duration
        return total
    except ConfigError:
        return 0.0


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=mutations())
def test_a_mutated_scenario_runs_or_is_one_short_line(case, tmp_path_factory):
    name, data = case
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    if expected_requests(data) > 20_000:
        # Too big to simulate here: it must load and plan cleanly, or be refused.
        try:
            for cell in expand(load_scenario(path)):
                plan(cell.scenario)
        except ConfigError as exc:
            # The file's path is the test's (longer under pytest-xdist), not the message's.
            assert len(str(exc).replace(str(path), "FILE")) < 300 and "\n" not in str(exc)
        return
    out = folder / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--quiet", "--jobs", "1"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and len(lines[0].replace(str(path), "FILE")) < 300, result.output
        assert not out.exists()
