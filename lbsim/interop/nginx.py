"""``lbsim export --to nginx``: the NGINX (open source) configuration that runs a scenario's
balancer: an ``upstream`` with its algorithm, ``server`` weights, ``backup``, ``max_fails``
and ``fail_timeout``, and ``proxy_next_upstream`` retries (nginx.org, ngx_http_upstream_module
and ngx_http_proxy_module; ngx_stream_* at layer 4).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import crossplane

from lbsim import __version__
from lbsim.config.scenario import Scenario
from lbsim.errors import ConfigError, shown
from lbsim.interop.backends import TRY_TIMEOUT, backends_of, policy_of, seconds, try_timeout
from lbsim.interop.imported import Imported, Server, said, whole
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
    "random_two": ("random two least_conn;", True, None),
}  # fmt: skip

# Idle keep-alive connections to the backends an NGINX worker keeps (nginx.org's example).
KEEPALIVE = 32
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

# The variables NGINX's ``hash`` takes for lbsim's hash keys (``header:<name>`` is
# ``$http_<name>``, lower case with - as _); the stream module (layer 4) has only the address.
HASH_VARIABLE = {"client": "$remote_addr", "path": "$request_uri"}

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
        key = parameters.get("key", "client")
        variable = _hash_variable(key) if balancer.layer == 7 or key == "client" else None
        algorithm, weighted, hashed = f"hash {variable or '$remote_addr'} consistent;", True, True
        note = None if variable else f"NGINX hashes no value that is key {key} here"
        if parameters.get("balance_factor") is not None:
            missing.append("balancer.policy balance_factor: NGINX's consistent hash has no bounded load")
    elif name in ALGORITHM:
        algorithm, weighted, note = ALGORITHM[name]
    else:
        algorithm, weighted, note = "", True, None
        missing.append(f"balancer.policy {name}: NGINX has no counterpart; exported as round robin")
    if note:
        missing.append(f"balancer.policy {name}: exported as {algorithm or 'round robin'} ({note})")
    backends = backends_of(scenario, addresses, weighted)
    keeps_backups = not hashed and not algorithm.startswith("random")
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
        servers.append(f"{line};  # {backend.name}")
    next_upstream, tries = _next_upstream(scenario, missing)
    # The shared zone holds the upstream's state: 64 KiB, or about 2 KiB a server for large
    # fleets (nginx -t found no room for 80 servers in 64 KiB).
    zone = max(64, 2 * len(backends))
    upstream = ["upstream lbsim {", f"    zone lbsim {zone}k;", *([f"    {algorithm}"] if algorithm else [])]
    upstream += [f"    {server}" for server in servers]
    if balancer.layer == 7:
        # Idle connections to the backends the worker keeps for reuse, which HTTP/1.1 and the
        # empty Connection header below are for; the keepalive module asks the algorithm for
        # a peer first and then looks for an idle connection to it, so the rule is unchanged
        # (ngx_http_upstream_get_keepalive_peer). After the algorithm, as nginx.org asks.
        upstream.append(f"    keepalive {KEEPALIVE};")
    upstream.append("}")
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
        location = [
            "proxy_pass http://lbsim;",
            "proxy_http_version 1.1;",
            'proxy_set_header Connection "";',
            f"proxy_next_upstream {next_upstream or 'off'};",
            f"proxy_next_upstream_tries {tries};",
            f"proxy_read_timeout {seconds(try_timeout(scenario))};",
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
    if retries is not None and retries.max > 0:
        conditions += " ".join(NEXT_UPSTREAM[on] for on in retries.on).split()
        if len({"connect_failure", "reset"} & set(retries.on)) == 1:
            missing.append("balancer.retries.on: NGINX's error retries a failed connect and a reset alike")
        if balancer.layer == 4 and set(retries.on) - {"connect_failure"}:
            missing.append("balancer.retries.on: at layer 4, NGINX retries failed connections only")
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


# NGINX's time units; a number without one is seconds (nginx.org, Syntax: time).
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TIME = re.compile(r"^(\d{1,18})(ms|s|m|h|d)?$")
# An upstream's algorithm directive -> lbsim's policy under emulate: nginx.
POLICY = {"least_conn": "least_connections", "ip_hash": "ip_hash"}
# proxy_next_upstream's conditions -> lbsim's retries.on.
RETRIES_ON = {
    "error": "connect_failure",
    "timeout": "timeout",
    "http_503": "rejected",
    "http_429": "http_429",
}
_ERROR_CODES = {"http_500", "http_502", "http_504"}
# NGINX's failure conditions (max_fails counts them), as outlier_detection.fails_on takes them.
FAILURES = ("error", "timeout", "http_500", "http_502", "http_503", "http_504", "http_429")
# The proxy settings read (as retries).
_PROXY_READ = {"proxy_next_upstream", "proxy_next_upstream_tries", "proxy_read_timeout"}
# Directives that change nothing lbsim models.
_HARMLESS = {
    "zone", "listen", "proxy_pass", "proxy_http_version", "proxy_set_header", "access_log", "error_log",
    "worker_processes", "worker_connections", "pid", "keepalive", "#",
}  # fmt: skip


def read(path: str) -> Imported:
    """An NGINX configuration's first ``upstream`` (http or stream) and the proxy settings of
    the server that passes to it, as a scenario's servers and ``balancer`` (``emulate:
    nginx``). Parsed by crossplane, NGINX's own configuration grammar in Python.

    Raises:
        ConfigError: the file does not parse, or has no upstream with servers.
    """
    parsed = crossplane.parse(path, single=True, comments=True, catch_errors=False)
    if parsed["status"] != "ok":
        error = parsed["errors"][0]
        raise ConfigError(
            "an NGINX config must parse (is it another system's? give --format); "
            f"got line {error.get('line')}: {shown(error['error'], 120)}."
        )
    directives = list(_walk(parsed["config"][0]["parsed"], ()))
    upstreams = [(d, parents) for d, parents in directives if d["directive"] == "upstream"]
    if not upstreams:
        raise ConfigError("an NGINX config must have an upstream block with server lines; got none.")
    upstream, parents = upstreams[0]
    unsupported = [
        f"upstream {said(d['args'][0])}: only the first upstream is read" for d, _ in upstreams[1:]
    ]
    balancer: dict[str, Any] = {"emulate": "nginx"}
    if "stream" in parents:
        balancer["layer"] = 4
    servers, passive = [], []
    comments = {d["line"]: d["comment"].strip() for d in upstream.get("block", []) if d["directive"] == "#"}
    for directive in upstream.get("block", []):
        name, args = directive["directive"], directive["args"]
        if name == "server":
            server, fails = _server(directive, comments.get(directive["line"]), unsupported)
            servers.append(server)
            passive.append(fails)
        elif name in POLICY and not args:
            balancer["policy"] = POLICY[name]
        elif name == "random" and args in ([], ["two"], ["two", "least_conn"]):
            balancer["policy"] = "random_two" if args else "random"
        elif name == "hash" and len(args) == 2 and args[1] == "consistent" and (key := _hash_key(args[0])):
            balancer["policy"] = "ring_hash" if key == "client" else {"name": "ring_hash", "key": key}
        elif name not in _HARMLESS:
            unsupported.append(f"line {directive['line']}: {said(' '.join([name, *args]))}")
    if len(set(passive)) > 1:
        unsupported.append("max_fails and fail_timeout differ between servers: the first server's are read")
    max_fails, fail_timeout = passive[0] if passive else (1, 10.0)
    proxied = [d for d, _ in directives if d["directive"].startswith("proxy_") and d is not upstream]
    proxy = {d["directive"]: d["args"] for d in proxied}
    unsupported += [
        f"line {d['line']}: {said(' '.join([d['directive'], *d['args']]))}"
        for d in proxied
        if d["directive"] not in _PROXY_READ and d["directive"] not in _HARMLESS
    ]
    conditions = proxy.get("proxy_next_upstream", ["on" if "stream" in parents else "error", "timeout"])
    if "stream" in parents:  # on: a failed connection is a failure, and tried on the next server
        conditions = ["error", "timeout"] if conditions[0] == "on" else ["off"]
    if max_fails != 1 or fail_timeout != 10.0 or set(conditions) != {"error", "timeout"}:
        failures = [c for c in conditions if c in FAILURES]
        balancer["outlier_detection"] = {
            "max_fails": max_fails,
            "fail_timeout": fail_timeout,
            "fails_on": failures,
        }
    retries = _read_retries(conditions, proxy, unsupported)
    if retries:
        balancer["retries"] = retries
    return Imported("NGINX", servers, balancer, unsupported)


def _hash_variable(key: str) -> str | None:
    """The NGINX variable of lbsim's hash ``key`` at layer 7, or None (a session has none)."""
    if key.startswith("header:"):
        return "$http_" + key.removeprefix("header:").lower().replace("-", "_")
    return HASH_VARIABLE.get(key)


def _hash_key(variable: str) -> str | None:
    """lbsim's hash key of an NGINX ``hash`` variable, or None (one lbsim does not model)."""
    if variable.startswith("$http_"):
        return "header:" + variable.removeprefix("$http_").replace("_", "-")
    return next((key for key, known in HASH_VARIABLE.items() if known == variable), None)


def _walk(block: list[dict[str, Any]], parents: tuple[str, ...]) -> Any:
    for directive in block:
        yield directive, parents
        yield from _walk(directive.get("block", []), (*parents, directive["directive"]))


def _seconds(text: str) -> float:
    match = _TIME.match(text)
    if match is None:
        raise ConfigError(f"an NGINX time must be a number with a unit (10s, 500ms); got {shown(text)}.")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def _server(
    directive: dict[str, Any], comment: str | None, unsupported: list[str]
) -> tuple[Server, tuple[int, float]]:
    """A ``server ADDRESS [weight=N] [max_fails=N] [fail_timeout=T] [backup]`` line (a comment
    on its line names it), and its (max_fails, fail_timeout)."""
    address, *options = directive["args"]
    values = dict(option.split("=", 1) for option in options if "=" in option)
    for option in options:
        key = option.split("=", 1)[0]
        if key not in ("weight", "max_fails", "fail_timeout", "backup"):
            unsupported.append(f"line {directive['line']}: server option {said(option)}")
    where = f"line {directive['line']}: "
    server = Server(
        comment or None, address, whole(values.get("weight", 1), f"{where}weight"), "backup" in options
    )
    fails = whole(values.get("max_fails", 1), f"{where}max_fails")
    return server, (fails, _seconds(values.get("fail_timeout", "10s")))


def _read_retries(
    conditions: list[str], proxy: dict[str, list[str]], unsupported: list[str]
) -> dict[str, Any]:
    """The ``retries`` section for proxy_next_upstream, its tries and proxy_read_timeout (empty:
    NGINX's defaults, error and timeout on every server once)."""
    retries: dict[str, Any] = {}
    if conditions in (["off"], []):
        retries["max"] = 0
    elif set(conditions) != {"error", "timeout"}:
        on = [RETRIES_ON[c] for c in conditions if c in RETRIES_ON]
        if "error" in conditions:
            on.append("reset")
        if set(conditions) >= _ERROR_CODES:
            on.append("error")
        retries["on"] = list(dict.fromkeys(on))
        if _ERROR_CODES & set(conditions) and not set(conditions) >= _ERROR_CODES:
            unsupported.append(
                "proxy_next_upstream http_500, http_502, http_504: lbsim retries the three together (error)"
            )
        unsupported += [
            f"proxy_next_upstream {said(c)}"
            for c in conditions
            if c not in RETRIES_ON and c not in _ERROR_CODES and c != "on"
        ]
    tries = whole(proxy.get("proxy_next_upstream_tries", ["0"])[0], "proxy_next_upstream_tries")
    if tries > 0 and "max" not in retries:
        retries["max"] = tries - 1
    read_timeout = _seconds(proxy["proxy_read_timeout"][0]) if "proxy_read_timeout" in proxy else TRY_TIMEOUT
    if read_timeout != TRY_TIMEOUT:
        retries["try_timeout"] = read_timeout
    return retries
