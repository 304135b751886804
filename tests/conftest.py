"""Fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def trace(tmp_path: Path):
    """Write a trace of (t_arrival, size) rows and return a scenario workload replaying it."""

    def write(rows: list[tuple[float, float]]) -> dict[str, Any]:
        path = tmp_path / "trace.csv"
        path.write_text("t_arrival,size\n" + "".join(f"{t},{s}\n" for t, s in rows))
        return {"arrivals": {"kind": "trace", "file": str(path)}, "size": "det(1s)"}

    return write
