"""The sim-to-real harness (benchmarks/sim_to_real): its backends serve as lbsim's FCFS
servers do, its load is open-loop, and a short run through real HAProxy and NGINX lands
near lbsim (loose bounds: six seconds of trace on a shared machine)."""

import asyncio
import http.client
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from benchmarks.sim_to_real import __main__ as command
from benchmarks.sim_to_real import backends, harness
from benchmarks.sim_to_real.__main__ import main
from benchmarks.sim_to_real.balancers import executable, running
from benchmarks.sim_to_real.replay import Client, Reply, length_and_close, replay, reply_of

ROOT = Path(__file__).resolve().parent.parent
# The backends and balancers listen on fixed loopback ports: these tests run in one process.
pytestmark = pytest.mark.xdist_group("loopback-ports")
PORT = 18581


@pytest.fixture
def backend(tmp_path):
    """One backend ``half`` at speed 0.5 on PORT."""
    arguments = [sys.executable, "-m", "benchmarks.sim_to_real.backends", f"half={PORT}:0.5"]
    with running(arguments, PORT, tmp_path / "backends.log"):
        yield


def _get(path):
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    connection.request("GET", path)
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer


def test_a_backend_serves_size_over_speed_and_says_what_it_delivered(backend):
    answer = _get("/?size=0.01")
    # 10 ms of work at speed 0.5: 20 ms of service, plus what a busy machine may add.
    assert answer.status == 200 and answer.getheader("X-Server") == "half"
    assert 0.020 <= float(answer.getheader("X-Service")) < 0.040
    assert float(answer.getheader("X-Wait")) < 0.005
    assert _get("/?size=many").status == 400
    assert _get("/?size=inf").status == 400


def test_a_request_the_backend_refuses_is_answered_and_the_backend_serves_on(backend):
    # A size too large to sleep through (time.sleep raises OverflowError) once killed the
    # worker thread, and every later request waited for ever.
    assert _get("/?size=1e300").status == 400
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as connection:
        connection.sendall(b"GET /?size=0 HTTP/1.1\r\n" + b"X: 1\r\n" * 101 + b"\r\n")
        assert _read_answer(connection).startswith(b"HTTP/1.1 431 ")
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as connection:
        connection.sendall(b"GET /?size=0 HTTP/1.1\r\nX: " + b"a" * backends.HEAD_LIMIT + b"\r\n\r\n")
        assert _read_answer(connection).startswith(b"HTTP/1.1 431 ")
    # A body is read past, so the next request on the connection is read whole.
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as connection:
        connection.sendall(b"GET /?size=0 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        assert _read_answer(connection).startswith(b"HTTP/1.1 200 OK\r\n")
        connection.sendall(b"GET /?size=0 HTTP/1.1\r\n\r\n")
        assert _read_answer(connection).startswith(b"HTTP/1.1 200 OK\r\n")
    assert _get("/?size=0.001").status == 200


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (["GET /?size=0.5 HTTP/1.1"], None),
        (["POST /?size=0.5 HTTP/1.1"], "405 Method Not Allowed"),
        (["GET /?size=0.5"], "400 Bad Request"),
        (["GET /?size=-1 HTTP/1.1"], "400 Bad Request"),
        (["GET /?size=3601 HTTP/1.1"], "400 Bad Request"),
        (["GET /?size=0.5 HTTP/1.1", "Transfer-Encoding: chunked"], "400 Bad Request"),
        (["GET /?size=0.5 HTTP/1.1", "Content-Length: -1"], "400 Bad Request"),
        (["GET /?size=0.5 HTTP/1.1", "Content-Length: \u00b2"], "400 Bad Request"),
        (["GET /?size=0.5 HTTP/1.1", *["X: 1"] * 101], "431 Request Header Fields Too Large"),
    ],
)
def test_a_request_is_read_or_refused_with_its_status(head, status):
    if status is None:
        assert backends.asked(head) == backends.Asked(0.5, 0, False)
        return
    with pytest.raises(backends.Refused) as refused:
        backends.asked(head)
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("head", "close"),
    [
        (["GET /?size=0 HTTP/1.1"], False),
        (["GET /?size=0 HTTP/1.1", "Connection: close"], True),
        (["GET /?size=0 HTTP/1.0"], True),
        (["GET /?size=0 HTTP/1.0", "Connection: Keep-Alive"], False),
    ],
)
def test_a_connection_ends_after_the_answer_as_rfc_9112_says(head, close):
    assert backends.asked(head).close is close


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_backends_help_prints_the_usage(option, capsys):
    backends.main([option])
    assert backends.USAGE in capsys.readouterr().out


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "no backend given"),
        (["a=notaport:1"], "'a=notaport:1' is not NAME=PORT:SPEED"),
        (["a=18592:0"], "'a=18592:0' is not NAME=PORT:SPEED"),
        (["a=18592:nan"], "'a=18592:nan' is not NAME=PORT:SPEED"),
        (["18592:1"], "'18592:1' is not NAME=PORT:SPEED"),
        (["a=70000:1"], "'a=70000:1' is not NAME=PORT:SPEED"),
        # A service of an hour at this speed is past what time.sleep takes (it killed the worker).
        (["a=18592:1e-300"], "'a=18592:1e-300' is not NAME=PORT:SPEED"),
        (["a=18592:1", "a=18593:1"], "two backends have the same name"),
        (["a=18592:1", "b=18592:1"], "two backends have the same port"),
    ],
)
def test_bad_backend_specs_are_one_line_and_exit_code_2(specs, message, capsys):
    with pytest.raises(SystemExit) as exited:
        backends.main(specs)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1


def test_a_backend_queues_first_come_first_served_and_the_load_is_open_loop(backend):
    # 150 ms of service first, then four requests of none, 10 ms apart: each waits for the
    # first (FCFS, one worker), and each is still sent on time; latency counts from then.
    # A closed loop would send each only after the answer before it (over 100 ms late), and
    # parallel service would not make them wait: 30 ms of slack tells both apart on a
    # machine busy with other tests.
    trace = [(0.0, 0.075), (0.01, 0.0), (0.02, 0.0), (0.03, 0.0), (0.04, 0.0)]
    replies = replay(trace, PORT)
    assert all(reply.late < 0.030 for reply in replies)
    for (scheduled, _), reply in zip(trace[1:], replies[1:], strict=True):
        assert reply.wait == pytest.approx(0.150 - scheduled, abs=0.030)
        assert reply.latency == pytest.approx(0.150 - scheduled, abs=0.030)


def _read_answer(connection):
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"half"):
        chunk = connection.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_backend_keeps_an_http11_connection_open_and_closes_an_http10_one(backend):
    # RFC 9112 9.3: HTTP/1.1 persists unless a side says close; HTTP/1.0 closes unless it
    # asks for keep-alive.
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as connection:
        for _ in range(2):
            connection.sendall(b"GET /?size=0 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_answer(connection).startswith(b"HTTP/1.1 200 OK\r\n")
        connection.sendall(b"GET /?size=0 HTTP/1.0\r\n\r\n")
        assert b"Connection: close" in _read_answer(connection)
        assert connection.recv(4096) == b""


def test_the_load_reuses_an_idle_connection_and_opens_one_when_none_is_idle(backend):
    async def exchanges(concurrent):
        client = Client(PORT)
        asks = [client.exchange(0.0, 0.0, time.perf_counter()) for _ in range(3)]
        replies = await asyncio.gather(*asks) if concurrent else [await ask for ask in asks]
        idle = len(client.idle)
        client.close()
        return idle, replies

    idle, replies = asyncio.run(exchanges(concurrent=False))
    assert idle == 1 and [r.status for r in replies] == [200, 200, 200]
    idle, replies = asyncio.run(exchanges(concurrent=True))
    assert idle == 3 and [r.server for r in replies] == ["half"] * 3


def test_failed_requests_are_counted_by_how_they_failed():
    def reply(status):
        return Reply(0.0, 0.0, 0.1, status, "s-0" if status else "", 0.0, 0.1)

    assert harness.failures([reply(200), reply(200)]) is None
    replies = [reply(200), reply(0), reply(502), reply(0)]
    assert harness.failures(replies) == "3 of 4 requests failed (2 with no answer, 1 answered 502)"


def test_an_answer_head_gives_the_reply_and_whether_the_connection_ends():
    head = b"HTTP/1.1 200 OK\r\nX-Server: fast-1\r\nx-wait: 0.25\r\nX-Service: 0.5\r\n"
    head += b"Content-Length: 6\r\nConnection: close\r\n\r\n"
    assert reply_of(1.0, 0.001, 0.8, head) == Reply(1.0, 0.001, 0.8, 200, "fast-1", 0.25, 0.5)
    assert length_and_close(head) == (6, True)
    assert length_and_close(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n") == (0, False)
    assert reply_of(0.0, 0.0, 0.1, b"garbage\r\n\r\n").status == 0


def test_the_calibrated_trace_is_the_work_each_backend_delivered():
    trace = [(0.0, 0.010), (0.5, 0.020)]
    replies = [
        Reply(0.0, 0.0, 0.03, 200, "fast-0", 0.0, 0.0101),
        Reply(0.5, 0.0, 0.05, 200, "half-0", 0.0, 0.0402),
    ]
    speeds = dict(harness.servers_of("heterogeneous"))
    assert harness.calibrated_trace(trace, replies, speeds) == [(0.0, 0.0101), (0.5, 0.0201)]


def test_the_fleets_run_at_seventy_percent():
    # 4 x speed 1 with 50 ms of work per request: 80/s of capacity; 3.5 x 20/s: 70/s.
    assert harness.rate_of("homogeneous") == pytest.approx(0.7 * 80)
    assert harness.rate_of("heterogeneous") == pytest.approx(0.7 * 70)
    trace = harness.draw_trace(56.0, 500.0, seed=1)
    assert len(trace) / 500 == pytest.approx(56, rel=0.02)
    assert sum(size for _, size in trace) / len(trace) == pytest.approx(0.050, rel=0.03)


def _runs(**changes):
    row = {"fleet": "homogeneous", "balancer": "nginx", "algorithm": "round robin", "policy": "round_robin"}
    row |= {"overhead_ms": 1.0, "oversleep": 0.01, "correlation": 0.9}
    for m in harness.METRICS:
        row |= {f"real_{m}": 0.05, f"raw_{m}": 0.97, f"raw_{m}_min": 0.97, f"raw_{m}_max": 0.97}
        row[f"calibrated_{m}"] = 1.01
    return pd.DataFrame([row | changes])


def test_the_verdict_holds_each_metric_to_its_target():
    assert harness.verdict(_runs(), random=False) == "raw meets, calibrated meets"
    # p99 may be 10% off, the others 5% raw and 3% calibrated.
    assert harness.verdict(_runs(raw_p99=0.91, calibrated_p99=1.09), random=False) == (
        "raw meets, calibrated meets"
    )
    assert harness.verdict(_runs(raw_p90=0.94, calibrated_p50=1.04), random=False) == (
        "raw misses, calibrated misses"
    )
    # The median of the repeats decides: one repeat off of three does not.
    repeats = pd.concat([_runs(), _runs(raw_mean=0.90), _runs(raw_mean=0.99)])
    assert harness.verdict(repeats, random=False) == "raw meets, calibrated meets"
    # A random policy: the real value inside lbsim's seeds' range, widened by 5% (10% at p99).
    assert harness.verdict(_runs(raw_mean_min=0.90, raw_mean_max=0.94), random=True) == (
        "3/4 inside lbsim's seed spread"
    )
    assert harness.verdict(_runs(raw_mean_min=0.90, raw_mean_max=0.96), random=True) == (
        "4/4 inside lbsim's seed spread"
    )
    noisy = harness.table(pd.concat([_runs(), _runs(oversleep=0.03)]))
    assert "3.00% (1 noisy)" in noisy and "0.970 |" in noisy


@pytest.mark.skipif(
    shutil.which("haproxy") is None or shutil.which("nginx") is None,
    reason="HAProxy and NGINX are not installed (apt-get install haproxy nginx-light)",
)
def test_a_smoke_run_through_real_haproxy_and_nginx_lands_near_lbsim(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.sim_to_real", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(runs["balancer"]) == ["haproxy", "nginx"]
    # Six seconds of trace: loose bounds. lbsim leaves out about 2 ms of loopback overhead
    # per request (raw), and adds it back as network.local (calibrated).
    assert runs["raw_mean"].between(0.75, 1.15).all(), runs.to_string()
    assert runs["calibrated_mean"].between(0.85, 1.15).all(), runs.to_string()
    assert (runs["oversleep"] < 0.10).all()
    assert "| homogeneous | haproxy | roundrobin |" in (tmp_path / "table.md").read_text()
    # Nothing is left listening.
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", harness.LISTEN, timeout=1).connect()


def test_the_readme_shows_the_committed_run():
    table = (ROOT / "results" / "sim_to_real" / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(harness.FLEETS) * len(harness.CASES)
    readme = (ROOT / "README.md").read_text()
    assert all(row in readme for row in rows)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--seconds", "nan", "must be from 1 to 3600 seconds; got nan."),
        ("--seconds", "0", "must be from 1 to 3600 seconds; got 0."),
        ("--repeats", "0", "0 is not in the range 1<=x<=100."),
        ("--out", "FILE", "--out must be a folder it can write"),
        ("--out", "", "must name a folder; got ''."),
        ("--smoke", "--seconds 30", "runs its own trace (6 s, once, 4 equal servers); drop --seconds."),
        ("--smoke", "--repeats 2 --fleet homogeneous", "; drop --repeats, --fleet."),
    ],
)
def test_bad_options_are_refused_before_anything_runs(tmp_path, monkeypatch, option, value, message):
    monkeypatch.setattr(command, "run", lambda *args, **kwargs: pytest.fail("a run started"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("mine")
    value = str(tmp_path / "file") if value == "FILE" else value
    if option == "--out":
        arguments = [option, value]
    elif option == "--smoke":
        arguments = [option, *value.split(), "--out", str(tmp_path / "out")]
    else:
        arguments = [option, value, "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and (tmp_path / "file").read_text() == "mine"


@pytest.mark.skipif(not Path("/proc/sys").is_dir(), reason="needs Linux's /proc/sys")
def test_a_folder_it_cannot_write_in_is_refused_before_anything_runs(monkeypatch):
    # /proc/sys takes no new file, even from root, for whom permissions would not stop one.
    monkeypatch.setattr(command, "run", lambda *args, **kwargs: pytest.fail("a run started"))
    result = CliRunner().invoke(main, ["--smoke", "--out", "/proc/sys"])
    assert result.exit_code == 2
    assert result.output.startswith("error: --out must be a folder it can write; got '/proc/sys' (")


@pytest.mark.skipif(not Path("/usr/sbin/haproxy").exists(), reason="HAProxy is not in /usr/sbin")
def test_a_balancer_in_usr_sbin_is_found_without_it_on_path(monkeypatch):
    # Debian installs HAProxy and NGINX there; a non-root user's PATH leaves it out.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert executable("haproxy") == "/usr/sbin/haproxy"


def test_an_out_folder_with_an_earlier_run_is_refused(tmp_path):
    (tmp_path / "runs.csv").write_text("earlier")
    result = CliRunner().invoke(main, ["--out", str(tmp_path)])
    assert result.exit_code == 2 and "holds runs.csv of an earlier run" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]
    assert (tmp_path / "runs.csv").read_text() == "earlier"


def test_the_committed_run_is_written_only_when_out_names_it():
    assert not (ROOT / command.OUT).is_relative_to(ROOT / "results" / "sim_to_real")
    assert not (ROOT / command.SMOKE_OUT).is_relative_to(ROOT / "results" / "sim_to_real")


def test_an_interrupt_is_one_line_exit_130_and_a_table_of_the_runs_that_ended(tmp_path, monkeypatch):
    committed = pd.read_csv(ROOT / "results" / "sim_to_real" / "runs.csv")
    first = committed.iloc[0].to_dict()

    def interrupted(*args, **kwargs):
        yield first
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "available", lambda cases, echo: list(cases))
    monkeypatch.setattr(command, "versions", lambda cases: "haproxy 2.6.12")
    monkeypatch.setattr(command, "run", interrupted)
    result = CliRunner().invoke(main, ["--out", str(tmp_path)])
    assert result.exit_code == 130 and result.output.strip().splitlines()[-1] == "interrupted."
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 1
    table = (tmp_path / "table.md").read_text()
    assert "interrupted after 1 run(s)" in table
    assert f"| {first['fleet']} | {first['balancer']} | {first['algorithm']} |" in table


@pytest.mark.parametrize("existed", [False, True])
def test_an_interrupt_before_any_run_ended_leaves_no_folder_it_made(tmp_path, monkeypatch, existed):
    out = tmp_path / "out"
    if existed:
        out.mkdir()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "available", lambda cases, echo: list(cases))
    monkeypatch.setattr(command, "run", interrupted)
    result = CliRunner().invoke(main, ["--out", str(out)])
    assert result.exit_code == 130 and result.output.strip().splitlines()[-1] == "interrupted."
    assert out.exists() is existed and (not existed or not any(out.iterdir()))


def test_a_fleet_named_twice_runs_once(tmp_path, monkeypatch):
    asked = []

    def interrupted(seconds, repeats, fleets, cases, echo):
        asked.append(fleets)
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "available", lambda cases, echo: list(cases))
    monkeypatch.setattr(command, "run", interrupted)
    twice = ["--fleet", "homogeneous", "--fleet", "homogeneous"]
    CliRunner().invoke(main, [*twice, "--out", str(tmp_path / "o")])
    assert asked == [("homogeneous",)]
