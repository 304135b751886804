"""Byte-identity of results across a refactor: hashes of every bundled scenario's tables.

Runs each file in ``scenarios/`` at the test suite's reduced size (40 s, 4 s warm-up, one
replication; ``large-fleet`` 1 s) into a fresh folder and hashes ``summary.csv``,
``servers.csv``, ``timeseries.csv`` and ``faults.csv``. ``--record`` writes the hashes to
``benchmarks/identity.json`` with the commit they were recorded at; without it the run is
compared with that file and every table that differs is named (exit 1).

Usage: python benchmarks/identity.py [--record] [--jobs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
SCENARIOS = sorted((HERE.parent / "scenarios").glob("*.yaml"))
TABLES = ("summary.csv", "servers.csv", "timeseries.csv", "faults.csv")
# The test suite's reduced sizes (tests/test_scenarios.py).
SHORT = {"large-fleet": ("1s", "0.1s")}
RECORD = HERE / "identity.json"


def hashes(path: Path, jobs: int) -> dict[str, str]:
    """The SHA-256 of each table ``lbsim run`` writes for the scenario at ``path``."""
    duration, warmup = SHORT.get(path.stem, ("40s", "4s"))
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "lbsim", "run", str(path), "--out", out, "--quiet",
            "--jobs", str(jobs), "--replications", "1",
            "--set", f"duration={duration}", "--set", f"warmup={warmup}",
        ]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return {
            table: hashlib.sha256((Path(out) / table).read_bytes()).hexdigest()
            for table in TABLES
            if (Path(out) / table).exists()
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write benchmarks/identity.json")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    found = {path.stem: hashes(path, args.jobs) for path in SCENARIOS}
    if args.record:
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                                check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
        RECORD.write_text(json.dumps({"commit": commit, "tables": found}, indent=1, sort_keys=True) + "\n")
        print(f"recorded {sum(map(len, found.values()))} tables of {len(found)} scenarios at {commit}")
        return 0
    record = json.loads(RECORD.read_text())
    recorded = record["tables"]
    print(f"against the hashes recorded at {record['commit']}")
    differ = [
        f"{name}/{table}"
        for name in sorted(set(found) | set(recorded))
        for table in sorted(set(found.get(name, {})) | set(recorded.get(name, {})))
        if found.get(name, {}).get(table) != recorded.get(name, {}).get(table)
    ]
    for item in differ:
        print(f"differs: {item}")
    print(f"{len(differ)} of {sum(map(len, recorded.values()))} tables differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
