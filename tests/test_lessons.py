"""The README's lessons quote docs/lessons.json, which `python docs/lessons.py` measures."""

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("lessons", ROOT / "docs" / "lessons.py")
lessons = importlib.util.module_from_spec(spec)
sys.modules["lessons"] = lessons  # dataclasses look their module up there
spec.loader.exec_module(lessons)


def test_the_readme_says_what_the_measured_figures_are():
    figures = json.loads(lessons.FIGURES.read_text())["figures"]
    assert set(figures) == set(lessons.SPECS)  # none stale, none missing
    readme = lessons.README.read_text()
    expected = lessons.with_lessons(readme, lessons.render(lessons.TEMPLATE.read_text(), figures))
    assert readme == expected, "README's lessons differ from docs/lessons.json: run python docs/lessons.py"


def test_every_placeholder_names_a_figure():
    used = set(lessons.PLACEHOLDER.findall(lessons.TEMPLATE.read_text()))
    assert used and used <= set(lessons.SPECS)
    with pytest.raises(KeyError):
        lessons.render("<!-- block: x -->\n[[no.such.figure]]", {})
    blocks = lessons.render(lessons.TEMPLATE.read_text(), dict.fromkeys(lessons.SPECS, "1"))
    assert set(blocks) == {"coverage", "remap", "capacity", "bundled"}


def _results():
    # Two policies over three replications; p99 of b is a's + 0.5 s in each (by hand).
    summary = pd.DataFrame({
        "policy": ["a"] * 3 + ["b"] * 3, "replication": [0, 1, 2] * 2,
        "latency_p99": [1.0, 1.1, 1.2, 1.5, 1.6, 1.7], "n_retries": [10, 20, 30, 0, 0, 0],
    })  # fmt: skip
    servers = pd.DataFrame({
        "policy": ["a"] * 4, "replication": [0, 0, 1, 1], "server": ["x", "y"] * 2,
        "n_requests": [30, 10, 50, 10],
    })  # fmt: skip
    faults = pd.DataFrame({"policy": ["a"] * 2, "t_start": [60.0, 60.0], "t_detected": [64.25, 65.875]})
    return {"s": SimpleNamespace(summary=summary, servers=servers, faults=faults)}


def test_figures_are_read_from_the_tables_as_defined():
    results = _results()
    assert lessons.Value("s", "latency_p99", {"policy": "a"}).measure(results) == "1.10 s"
    # Mean 1.1 s, sd 0.1 s, half-width 4.303 x 0.1 / sqrt(3) = 0.248 s.
    assert lessons.Value("s", "latency_p99", {"policy": "a"}, ci=True).measure(results) == "1.10 ± 0.248 s"
    assert lessons.Value("s", "n_retries", {"policy": "a"}, count=True).measure(results) == "20"
    assert (
        lessons.Versus("s", "latency_p99", {"policy": "a"}, {"policy": "b"})
        .measure(results)
        .startswith("significant")
    )
    # 30 + 50 of the 100 requests went to server x.
    share = lessons.Share("s", "servers", "n_requests", {"server": "x"}, {"policy": "a"})
    assert share.measure(results) == "80.0%"
    assert lessons.Span("s", "t_start", "t_detected").measure(results) == "4.25-5.88 s"
    with pytest.raises(KeyError, match="no row has"):
        lessons.Value("s", "latency_p99", {"policy": "c"}).measure(results)
