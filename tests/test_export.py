"""lbsim export: a scenario's balancer as the HAProxy or NGINX config that runs it, written
the way the systems' documentation writes them; what they cannot say is listed."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lbsim.cli import main
from lbsim.config.loading import load_scenario
from lbsim.errors import file_named
from lbsim.interop import haproxy, nginx
from tests.helpers import make_scenario

FLEET = [{"name": "fast", "count": 2, "weight": 3}, {"name": "slow", "count": 1}]


def _export(system, **changes):
    scenario = load_scenario(make_scenario(servers=FLEET, **changes))
    return system.export(scenario, None, "127.0.0.1:8080")


def _lines(text):
    return [line.strip() for line in text.splitlines()]


def test_haproxy_leastconn_with_weights_and_checks():
    exported = _export(
        haproxy,
        balancer={
            "policy": "weighted_least_connections",
            "health_check": {"interval": 1, "rise": 2, "fall": 3},
        },
    )
    lines = _lines(exported.text)
    assert "balance leastconn" in lines and "option httpchk GET /health" in lines
    assert "default-server inter 1s rise 2 fall 3" in lines
    assert lines[-3:] == [
        "server fast-0 127.0.0.1:8001 weight 3 check",
        "server fast-1 127.0.0.1:8002 weight 3 check",
        "server slow-0 127.0.0.1:8003 weight 1 check",
    ]
    # lbsim's default panic threshold (50%) acts once checks mark servers down: HAProxy has none.
    assert exported.unexpressed == ["balancer.panic_threshold 50%: HAProxy has no panic mode (Envoy's)"]


def test_haproxy_defaults_follow_emulate():
    # emulate: haproxy: retries 3 on conn-failure to the same server (no option redispatch),
    # random is balance random with 2 draws.
    lines = _lines(_export(haproxy, balancer={"emulate": "haproxy", "policy": "random", "retries": {}}).text)
    assert "retries 3" in lines and "retry-on conn-failure" in lines
    assert "balance random(2)" in lines and not any("redispatch" in line for line in lines)


def test_nginx_random_two_becomes_haproxy_random_of_two_draws():
    exported = _export(haproxy, balancer={"policy": "random_two"})
    assert "balance random(2)" in _lines(exported.text)
    assert exported.unexpressed == [
        "balancer.policy random_two: exported as balance random(2) "
        "(NGINX's two weighted draws become two draws over HAProxy's hash tree)"
    ]


def test_an_unweighted_policy_is_exported_with_equal_weights():
    lines = _lines(_export(haproxy, balancer={"policy": "random"}).text)
    assert "balance random(1)" in lines
    assert [line.split()[-1] for line in lines if line.startswith("server ")] == ["1", "1", "1"]


def test_a_policy_without_a_counterpart_is_listed_not_dropped():
    exported = _export(nginx, balancer={"policy": "p2c"})
    assert "balancer.policy p2c: NGINX has no counterpart; exported as round robin" in exported.unexpressed
    assert (
        "# not expressed: balancer.policy p2c: NGINX has no counterpart; exported as round robin"
        in exported.text
    )


def test_nginx_without_passive_checks_turns_max_fails_off():
    # NGINX's default max_fails=1 would mark servers down where the scenario has no passive check.
    lines = _lines(_export(nginx, balancer={"policy": "least_connections"}).text)
    assert "least_conn;" in lines
    # Each server line names its server in a comment, for lbsim import.
    assert "server 127.0.0.1:8001 weight=3 max_fails=0 fail_timeout=10s;  # fast-0" in lines
    assert "proxy_next_upstream off;" in lines and "proxy_next_upstream_tries 1;" in lines
    # Upstream keep-alive, as nginx.org's ngx_http_upstream_keepalive_module shows it: the
    # directive after the algorithm, HTTP/1.1 and an empty Connection header.
    assert lines.index("keepalive 32;") > lines.index("least_conn;")
    assert "proxy_http_version 1.1;" in lines and 'proxy_set_header Connection "";' in lines


def test_nginx_defaults_follow_emulate():
    # emulate: nginx: max_fails=1 fail_timeout=10s; proxy_next_upstream error timeout, every
    # server once (tries = 3 servers).
    lines = _lines(_export(nginx, balancer={"emulate": "nginx"}).text)
    assert "server 127.0.0.1:8003 weight=1 max_fails=1 fail_timeout=10s;  # slow-0" in lines
    assert "proxy_next_upstream error timeout;" in lines and "proxy_next_upstream_tries 3;" in lines
    assert not any(line.startswith(("least_conn", "random", "hash")) for line in lines)  # round robin


def test_nginx_at_layer_4_is_a_stream_block():
    text = _export(nginx, balancer={"layer": 4}).text
    assert "stream {" in text and "http {" not in text and "proxy_pass lbsim;" in text
    assert "keepalive" not in text  # the stream module's upstreams have no keepalive


def test_nginx_allows_no_backup_with_random():
    servers = [*FLEET, {"name": "spare", "backup": True}]
    exported = nginx.export(
        load_scenario(make_scenario(servers=servers, balancer={"policy": "random"})), None, "x:1"
    )
    assert "backup" not in exported.text.split("upstream")[1].split("}")[0]
    assert any(
        line.startswith("servers' backup: NGINX allows no backup with random;")
        for line in exported.unexpressed
    )


def test_backends_take_the_addresses_given(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(servers=FLEET)))
    args = ["export", str(path), "--to", "haproxy", "--backends", "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "server slow-0 10.0.0.3:80 weight 1" in result.output
    wrong = CliRunner().invoke(main, [*args[:-1], "10.0.0.1:80", "--out", str(tmp_path / "h.cfg")])
    assert wrong.exit_code == 2 and not (tmp_path / "h.cfg").exists()
    assert wrong.output.strip() == (
        f"error: {file_named(path)}: --backends must give one address per server (3); got 1."
    )


def test_a_sweep_of_the_balancer_needs_one_value(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(sweep={"balancer.policy": ["random", "round_robin"]})))
    result = CliRunner().invoke(main, ["export", str(path), "--to", "nginx"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {file_named(path)}: export writes one balancer, so the sweep must not vary the balancer "
        "or the servers; got 'balancer.policy' (pick one value with --set)."
    )


# Debian's NGINX builds the stream module (layer 4) as a dynamic module of its own package.
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
POLICIES = [
    "round_robin",
    "weighted_round_robin",
    "least_connections",
    "weighted_least_connections",
    "random",
]


@pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="HAProxy is not installed (apt-get install haproxy)"
)
@pytest.mark.parametrize("policy", [*POLICIES, "chash_random", "p2c", "random_two"])
def test_haproxy_accepts_the_export(tmp_path, policy):
    balancer = {
        "policy": policy,
        "health_check": {},
        "retries": {"max": 2, "on": ["connect_failure", "error"]},
    }
    servers = [*FLEET, {"name": "spare", "backup": True, "slow_start": {"window": 10}}]
    scenario = load_scenario(make_scenario(servers=servers, balancer=balancer))
    (tmp_path / "h.cfg").write_text(haproxy.export(scenario, None, "127.0.0.1:18080").text)
    checked = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "h.cfg")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="NGINX is not installed (apt-get install nginx-light)"
)
@pytest.mark.parametrize("layer", [7, 4])
@pytest.mark.parametrize("policy", [*POLICIES, "random_two", {"name": "ip_hash", "style": "nginx"}])
def test_nginx_accepts_the_export(tmp_path, policy, layer):
    balancer = {
        "policy": policy,
        "layer": layer,
        "outlier_detection": {"max_fails": 2, "fail_timeout": 5},
        "retries": {"max": 2, "on": ["connect_failure", "timeout"]},
    }
    # 100 servers besides: the upstream's shared zone must hold them all.
    servers = [*FLEET, {"name": "spare", "backup": True}, {"name": "many", "count": 100}]
    scenario = load_scenario(make_scenario(servers=servers, balancer=balancer))
    (tmp_path / "n.conf").write_text(nginx.export(scenario, None, "127.0.0.1:18080").text)
    settings = f"pid {tmp_path}/n.pid; error_log {tmp_path}/error.log;"
    if layer == 4:
        if not STREAM_MODULE.exists():
            pytest.skip("NGINX's stream module is not installed (apt-get install libnginx-mod-stream)")
        settings += " load_module modules/ngx_stream_module.so;"
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "n.conf"), "-g", settings], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_every_note_is_in_the_file_too():
    exported = _export(haproxy, balancer={"retries": {"max": 2, "hedge": 0.05}})
    assert exported.unexpressed and all(
        f"# not expressed: {line}" in exported.text for line in exported.unexpressed
    )
    assert "balancer.retries.hedge: HAProxy has none" in exported.unexpressed


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--backends", "10.0.0.1:99999,10.0.0.2:80,10.0.0.3:80", "--backends must be HOST:PORT addresses"),
        ("--backends", "::1:80,10.0.0.2:80,10.0.0.3:80", "--backends must be HOST:PORT addresses"),
        ("--listen", "127.0.0.1:80\n    bind 0.0.0.0:1", "--listen must be HOST:PORT addresses"),
    ],
)
def test_addresses_are_checked_before_they_reach_a_config(tmp_path, option, value, message):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario(servers=FLEET)))
    result = CliRunner().invoke(main, ["export", str(path), "--to", "haproxy", option, value])
    assert result.exit_code == 2 and result.output.startswith(f"error: {file_named(path)}: {message}")
    assert len(result.output.strip().splitlines()) == 1


def test_out_never_replaces_what_is_not_a_regular_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(make_scenario()))
    target = tmp_path / "target"
    target.write_text("kept")
    link = tmp_path / "link"
    link.symlink_to(target)
    result = CliRunner().invoke(main, ["export", str(path), "--to", "nginx", "--out", str(link)])
    assert result.exit_code == 2 and "--out must name a regular file or a new one" in result.output
    assert link.is_symlink() and target.read_text() == "kept"


@pytest.mark.parametrize("command", ["export", "import"])
def test_out_never_replaces_the_file_it_reads(tmp_path, command):
    path = tmp_path / "s.yaml"
    if command == "export":
        path.write_text(yaml.safe_dump(make_scenario()))
        arguments = ["export", str(path), "--to", "nginx"]
    else:
        path = tmp_path / "h.cfg"
        path.write_text("backend b\n    server s 127.0.0.1:8001\n")
        arguments = ["import", str(path)]
    before = path.read_text()
    result = CliRunner().invoke(main, [*arguments, "--out", str(path)])
    assert result.exit_code == 2 and "--out must not be the file it reads" in result.output
    assert path.read_text() == before


def test_fleet_dynamics_are_noted_not_dropped():
    servers = [{"name": "web", "count": 2, "max_connection_age": 30.0}, {"name": "late", "t_join": 5.0}]
    exported = nginx.export(load_scenario(make_scenario(servers=servers)), None, "127.0.0.1:8080")
    assert exported.unexpressed == [
        "servers[0].max_connection_age: NGINX closes connections by its own rules",
        "servers[1].t_join, t_leave: servers joining or leaving are the deployment's",
    ]


@pytest.mark.parametrize(
    ("key", "variable"),
    [("client", "$remote_addr"), ("path", "$request_uri"), ("header:X-User", "$http_x_user")],
)
def test_nginx_consistent_hash_hashes_the_policys_key(key, variable):
    # ngx_http_upstream_module: "hash key [consistent]", key any text with variables; an HTTP
    # request header is $http_<name>, lower case with dashes as underscores (ngx_http_core_module).
    exported = _export(nginx, balancer={"emulate": "nginx", "policy": {"name": "ring_hash", "key": key}})
    assert f"hash {variable} consistent;" in _lines(exported.text) and exported.unexpressed == []


def test_an_nginx_hash_key_or_bounded_load_it_cannot_express_is_listed():
    policy = {"name": "ring_hash", "key": "session", "balance_factor": 125}
    exported = _export(nginx, balancer={"emulate": "nginx", "policy": policy})
    assert "hash $remote_addr consistent;" in _lines(exported.text)
    assert exported.unexpressed == [
        "balancer.policy balance_factor: NGINX's consistent hash has no bounded load",
        "balancer.policy ring_hash: exported as hash $remote_addr consistent; "
        "(NGINX hashes no value that is key session here)",
    ]
