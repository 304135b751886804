"""Ctrl-C and killed processes during a sweep in worker processes: lbsim stops within a
second or two with one line, keeps what finished, and leaves no process behind."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import lbsim
from tests.helpers import make_scenario

pytestmark = pytest.mark.slow

# Twelve runs of about a second each.
SCENARIO = make_scenario(
    name="interrupt",
    duration=40.0,
    replications=2,
    workload={"arrivals": "poisson", "rate": 4000, "size": "exp(4ms)"},
    servers=[{"name": "web", "count": 20}],
    sweep={"balancer.policy": ["random", "round_robin", "least_connections", "p2c", "jiq", "peak_ewma"]},
)


def start(tmp_path: Path, out: str) -> subprocess.Popen[str]:
    """``lbsim run`` with two workers in a process group of its own, as a terminal starts it."""
    path = tmp_path / "interrupt.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    command = [sys.executable, "-m", "lbsim", "run", str(path), "--out", str(tmp_path / out), "--jobs", "2"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def kept(tmp_path: Path, out: str) -> int:
    return len(list((tmp_path / out / "cache").glob("*.npz")))


def wait_for_runs(tmp_path: Path, out: str, n: int) -> None:
    deadline = time.time() + 120
    while kept(tmp_path, out) < n and time.time() < deadline:
        time.sleep(0.05)
    assert kept(tmp_path, out) >= n


def group_left(pgid: int) -> list[str]:
    """The processes still alive in process group ``pgid``."""
    table = subprocess.run(["ps", "-eo", "pgid=,pid=,stat=,args="], capture_output=True, text=True).stdout
    return [
        line for line in table.splitlines() if line.split()[0] == str(pgid) and "Z" not in line.split()[2]
    ]


def workers_of(pid: int) -> list[int]:
    table = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(word) for word in table.split()]


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_at_once_keeps_finished_runs_and_resumes(tmp_path, presses):
    process = start(tmp_path, "out")
    wait_for_runs(tmp_path, "out", 2)
    pressed = time.time()
    for _ in range(presses):
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.1)
    _, err = process.communicate(timeout=30)
    assert time.time() - pressed < 5
    assert process.returncode == 130
    assert err.strip().splitlines()[-1].startswith("interrupted: finished runs are kept in")
    assert "Traceback" not in err
    time.sleep(0.2)
    assert group_left(process.pid) == []
    finished = kept(tmp_path, "out")
    assert 2 <= finished < 12
    if presses == 1:
        resumed = start(tmp_path, "out")
        out, _ = resumed.communicate(timeout=120)
        assert f"({finished} cached in" in out
        clean = start(tmp_path, "clean")
        clean.communicate(timeout=120)
        assert (tmp_path / "out" / "summary.csv").read_bytes() == (
            tmp_path / "clean" / "summary.csv"
        ).read_bytes()


def test_workers_do_not_outlive_a_killed_lbsim(tmp_path):
    process = start(tmp_path, "out")
    wait_for_runs(tmp_path, "out", 1)
    workers = workers_of(process.pid)
    assert len(workers) == 2
    process.kill()
    process.communicate()
    deadline = time.time() + 5
    while group_left(process.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert group_left(process.pid) == []


def test_a_killed_worker_is_one_line_and_a_clean_stop(tmp_path):
    process = start(tmp_path, "out")
    wait_for_runs(tmp_path, "out", 1)
    os.kill(workers_of(process.pid)[0], signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    lines = [
        line
        for line in err.replace("\r", "\n").splitlines()
        if line.strip() and "simulating" not in line and not line.startswith(("about ", "offered load "))
    ]
    assert lines == [
        "error: a worker process ended in the middle of a run (killed, or out of memory?); "
        "the runs that finished are kept, and the same command resumes from them."
    ]
    time.sleep(0.2)
    assert group_left(process.pid) == []


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.15, 0.2, 0.3, 0.4])
def test_ctrl_c_while_lbsim_is_still_importing_is_one_line(delay):
    # Before Python has installed its own SIGINT handler the signal kills the process (-2);
    # after that, at any moment of start-up, lbsim ends with "interrupted." and exit code 130.
    process = subprocess.Popen(
        [sys.executable, "-m", "lbsim", "policies"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    if "Traceback" in err:
        # Python itself was still starting (site, or finding and compiling lbsim/__init__.py,
        # which a loaded machine stretches past 50 ms), or lbsim had not yet reached its
        # guard: nothing could catch it. Once the guard holds, no traceback.
        assert lbsim_frames(err) <= before_the_guard(), err
        assert process.returncode in (1, -signal.SIGINT)
        return
    assert process.returncode in (0, 130, -signal.SIGINT)
    if process.returncode == 130:
        assert err.strip().splitlines() == ["interrupted."]


def lbsim_frames(traceback: str) -> set[tuple[str, int]]:
    """The (file name, line) of each frame of lbsim's own code in ``traceback``."""
    frames = re.findall(r'File "([^"]*)", line (\d+)', traceback)
    return {(Path(path).name, int(line)) for path, line in frames if Path(path).parent.name == "lbsim"}


def before_the_guard() -> set[tuple[str, int]]:
    """The lines of lbsim that run before its start-up guard holds: lbsim/__init__.py up to
    its ``startup.guard()`` call, and lbsim/startup.py, which defines the guard."""
    package = Path(lbsim.__file__).parent
    init = package.joinpath("__init__.py").read_text().splitlines()
    guard = next(number for number, line in enumerate(init, 1) if line.strip() == "startup.guard()")
    startup = package.joinpath("startup.py").read_text().splitlines()
    return {("__init__.py", number) for number in range(1, guard + 1)} | {
        ("startup.py", number) for number in range(1, len(startup) + 1)
    }


def test_the_frames_of_a_traceback_before_the_guard_are_told_apart():
    # The CI run that failed: a Ctrl-C while lbsim/startup.py imported what the guard needs.
    early = """Traceback (most recent call last):
  File "<frozen runpy>", line 189, in _run_module_as_main
  File "/check/work/main/lbsim/__init__.py", line 20, in <module>
    from lbsim import startup
  File "/check/work/main/lbsim/startup.py", line 13, in <module>
    import signal
  File "/root/.pyenv/versions/3.11.7/lib/python3.11/enum.py", line 365, in __setitem__
KeyboardInterrupt"""
    assert lbsim_frames(early) == {("__init__.py", 20), ("startup.py", 13)}
    assert lbsim_frames(early) <= before_the_guard()
    late = early.replace('__init__.py", line 20', 'cli.py", line 20')
    assert not lbsim_frames(late) <= before_the_guard()


def test_a_ctrl_c_while_the_command_line_imports_ends_lbsim_at_once():
    # lbsim.cli made slow to import (a second in its module body): a Ctrl-C half-way through
    # ends the command with one line and 130, without running it and without a traceback.
    code = """
import importlib.abc, importlib.machinery, sys, time

class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "lbsim.cli" else None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        print("importing", flush=True)
        time.sleep(1.0)
        module.main = lambda: print("ran")

sys.meta_path.insert(0, Finder())
from lbsim.__main__ import entry
entry()
"""
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "importing\n"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (130, "", "interrupted.\n")


def test_the_startup_guard_holds_only_while_lbsim_starts_as_a_command():
    show = "import signal, lbsim; print(signal.getsignal(signal.SIGINT).__name__)"
    # Imported as a library, lbsim leaves Ctrl-C to Python.
    library = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True, timeout=60)
    assert library.stdout == "default_int_handler\n"
    # Run as `python -m lbsim` (sys.argv[0] is "-m" while Python looks for lbsim.__main__).
    module = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv[0] = '-m'; " + show],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert module.stdout == "end_at_once\n"
    # The command line itself runs with Python's handler back (its own Ctrl-C handling
    # cleans up), however many times the guard was taken; an ignored SIGINT stays ignored.
    code = (
        "import signal; from lbsim import startup; first = startup.guard(); second = startup.guard(); "
        "startup.release(second); print(signal.getsignal(signal.SIGINT).__name__); "
        "signal.signal(signal.SIGINT, signal.SIG_IGN); startup.guard(); "
        "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    )
    both = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert both.stdout == "default_int_handler\nTrue\n"
