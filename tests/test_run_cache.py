"""The run cache holds data only: a run read back from it gives byte-identical results; a
file planted in a results folder runs no code; a damaged file is simulated again, said once."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import make_scenario

SCENARIO = make_scenario(name="small", servers=[{"name": "web", "count": 3}], duration=2.0)


def lbsim_run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    command = [sys.executable, "-m", "lbsim", "run", str(path), "--out", str(tmp_path / "out"), "--jobs", "1"]
    return subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp_path)


def tables(tmp_path: Path) -> dict[str, bytes]:
    out = tmp_path / "out"
    return {name: (out / name).read_bytes() for name in ("summary.csv", "servers.csv", "timeseries.csv")}


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "out" / "cache").iterdir())


def rerun_over(tmp_path: Path, plant) -> tuple[subprocess.CompletedProcess[str], dict[str, bytes]]:
    """Run once, let ``plant(entry)`` replace the one cache entry, run again; return the
    rerun and the tables of the first run."""
    lbsim_run(tmp_path)
    fresh = tables(tmp_path)
    [entry] = cache_files(tmp_path)
    plant(entry)
    return lbsim_run(tmp_path), fresh


def test_a_cached_run_gives_byte_identical_tables(tmp_path):
    lbsim_run(tmp_path)
    fresh = tables(tmp_path)
    rerun = lbsim_run(tmp_path)
    assert "1 cached in" in rerun.stdout
    assert tables(tmp_path) == fresh


class Planted:
    """Unpickling this writes a marker file: what a planted cache file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.mark.parametrize("planting", ["raw pickle", "pickled array in an npz"])
def test_a_planted_cache_file_runs_no_code(tmp_path, planting):
    marker = tmp_path / "marker"

    def plant(entry: Path) -> None:
        if planting == "raw pickle":
            entry.write_bytes(pickle.dumps(Planted(marker)))
        else:
            with entry.open("wb") as file:
                np.savez(file, meta=np.array([Planted(marker)], dtype=object))

    rerun, fresh = rerun_over(tmp_path, plant)
    assert not marker.exists()
    assert "1 damaged file(s)" in rerun.stderr
    assert tables(tmp_path) == fresh


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_damaged_cache_file_is_simulated_again_and_said_once(tmp_path, damage):
    def plant(entry: Path) -> None:
        data = entry.read_bytes()
        entry.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])

    rerun, fresh = rerun_over(tmp_path, plant)
    assert rerun.stderr.count("damaged file(s)") == 1
    assert "cached in" not in rerun.stdout
    assert tables(tmp_path) == fresh
    # The rerun replaced the damaged file with a whole one.
    again = lbsim_run(tmp_path)
    assert "1 cached in" in again.stdout and "damaged file" not in again.stderr


def test_a_cache_file_of_the_old_pickle_format_is_never_read(tmp_path):
    lbsim_run(tmp_path)
    [entry] = cache_files(tmp_path)
    marker = tmp_path / "marker"
    entry.with_suffix(".pickle").write_bytes(pickle.dumps(Planted(marker)))
    os.remove(entry)
    lbsim_run(tmp_path)
    assert not marker.exists()


PLANTED_ARCHIVES = {
    "meta not JSON": {"meta": np.array("not json")},
    "meta of another format": {"meta": np.array('{"format": 99}')},
    "meta with missing parts": {"meta": np.array('{"format": 1, "summary": {}}')},
    "a table column of two dimensions": "2-D",
}


@pytest.mark.parametrize("planting", list(PLANTED_ARCHIVES))
def test_an_archive_of_the_wrong_shape_is_damaged_not_a_crash(tmp_path, planting):
    def plant(entry: Path) -> None:
        arrays = PLANTED_ARCHIVES[planting]
        if arrays == "2-D":
            with np.load(entry, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            arrays["servers.0"] = np.zeros((2, 2))
        with entry.open("wb") as file:
            np.savez(file, **arrays)

    rerun, fresh = rerun_over(tmp_path, plant)
    assert "1 damaged file(s)" in rerun.stderr
    assert tables(tmp_path) == fresh


@pytest.mark.parametrize("planting", ["a folder", "a FIFO", "a dangling link", "a link to a whole run file"])
def test_a_cache_entry_that_is_not_a_file_is_damaged_and_the_run_goes_on(tmp_path, planting):
    def plant(entry: Path) -> None:
        if planting == "a link to a whole run file":
            entry.rename(tmp_path / "elsewhere.npz")
            entry.symlink_to(tmp_path / "elsewhere.npz")
            return
        entry.unlink()
        if planting == "a folder":
            entry.mkdir()
        elif planting == "a FIFO":
            os.mkfifo(entry)
        else:
            entry.symlink_to(tmp_path / "nowhere.npz")

    # It would block forever reading a FIFO, or fail storing over a folder.
    rerun, fresh = rerun_over(tmp_path, plant)
    assert "1 damaged file(s)" in rerun.stderr
    assert tables(tmp_path) == fresh
