"""lbsim import: a real balancer's config, written the way its documentation writes it, read
as a scenario with balancer.emulate set; an import of an export gives the scenario back."""

import pytest
import yaml
from click.testing import CliRunner

from lbsim.cli import main
from lbsim.config.loading import load_scenario
from lbsim.errors import ConfigError, file_named
from lbsim.interop import envoy, haproxy, nginx
from lbsim.interop.imported import scenario_text
from tests.helpers import make_scenario

# After HAProxy's configuration.txt (balance, option httpchk, default-server, server options).
HAPROXY_DOC = """\
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

backend app
    balance leastconn
    option httpchk GET /health
    default-server inter 3s fall 3 rise 2
    server s1 10.0.0.1:80 check weight 10
    server s2 10.0.0.2:80 check weight 20 slowstart 60s
    server s3 10.0.0.3:80 check backup
    http-request set-header X-Foo bar
"""

# nginx.org's ngx_http_upstream_module example.
NGINX_DOC = """\
http {
    upstream backend {
        server backend1.example.com       weight=5;
        server backend2.example.com:8080;
        server unix:/tmp/backend3;

        server backup1.example.com:8080   backup;
        server backup2.example.com:8080   backup max_fails=3;
    }

    server {
        location / {
            proxy_pass http://backend;
        }
    }
}
"""


def _scenario(imported, name="imported"):
    return load_scenario(yaml.safe_load(scenario_text(imported, "test", name)))


def test_an_haproxy_backend_as_its_documentation_writes_it():
    imported = haproxy.read(HAPROXY_DOC)
    scenario = _scenario(imported)
    balancer = scenario.balancer
    # leastconn under emulate: haproxy is HAProxy's (active + 1) / weight rule.
    assert balancer.emulate == "haproxy" and balancer.policy == "weighted_least_connections"
    check = balancer.health_check
    assert (check.interval, check.rise, check.fall) == (3.0, 2, 3)
    assert [(g.name, g.weight, g.backup) for g in scenario.servers] == [
        ("s1", 10, False),
        ("s2", 20, False),
        ("s3", 1, True),
    ]
    assert scenario.servers[1].slow_start.window == 60.0 and scenario.servers[1].slow_start.style == "haproxy"
    # timeout server 30s bounds each try; HAProxy's retries default to 3 on a failed connect.
    assert (balancer.retries.max, balancer.retries.try_timeout, balancer.retries.on) == (
        3,
        30.0,
        ["connect_failure"],
    )
    assert imported.unsupported == ["line 14: http-request"]


def test_an_nginx_upstream_as_its_documentation_writes_it(tmp_path):
    path = tmp_path / "nginx.conf"
    path.write_text(NGINX_DOC)
    imported = nginx.read(str(path))
    scenario = _scenario(imported)
    assert scenario.balancer.emulate == "nginx"
    # No algorithm directive: NGINX's smooth weighted round robin.
    assert scenario.balancer.policy == "weighted_round_robin"
    assert [(g.weight, g.backup) for g in scenario.servers] == [
        (5, False),
        (1, False),
        (1, False),
        (1, True),
        (1, True),
    ]
    assert scenario.servers[2].addresses == ["unix:/tmp/backend3"]
    # max_fails=1 fail_timeout=10s, NGINX's defaults, except on one server: that is said.
    assert scenario.balancer.outlier_detection.max_fails == 1
    assert imported.unsupported == [
        "max_fails and fail_timeout differ between servers: the first server's are read"
    ]


# A cluster as Envoy's cluster.proto documents its fields (v3 API).
ENVOY_DOC = """\
static_resources:
  clusters:
  - name: service
    connect_timeout: 0.25s
    type: STRICT_DNS
    lb_policy: LEAST_REQUEST
    least_request_lb_config:
      choice_count: 3
      slow_start_config: {slow_start_window: 30s}
    common_lb_config:
      healthy_panic_threshold: {value: 25}
    load_assignment:
      cluster_name: service
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
          load_balancing_weight: 2
        - endpoint: {address: {socket_address: {address: 10.0.0.2, port_value: 80}}}
      - priority: 1
        lb_endpoints:
        - endpoint: {address: {socket_address: {address: 10.0.0.3, port_value: 80}}}
    health_checks:
    - timeout: 1s
      interval: 5s
      unhealthy_threshold: 2
      healthy_threshold: 1
      http_health_check: {path: /health}
    outlier_detection: {consecutive_5xx: 3, base_ejection_time: 10s, success_rate_stdev_factor: 1500}
    circuit_breakers:
      thresholds: [{max_connections: 100, max_pending_requests: 50, max_requests: 200, max_retries: 5}]
    dns_refresh_rate: 10s
"""


def test_an_envoy_cluster_as_its_proto_documents_it():
    imported = envoy.read(ENVOY_DOC)
    scenario = _scenario(imported)
    balancer = scenario.balancer
    assert balancer.emulate == "envoy" and balancer.policy == {"name": "p2c", "choices": 3}
    assert balancer.panic_threshold == 25.0 and balancer.backups == "priority"
    check = balancer.health_check
    assert (check.interval, check.timeout, check.fall, check.rise, check.style) == (5.0, 1.0, 2, 1, "envoy")
    detection = balancer.outlier_detection
    # success_rate_stdev_factor is in thousandths: 1500 is 1.5.
    assert (detection.consecutive_errors, detection.base_ejection, detection.success_rate_stdev_factor) == (
        3,
        10.0,
        1.5,
    )
    breaker = balancer.circuit_breaker
    assert (breaker.max_connections, breaker.max_pending, breaker.max_requests) == (100, 50, 200)
    assert [(g.weight, g.backup, g.addresses) for g in scenario.servers] == [
        (2, False, ["10.0.0.1:80"]),
        (1, False, ["10.0.0.2:80"]),
        (1, True, ["10.0.0.3:80"]),
    ]
    assert all(g.slow_start.window == 30.0 and g.slow_start.style == "envoy" for g in scenario.servers)
    # Retries are a route's, not a cluster's; the DNS refresh is not modelled.
    assert imported.unsupported == ["dns_refresh_rate", "circuit_breakers.thresholds[0].max_retries"]


HAPROXY_NATIVE = {
    "servers": [
        {"name": "fast", "count": 3, "weight": 2, "slow_start": {"window": 10.0}},
        {"name": "slow", "count": 1},
        {"name": "spare", "count": 1, "backup": True},
    ],
    "balancer": {
        "emulate": "haproxy",
        "policy": "least_connections",
        "health_check": {"interval": 1.0, "rise": 3, "fall": 2, "timeout": 0.5},
        "retries": {"max": 2, "on": ["connect_failure", "timeout"]},
        "sticky": {"by": "cookie", "ttl": 30.0},
    },
}
NGINX_NATIVE = {
    "servers": [{"name": "fast", "count": 3, "weight": 2}, {"name": "slow", "count": 1}],
    "balancer": {
        "emulate": "nginx",
        "policy": "least_connections",
        "outlier_detection": {"max_fails": 3, "fail_timeout": 5.0},
        "retries": {"max": 1, "try_timeout": 2.0},
    },
}


@pytest.mark.parametrize(("system", "native"), [(haproxy, HAPROXY_NATIVE), (nginx, NGINX_NATIVE)])
def test_an_import_of_an_export_is_the_same_scenario(tmp_path, system, native):
    base = {
        "name": "native",
        "duration": "60s",
        "workload": {"arrivals": "poisson", "rate": "100/s", "size": "exp(10ms)"},
    }
    original = load_scenario({**base, **native})
    exported = system.export(original, None, "127.0.0.1:8080")
    path = tmp_path / "config"
    path.write_text(exported.text)
    imported = system.read(exported.text if system is haproxy else str(path))
    again = _scenario(imported, "native")
    assert again.balancer == original.balancer
    assert [g.model_copy(update={"addresses": None}) for g in again.servers] == list(original.servers)
    assert system.export(again, None, "127.0.0.1:8080").text == exported.text


def test_a_config_without_servers_is_one_line(tmp_path):
    path = tmp_path / "h.cfg"
    path.write_text("frontend f\n    bind :80\n")
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {file_named(path)}: an HAProxy config must have a backend (or listen) section with server "
        "lines; got none."
    )
    with pytest.raises(ConfigError, match="an HAProxy time must be a number with a unit"):
        haproxy.read("backend b\n    server s 1.2.3.4:80 slowstart soon\n")


def test_the_format_comes_from_the_suffix_or_is_asked_for(tmp_path):
    path = tmp_path / "balancer.txt"
    path.write_text(HAPROXY_DOC)
    unknown = CliRunner().invoke(main, ["import", str(path)])
    assert unknown.exit_code == 2
    assert unknown.output.strip() == (
        f"error: {file_named(path)}: --format must name the system of a file without a known suffix "
        "(.cfg, .conf, .yaml, .yml, .json); got none."
    )
    out = tmp_path / "s.yaml"
    result = CliRunner().invoke(main, ["import", str(path), "--format", "haproxy", "--out", str(out)])
    assert result.exit_code == 0 and result.output == "not read: line 14: http-request\n"
    text = out.read_text()
    assert (
        "# not read: line 14: http-request" in text
        and "# PLACEHOLDER: a config does not know its traffic" in text
        and "# PLACEHOLDER: nor its servers' speed and workers" in text
    )
    assert load_scenario(out).balancer.emulate == "haproxy"


@pytest.mark.parametrize(
    ("system", "text", "message"),
    [
        (haproxy, "backend b\n    server s 1.2.3.4:80 weight abc\n", "line 2: weight must be a whole number"),
        (haproxy, "backend b\n    retries x\n    server s 1.2.3.4:80\n", "retries must be a whole number"),
        (envoy, "name: c\nload_assignment: {endpoints: abc}\n", "load_assignment.endpoints must be a list"),
        (
            envoy,
            "load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
            "{address: a}}}}]}]}\n",
            "must give an address and a port_value",
        ),
        (
            envoy,
            "load_assignment: {endpoints: [{priority: x, lb_endpoints: []}]}\n",
            r"load_assignment.endpoints\[0\].priority must be a whole number",
        ),
    ],
)
def test_a_bad_value_is_a_config_error_not_a_crash(system, text, message):
    with pytest.raises(ConfigError, match=message):
        system.read(text)


def test_an_nginx_weight_that_is_not_a_number_is_one_line(tmp_path):
    path = tmp_path / "n.conf"
    path.write_text("http { upstream u { server 1.2.3.4:80 weight=abc; } }\n")
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: {file_named(path)}: line 1: weight must be a whole number from 0 to 10^18; got 'abc'."
    )


def test_haproxy_check_timing_on_the_server_lines_is_read():
    imported = haproxy.read("backend b\n    server s1 1.2.3.4:80 check inter 2s rise 3 fall 4\n")
    check = _scenario(imported).balancer.health_check
    assert (check.interval, check.rise, check.fall) == (2.0, 3, 4) and imported.unsupported == []


def test_no_retries_come_back_as_no_retries():
    # retries 0 exports as just that, and reads back as max 0, whatever retry-on would say.
    servers = [{"name": "web", "count": 2}]
    scenario = load_scenario(
        make_scenario(servers=servers, balancer={"emulate": "haproxy", "retries": {"max": 0}})
    )
    text = haproxy.export(scenario, None, "127.0.0.1:8080").text
    assert "    retries 0" in text and "retry-on" not in text
    assert haproxy.export(_scenario(haproxy.read(text), "test"), None, "127.0.0.1:8080").text == text


def test_a_long_directive_is_noted_shortened_and_another_systems_file_gets_a_hint():
    imported = haproxy.read("backend b\n    server s 1.2.3.4:80\n    " + "x" * 10_000 + "\n")
    [note] = imported.unsupported
    assert note.startswith("line 3: xxx") and "..." in note and len(note) <= len("line 3: ") + 60
    with pytest.raises(
        ConfigError, match=r"must start with a section \(is it another system's\? give --format\)"
    ):
        haproxy.read("worker_processes 1;\n")


def test_numbers_too_long_and_nesting_too_deep_are_one_line_errors():
    with pytest.raises(ConfigError, match="weight must be a whole number from 0 to 10"):
        haproxy.read("backend b\n    server s 1.2.3.4:80 weight " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match="must hold numbers of at most 4,300 digits"):
        envoy.read("load_assignment: {endpoints: [{priority: " + "9" * 5000 + "}]}\n")
    with pytest.raises(ConfigError, match="must nest mappings and lists less deeply"):
        envoy.read("[" * 100_000)


def test_a_server_option_without_its_value_is_noted():
    imported = haproxy.read("backend b\n    server s 1.2.3.4:80 check weight\n")
    assert imported.unsupported == ["line 2: server option weight without a value"]


def test_an_unknown_server_option_is_noted_with_its_value():
    imported = haproxy.read("backend b\n    server s 1.2.3.4:80 maxconn 10 check ssl verify none backup\n")
    assert imported.unsupported == [
        "line 2: server option maxconn 10",
        "line 2: server option ssl verify none",
    ]


@pytest.mark.parametrize(
    ("directive", "policy"),
    [("random;", "weighted_random"), ("random two;", "random_two"), ("random two least_conn;", "random_two")],
)
def test_nginx_random_and_random_two_are_read(tmp_path, directive, policy):
    # ngx_http_upstream_random_module: "random [two [method]]", least_conn the only method.
    path = tmp_path / "nginx.conf"
    path.write_text(
        f"http {{ upstream be {{ {directive} server 10.0.0.1:80 weight=2; server 10.0.0.2:80; }} }}"
    )
    imported = nginx.read(str(path))
    assert _scenario(imported).balancer.policy == policy and imported.unsupported == []


@pytest.mark.parametrize(
    ("variable", "policy"),
    [
        ("$remote_addr", "ring_hash"),
        ("$request_uri", {"name": "ring_hash", "key": "path"}),
        ("$http_x_user", {"name": "ring_hash", "key": "header:x-user"}),
    ],
)
def test_nginx_consistent_hash_keys_are_read(tmp_path, variable, policy):
    path = tmp_path / "nginx.conf"
    path.write_text(f"http {{ upstream be {{ hash {variable} consistent; server 10.0.0.1:80; }} }}")
    imported = nginx.read(str(path))
    assert imported.balancer["policy"] == policy and imported.unsupported == []
    _scenario(imported)


def test_nginx_proxy_settings_it_does_not_read_are_listed(tmp_path):
    path = tmp_path / "nginx.conf"
    path.write_text(
        "http {\n upstream be { server 10.0.0.1:80; }\n server { location / {\n  proxy_pass http://be;\n"
        "  proxy_connect_timeout 2s;\n  proxy_next_upstream_timeout 5s;\n  proxy_read_timeout 30s;\n} }\n}\n"
    )
    assert nginx.read(str(path)).unsupported == [
        "line 5: proxy_connect_timeout 2s",
        "line 6: proxy_next_upstream_timeout 5s",
    ]
