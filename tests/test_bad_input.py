"""Every malformed scenario gives one line naming the file, the key, the rule and the value;
exit code 2; no traceback; nothing written."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lbsim.cli import main

BAD = sorted((Path(__file__).parent / "bad_scenarios").glob("*.yaml"))


def expected_message(path: Path) -> str:
    first = path.read_bytes().decode("utf-8", "replace").splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def test_there_are_at_least_fifteen_cases():
    assert len(BAD) >= 15


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_scenario_is_one_line_exit_2_and_nothing_written(path, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert expected_message(path) in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_real_process_prints_no_traceback(tmp_path):
    path = Path(__file__).parent / "bad_scenarios" / "zero_workers.yaml"
    process = subprocess.run(
        [sys.executable, "-m", "lbsim", "run", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 2
    assert process.stdout == ""
    assert process.stderr.strip() == f"error: {path}: servers[1].workers must be >= 1; got 0."
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "workload.rate"], "--set must be written key.path=value; got 'workload.rate'."),
        (["--set", "servers[0].workers=0"], "servers[0].workers must be >= 1; got 0."),
        (["--set", "balancer.policy=ip_hsh"], "Did you mean 'ip_hash'?"),
        (
            ["--sweep", "workload.rate=100/s,nope"],
            "sweep.workload.rate[1]: workload.rate must be a rate",
        ),
        (
            ["--sweep", "servers..count=1"],
            "must be a key path such as 'servers[0].count'; got 'servers..count'.",
        ),
        (["--set", "balancer={"], "balancer must be a YAML value; got '{'."),
        (
            ["--set", "balancer={policy: p2c, policy: random}"],
            "balancer must not repeat a key in one mapping; got 'policy' twice.",
        ),
        (["--seed", "-1"], "seed must be >= 0; got -1."),
        # Click's own checks, one line too (not its three-line usage text).
        (
            ["--jobs", "0"],
            "error: Invalid value for '--jobs': 0 is not in the range x>=1. (see lbsim run --help)",
        ),
        (["--replications", "0"], "Invalid value for '--replications': 0 is not in the range 1<=x<=100000."),
        (["--bogus"], "error: No such option '--bogus'"),
        (["--seed", "9" * 5000], "error: Invalid value for '--seed': '99999"),
    ],
)
def test_bad_options_are_one_line_too(args, message, tmp_path):
    path = Path(__file__).parents[1] / "scenarios" / "quickstart.yaml"
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), *args], prog_name="lbsim")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert len(result.output) < 300
    assert message in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run"], "error: Missing argument 'SCENARIO'. (see lbsim run --help)"),
        (
            ["run", "scenarios"],
            "error: Invalid value for 'SCENARIO': File 'scenarios' is a directory. (see lbsim run --help)",
        ),
        (["nosuch"], "error: No such command 'nosuch'. (see lbsim --help)"),
        (["run", "s.yaml", "--seed"], "error: Option '--seed' requires an argument. (see lbsim run --help)"),
        (
            ["export", "s.yaml"],
            "error: Missing option '--to'. Choose from: haproxy, nginx (see lbsim export --help)",
        ),
    ],
)
def test_usage_mistakes_are_one_line(args, line):
    result = CliRunner().invoke(main, args, prog_name="lbsim")
    assert (result.exit_code, result.output.strip()) == (2, line)


def test_a_missing_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_an_output_folder_that_cannot_be_made_is_refused_before_simulating(tmp_path):
    path = Path(__file__).parents[1] / "scenarios" / "quickstart.yaml"
    (tmp_path / "a file").write_text("")
    cases = [
        (tmp_path / "a file" / "out", "--out must be a folder; got"),
        (tmp_path / ("x" * 300), "--out: every name in the path must be at most 255 bytes; got one of 300."),
    ]
    for out, message in cases:
        result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--quiet"])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert message in result.output


@pytest.mark.parametrize(
    ("scheduler", "reason"),
    [("bogus", "no protocol, such as tcp://"), ("tcp://127.0.0.1:1", "Timed out trying to connect")],
)
def test_a_bad_or_unreachable_scheduler_is_one_line_within_seconds(scheduler, reason, tmp_path):
    path = tmp_path / "small.yaml"
    # Sizes of one value: 10 requests raise no warning about the mean size.
    path.write_text(
        "name: small\nduration: 1s\nworkload: {rate: 10/s, size: det(10ms)}\nservers: [{name: web}]\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--scheduler", scheduler])
    assert result.exit_code == 2
    # The lines before are the estimate of the run's size and its offered load, printed
    # before connecting.
    *before, line = result.output.strip().splitlines()
    assert len(before) == 2 and before[1].startswith("offered load") and "Traceback" not in result.output
    assert line.startswith("error: --scheduler must be 'local' or the address of a reachable Dask scheduler")
    assert reason in line
    assert not out.exists()


def test_a_utf16_scenario_with_a_byte_order_mark_is_read(tmp_path):
    # What Windows PowerShell writes by default (Out-File, > redirection).
    text = "name: windows\nduration: 1s\nworkload: {rate: 10/s, size: exp(10ms)}\nservers: [{name: web}]\n"
    path = tmp_path / "windows.yaml"
    path.write_bytes(text.encode("utf-16"))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "summary.csv").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("replications: 1000000000", "replications must be <= 100000; got 1000000000."),
        ("balancer: {instances: 9223372036854775808}", "balancer.instances must be <= 10000"),
        ("servers: [{name: web, count: 10000000000}]", "servers[0].count must be <= 1000000"),
        ("balancer: {cores: 9223372036854775808}", "balancer.cores must be <= 1024"),
    ],
)
def test_sizes_that_would_exhaust_memory_are_refused(change, message, tmp_path):
    text = "name: big\nduration: 1s\nworkload: {rate: 10/s, size: exp(10ms)}\nservers: [{name: web}]\n"
    key = change.partition(":")[0]
    lines = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join([*lines, change]) + "\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2
    assert message in result.output, result.output


def test_a_run_above_the_request_budget_needs_force(tmp_path):
    # 10 million requests a second for 10 minutes: 6e9 requests, hours of simulation.
    path = tmp_path / "huge.yaml"
    path.write_text(
        "name: huge\nduration: 10m\nworkload: {rate: 1e7/s, size: exp(1ms)}\nservers: [{name: web}]\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {path}: a run must simulate at most 1e+09 requests without --force; "
        "got about 6e+09 (1 cell(s) x 1 replication(s))."
    )
    assert not out.exists()


def test_a_run_says_how_much_it_will_simulate_before_it_starts(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(
        "name: small\nduration: 10s\nworkload: {rate: 100/s, size: exp(1ms)}\nservers: [{name: web}]\n"
    )
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--jobs", "1"])
    assert result.exit_code == 0
    assert (
        "about 1,000 requests in 1 cell(s) x 1 replication(s): about 1 s at 150,000 requests/s"
        in result.output
    )


def test_a_scenario_path_that_is_not_a_regular_file_is_refused_unread(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would block forever
    result = CliRunner().invoke(main, ["run", str(fifo), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith(f"error: {fifo}: the scenario file must be a regular file; got '")
    assert line.endswith("fifo.yaml', which is not.")


def test_set_nested_too_deeply_is_one_line(tmp_path):
    path = Path(__file__).parents[1] / "scenarios" / "quickstart.yaml"
    result = CliRunner().invoke(
        main, ["run", str(path), "--set", "description=" + "[" * 5000, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "description must nest mappings and lists less deeply" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_scheduler_address_that_is_not_dask_is_one_line(tmp_path):
    # A web server where the scheduler should be: Dask reads its reply as a frame length.
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(20)

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                peer, _ = listener.accept()
                peer.recv(100)
                peer.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1000)
                peer.close()

    threading.Thread(target=answer, daemon=True).start()
    path = tmp_path / "small.yaml"
    path.write_text(
        "name: small\nduration: 1s\nworkload: {rate: 10/s, size: exp(10ms)}\nservers: [{name: web}]\n"
    )
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    out = tmp_path / "out"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "lbsim",
            "run",
            str(path),
            "--scheduler",
            address,
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    listener.close()
    assert process.returncode == 2, process.stderr
    assert process.stderr.startswith("error: --scheduler must be 'local' or the address of a reachable Dask")
    assert len(process.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_long_scenario_path_is_shortened_to_its_end(tmp_path):
    folder = tmp_path / ("d" * 150)
    folder.mkdir()
    (folder / "s.yaml").write_text("name: x\nduration: -1\n")
    result = CliRunner().invoke(main, ["run", str(folder / "s.yaml")])
    assert result.exit_code == 2
    prefix = result.output.split(": duration must be > 0")[0]
    assert prefix == "error: ..." + str(folder / "s.yaml")[-97:]


@pytest.mark.slow
def test_a_scheduler_address_that_accepts_and_never_answers_is_one_line_within_seconds(tmp_path):
    import socket
    import threading
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    port = listener.getsockname()[1]
    path = tmp_path / "small.yaml"
    path.write_text(
        "name: small\nduration: 1s\nworkload: {rate: 10/s, size: det(10ms)}\nservers: [{name: web}]\n"
    )
    out = tmp_path / "out"
    started = time.monotonic()
    result = CliRunner().invoke(
        main, ["run", str(path), "--out", str(out), "--scheduler", f"tcp://127.0.0.1:{port}"]
    )
    assert time.monotonic() - started < 20  # Dask alone waited until the peer hung up
    assert result.exit_code == 2
    assert (
        result.output.strip()
        .splitlines()[-1]
        .endswith(f"got 'tcp://127.0.0.1:{port}' (no answer within 10 s).")
    )
    assert not out.exists()
    listener.close()


def test_every_mistake_of_a_scenario_is_reported_a_line_each(tmp_path):
    path = tmp_path / "three.yaml"
    path.write_text(
        "name: three\nduration: 10s\nworkload: {rate: -5/s, size: exp(10ms)}\n"
        "servers: [{name: web, count: 0}, {name: big, count: 2, speed: fast}]\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {path}: workload.rate must be > 0; got '-5/s'.",
        f"error: {path}: servers[0].count must be >= 1; got 0.",
        f"error: {path}: servers[1].speed must be a number; got 'fast'.",
    ]
    assert not out.exists()


def test_past_five_mistakes_the_rest_are_counted(tmp_path):
    servers = ", ".join(f"{{name: s{i}, count: 0}}" for i in range(7))
    path = tmp_path / "seven.yaml"
    head = "name: seven\nduration: 9s\nworkload: {rate: 5, size: exp(1s)}\n"
    path.write_text(f"{head}servers: [{servers}]\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    lines = result.output.splitlines()
    assert len(lines) == 6 and lines[-1] == f"error: {path}: and 2 more error(s)."
