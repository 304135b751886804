"""Wall time of one 40-cell sweep run three ways: one process, a pool of two processes, and a
local Dask cluster of two workers. Each way runs the whole ``lbsim run`` command into a fresh
results folder (nothing cached), so the times include start-up and writing the results.

Usage: python benchmarks/sweep.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def wall_time(*options: str) -> tuple[float, float, bytes]:
    """Seconds of ``lbsim run benchmarks/sweep.yaml`` with ``options`` (whole command, and its
    simulation phase as the manifest records it), and its summary.csv."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "lbsim", "run", str(HERE / "sweep.yaml"), "--quiet", "--out", out]
        started = time.perf_counter()
        subprocess.run([*command, *options], check=True)
        seconds = time.perf_counter() - started
        manifest = json.loads((Path(out) / "manifest.json").read_text())
        return seconds, manifest["timings"]["simulate_seconds"], (Path(out) / "summary.csv").read_bytes()


def main() -> None:
    ways = {
        "1 process": ("--jobs", "1"),
        "2 processes": ("--jobs", "2"),
        "local Dask cluster, 2 workers": ("--scheduler", "local"),
    }
    times = {name: wall_time(*options) for name, options in ways.items()}
    serial_wall, serial_sim, expected = times["1 process"]
    print("40-cell sweep (8 policies x 5 loads), 50,000 to 90,000 requests per cell")
    print(f"  {'':31s} {'command':>8s} {'speed-up':>9s} {'simulation':>11s} {'speed-up':>9s}")
    for name, (wall, sim, _) in times.items():
        print(f"  {name:31s} {wall:7.1f}s {serial_wall / wall:9.2f} {sim:10.1f}s {serial_sim / sim:9.2f}")
    pool, dask = times["2 processes"], times["local Dask cluster, 2 workers"]
    command, simulation = dask[0] / pool[0] - 1, dask[1] / pool[1] - 1
    print(f"  Dask against the process pool: {command:+.0%} command, {simulation:+.0%} simulation")
    print(f"  summary.csv identical: {all(summary == expected for _, _, summary in times.values())}")


if __name__ == "__main__":
    main()
