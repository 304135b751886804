"""``lbsim export --to nginx``: the NGINX (open source) configuration that runs a scenario's
balancer: an ``upstream`` with its algorithm, ``server`` weights, ``backup``, ``max_fails``
and ``fail_timeout``, and ``proxy_next_upstream`` retries (nginx.org, ngx_http_upstream_module
and ngx_http_proxy_module; ngx_stream_* at layer 4).
"""

from __future__ import annotations

from collections.abc import Sequence

from lbsim import __version__
from lbsim.config.scenario import Scenario
from lbsim.interop.backends import backends_of, policy_of, seconds
from lbsim.interop.unexpressed import Exported, unexpressed

# lbsim's policy -> (the upstream's algorithm directive, whether weights apply, a note when
# the rules differ). Round robin is NGINX's default: no directive.
ALGORITHM: dict[str, tuple[str, bool, str | None]] = {
    "weighted_round_robin": ("", True, None),
    "round_robin": ("", False, None),
    "least_connections": ("least_conn;", True, None),
    "weighted_least_connections": ("least_conn;", True, "HAProxy's idle-first rule becomes a tie-break"),
    "weighted_random": ("random;", True, None),
    "random": ("random;", False, None),
}  # fmt: skip

# lbsim's retries.on -> proxy_next_upstream's conditions (a reset after the request was sent
# is NGINX's error too).
NEXT_UPSTREAM = {
    "connect_failure": "error",
    "reset": "error",
    "timeout": "timeout",
    "error": "error http_500 http_502 http_504",
    "rejected": "http_503",
    "http_429": "http_429",
}

ABSENT = {
    "health_check": "active health checks are NGINX Plus only",
    "circuit_breaker": "NGINX has no circuit breakers (max_conns is per server)",
    "locality": "NGINX has no zone-aware routing",
    "sticky": "sticky sessions are NGINX Plus only",
}


def export(scenario: Scenario, addresses: Sequence[str] | None, listen: str) -> Exported:
    """The NGINX configuration of ``scenario``'s balancer (one worker, so the upstream's state
    is one balancer's, as lbsim models it), listening on ``listen``, with its servers at
    ``addresses`` (see :func:`lbsim.interop.backends.backends_of`).

    Returns:
        the configuration text and what it could not express (also in its comments).
    """
    balancer = scenario.balancer
    name, parameters = policy_of(scenario)
    missing = unexpressed(scenario, "NGINX", ABSENT)
    hashed = False
    if name == "ip_hash" and balancer.layer == 4:
        algorithm, weighted, note, hashed = (
            "hash $remote_addr;",
            True,
            "the stream module has no ip_hash",
            True,
        )
    elif name == "ip_hash":
        algorithm, weighted, note, hashed = "ip_hash;", True, None, True
        if parameters.get("style") != "nginx":
            note = "lbsim's md5 of the address becomes NGINX's /24 hash"
    elif name == "ring_hash" and parameters.get("ring") == "nginx":
        algorithm, weighted, note, hashed = "hash $remote_addr consistent;", True, None, True
    elif name in ALGORITHM:
        algorithm, weighted, note = ALGORITHM[name]
    else:
        algorithm, weighted, note = "", True, None
        missing.append(f"balancer.policy {name}: NGINX has no counterpart; exported as round robin")
    if note:
        missing.append(f"balancer.policy {name}: exported as {algorithm or 'round robin'} ({note})")
    backends = backends_of(scenario, addresses, weighted)
    keeps_backups = not hashed and algorithm != "random;"
    if any(b.backup for b in backends) and not keeps_backups:
        missing.append(f"servers' backup: NGINX allows no backup with {algorithm}; they are plain servers")
    if any(b.slow_start is not None for b in backends):
        missing.append("servers' slow_start: NGINX Plus only")
    passive = balancer.outlier_detection
    if passive is not None and passive.max_fails is None:
        missing.append("balancer.outlier_detection: Envoy's ejection; NGINX's passive check is max_fails")
    max_fails = passive.max_fails if passive is not None and passive.max_fails is not None else 0
    fail_timeout = passive.fail_timeout if passive is not None else 10.0
    servers = []
    for backend in backends:
        line = f"server {backend.address} weight={backend.weight} max_fails={max_fails}"
        line += f" fail_timeout={seconds(fail_timeout)}" + (
            " backup" if backend.backup and keeps_backups else ""
        )
        servers.append(line + ";")
    next_upstream, tries = _next_upstream(scenario, missing)
    upstream = ["upstream lbsim {", "    zone lbsim 64k;", *([f"    {algorithm}"] if algorithm else [])]
    upstream += [f"    {server}" for server in servers] + ["}"]
    lines = [
        f"# lbsim {__version__} export of scenario {scenario.name} to NGINX",
        *(f"# not expressed: {line}" for line in missing),
        "worker_processes 1;",
        "events { worker_connections 4096; }",
    ]
    if balancer.layer == 4:
        lines.insert(
            1 + len(missing),
            "# layer 4 is the stream module: where it is a dynamic module (Debian's libnginx-mod-stream), "
            "run with -g 'load_module modules/ngx_stream_module.so;'",
        )
        proxy = [
            f"listen {listen};",
            "proxy_pass lbsim;",
            f"proxy_next_upstream {'on' if next_upstream else 'off'};",
            f"proxy_next_upstream_tries {tries};",
        ]
        lines += [
            "stream {",
            *_indent(upstream),
            "    server {",
            *(f"        {p}" for p in proxy),
            "    }",
            "}",
        ]
    else:
        read_timeout = (
            balancer.retries.try_timeout if balancer.retries and balancer.retries.try_timeout else 60.0
        )
        location = [
            "proxy_pass http://lbsim;",
            "proxy_http_version 1.1;",
            'proxy_set_header Connection "";',
            f"proxy_next_upstream {next_upstream or 'off'};",
            f"proxy_next_upstream_tries {tries};",
            f"proxy_read_timeout {seconds(read_timeout)};",
        ]
        lines += [
            "http {",
            "    access_log off;",
            *_indent(upstream),
            "    server {",
            f"        listen {listen};",
            "        location / {",
            *(f"            {line}" for line in location),
            "        }",
            "    }",
            "}",
        ]
    return Exported("\n".join(lines) + "\n", missing)


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]


def _next_upstream(scenario: Scenario, missing: list[str]) -> tuple[str, int]:
    """proxy_next_upstream's conditions (what counts as a failure, and what is retried) and
    proxy_next_upstream_tries (the first try included)."""
    balancer = scenario.balancer
    retries, passive = balancer.retries, balancer.outlier_detection
    conditions: list[str] = []
    if retries is not None:
        conditions += " ".join(NEXT_UPSTREAM[on] for on in retries.on).split()
        for key in ("budget", "hedge", "max_concurrent"):
            if getattr(retries, key) is not None:
                missing.append(f"balancer.retries.{key}: NGINX has none")
        if retries.backoff:
            missing.append("balancer.retries.backoff: NGINX retries at once")
        if retries.same_server:
            missing.append("balancer.retries.same_server: NGINX retries the next server")
    if passive is not None and passive.max_fails:
        failures = list(passive.fails_on)
        if retries is not None and set(failures) != set(conditions):
            missing.append(
                "balancer.outlier_detection.fails_on: NGINX counts as failures what it retries; "
                "both are proxy_next_upstream here"
            )
        conditions += failures
    tries = retries.max + 1 if retries is not None else 1
    return " ".join(dict.fromkeys(conditions)), tries
