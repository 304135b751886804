"""Helpers shared by the tests: small scenarios written as dicts, trace files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def make_scenario(**changes: Any) -> dict[str, Any]:
    """A one-server scenario with deterministic arrivals; keyword arguments replace top-level keys."""
    base: dict[str, Any] = {
        "name": "test",
        "duration": 1.0,
        "seed": 1,
        "workload": {"arrivals": "deterministic", "rate": 10, "size": "det(50ms)"},
        "servers": [{"name": "web", "count": 1}],
    }
    base.update(changes)
    return base


@pytest.fixture
def trace(tmp_path: Path):
    """Write a trace of (t_arrival, size) rows and return a scenario workload replaying it."""

    def write(rows: list[tuple[float, float]]) -> dict[str, Any]:
        path = tmp_path / "trace.csv"
        path.write_text("t_arrival,size\n" + "".join(f"{t},{s}\n" for t, s in rows))
        return {"arrivals": {"kind": "trace", "file": str(path)}, "size": "det(1s)"}

    return write
