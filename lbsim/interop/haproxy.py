"""``lbsim export --to haproxy``: the HAProxy configuration that runs a scenario's balancer
(HAProxy 2.6's configuration.txt: ``balance``, ``server`` options, ``retries``, ``retry-on``,
``option redispatch``, ``option httpchk``, ``slowstart``, stick tables and cookies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lbsim import __version__
from lbsim.config.scenario import Scenario
from lbsim.errors import ConfigError, shown
from lbsim.interop.backends import TRY_TIMEOUT, backends_of, policy_of, seconds, try_timeout
from lbsim.interop.imported import Imported, Server, said, whole
from lbsim.interop.unexpressed import Exported, unexpressed

# lbsim's policy -> (HAProxy's balance, whether weights apply, a note when the rules differ).
BALANCE: dict[str, tuple[str, bool, str | None]] = {
    "fast_weighted_round_robin": ("roundrobin", True, None),
    "weighted_round_robin": ("roundrobin", True, "NGINX's smooth order becomes HAProxy's, same shares"),
    "round_robin": ("roundrobin", False, None),
    "weighted_least_connections": ("leastconn", True, None),
    "least_connections": ("leastconn", True, "NGINX's tie-break becomes HAProxy's idle-first rule"),
    "weighted_random": ("random(1)", True, None),
    "random": ("random(1)", False, None),
    "random_two": ("random(2)", True, "NGINX's two weighted draws become two draws over HAProxy's hash tree"),
}  # fmt: skip

# lbsim's retries.on -> HAProxy's retry-on keywords (configuration.txt, retry-on).
RETRY_ON = {
    "connect_failure": "conn-failure",
    "reset": "empty-response",
    "timeout": "response-timeout",
    "error": "empty-response 500 502 504",
    "rejected": "503",
}

# The systems' own mechanisms HAProxy has none of: balancer keys listed when set.
ABSENT = {
    "outlier_detection": "HAProxy's passive checks (observe, error-limit) differ from it",
    "circuit_breaker": "HAProxy has no circuit breakers (maxconn queues instead)",
    "locality": "HAProxy has no zone-aware routing",
}


def export(scenario: Scenario, addresses: Sequence[str] | None, listen: str) -> Exported:
    """The HAProxy configuration of ``scenario``'s balancer, listening on ``listen``, with its
    servers at ``addresses`` (see :func:`lbsim.interop.backends.backends_of`).

    Returns:
        the configuration text and what it could not express (also in its comments).
    """
    balancer = scenario.balancer
    name, parameters = policy_of(scenario)
    missing = unexpressed(scenario, "HAProxy", ABSENT)
    if name == "chash_random":
        balance, weighted, note = f"random({parameters.get('draws', 2)})", True, None
    elif name in BALANCE:
        balance, weighted, note = BALANCE[name]
    else:
        balance, weighted, note = "roundrobin", True, None
        missing.append(f"balancer.policy {name}: HAProxy has no counterpart; exported as roundrobin")
    if note:
        missing.append(f"balancer.policy {name}: exported as balance {balance} ({note})")
    backends = backends_of(scenario, addresses, weighted)
    if balancer.backups == "priority" and any(b.backup for b in backends):
        missing.append("balancer.backups priority: HAProxy uses backups only when no active server is up")
    mode = "http" if balancer.layer == 7 else "tcp"
    lines = [
        "defaults",
        f"    mode {mode}",
        "    timeout connect 5s",
        "    timeout client 60s",
        f"    timeout server {seconds(try_timeout(scenario))}",
    ]
    lines += _retries(scenario, missing)
    lines += [
        "",
        "frontend lbsim",
        f"    bind {listen}",
        "    default_backend servers",
        "",
        "backend servers",
        f"    balance {balance}",
    ]
    check = balancer.health_check
    if check is not None:
        if mode == "http":
            lines.append("    option httpchk GET /health")
        if check.timeout is not None:
            lines.append(f"    timeout check {seconds(check.timeout)}")
        lines.append(
            f"    default-server inter {seconds(check.interval)} rise {check.rise} fall {check.fall}"
        )
        if check.style != "haproxy":
            missing.append("balancer.health_check.style envoy: exported as HAProxy's checks")
        if check.jitter:
            missing.append("balancer.health_check.jitter: HAProxy's spread-checks is a global share")
    sticky = balancer.sticky
    if sticky is not None and sticky.by == "cookie":
        lines.append(
            "    cookie SERVERID insert indirect nocache"
            + (f" maxidle {seconds(sticky.ttl)}" if sticky.ttl else "")
        )
    elif sticky is not None:
        lines += [
            f"    stick-table type ip size 1m expire {seconds(sticky.ttl) if sticky.ttl else '24h'}",
            "    stick on src",
        ]
    for backend in backends:
        options = [f"weight {backend.weight}"]
        if check is not None:
            options.append("check")
        if backend.slow_start is not None:
            options.append(f"slowstart {seconds(backend.slow_start)}")
        if sticky is not None and sticky.by == "cookie":
            options.append(f"cookie {backend.name}")
        if backend.backup:
            options.append("backup")
        lines.append(f"    server {backend.name} {backend.address} {' '.join(options)}")
    header = [f"# lbsim {__version__} export of scenario {scenario.name} to HAProxy"]
    header += [f"# not expressed: {line}" for line in missing]
    return Exported("\n".join([*header, *lines]) + "\n", missing)


def _retries(scenario: Scenario, missing: list[str]) -> list[str]:
    """``retries``, ``retry-on`` and ``option redispatch`` for the scenario's retries."""
    retries = scenario.balancer.retries
    if retries is None or retries.max == 0:
        return ["    retries 0"]
    lines = [f"    retries {retries.max}"]
    keywords = [RETRY_ON[on] for on in retries.on if on in RETRY_ON]
    missing += [
        f"balancer.retries.on {on}: HAProxy's retry-on has no such condition"
        for on in retries.on
        if on not in RETRY_ON
    ]
    if keywords:
        lines.append(f"    retry-on {' '.join(dict.fromkeys(' '.join(keywords).split()))}")
    if not retries.same_server:
        lines.append("    option redispatch 1")
    if retries.same_server and retries.turnaround not in (None, 1.0):
        missing.append("balancer.retries.turnaround: HAProxy waits min(timeout connect, 1s) = 1s")
    if not retries.same_server and retries.backoff:
        missing.append("balancer.retries.backoff: HAProxy retries another server at once")
    return lines


# HAProxy's time units; a number without one is milliseconds (configuration.txt, 2.5).
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TIME = re.compile(r"^(\d{1,18}(?:\.\d{1,9})?)(us|ms|s|m|h|d)?$")
# HAProxy's balance -> lbsim's policy under emulate: haproxy.
POLICY = {"roundrobin": "round_robin", "leastconn": "least_connections"}
# HAProxy's retry-on keywords -> lbsim's retries.on.
RETRIES_ON = {
    "conn-failure": "connect_failure",
    "empty-response": "reset",
    "response-timeout": "timeout",
    "503": "rejected",
}
# Keywords that take a second word (``timeout server``), the settings read, and those that
# change nothing lbsim models (how long a client or a connect may take, HTTP mode's own).
_FAMILIES = ("timeout", "option", "stick")
_READ = {
    "mode", "balance", "retries", "retry-on", "cookie", "stick-table", "stick on",
    "option redispatch", "option httpchk", "timeout server", "timeout check",
}  # fmt: skip
_HARMLESS = {"timeout connect", "timeout client", "option httplog", "option tcplog", "log"}
# Status codes lbsim's ``error`` stands for, together.
_ERROR_CODES = {"500", "502", "504"}


def read(text: str) -> Imported:
    """An HAProxy configuration's first backend (or listen section) with servers, and its
    defaults, as a scenario's servers and ``balancer`` (``emulate: haproxy``).

    Raises:
        ConfigError: no backend with a server line, or a value HAProxy would not take.
    """
    sections = _sections(text)
    backends = [
        s for s in sections if s.kind in ("backend", "listen") and any(k == "server" for _, k, _ in s.lines)
    ]
    if not backends:
        raise ConfigError(
            "an HAProxy config must have a backend (or listen) section with server lines; got none."
        )
    backend = backends[0]
    unsupported = [
        f"section {s.kind} {said(s.name)}".rstrip() + ": not a backend"
        for s in sections
        if s.kind in ("global", "frontend")
    ]
    unsupported += [f"backend {said(s.name)}: only the first backend is read" for s in backends[1:]]
    # Each setting by its keyword (and a second word for the keyword families: timeout server).
    settings: dict[str, list[str]] = {}
    lines = [line for s in sections if s.kind == "defaults" for line in s.lines] + backend.lines
    servers, default_server = [], []
    for number, keyword, args in lines:
        key, value = (f"{keyword} {args[0]}", args[1:]) if keyword in _FAMILIES and args else (keyword, args)
        if keyword == "server":
            servers.append((number, args))
        elif keyword == "default-server":
            default_server = args
            unsupported += [
                f"line {number}: default-server option {said(o)}" for o in _unknown(args, _DEFAULT_OPTIONS)
            ]
        elif key in _READ:
            settings[key] = value
        elif key not in _HARMLESS:
            unsupported.append(f"line {number}: {said(key)}")
    balancer: dict[str, Any] = {"emulate": "haproxy"}
    if settings.get("mode") == ["tcp"]:
        balancer["layer"] = 4
    balancer["policy"] = _policy(settings.get("balance", ["roundrobin"]), unsupported)
    checks, parsed = False, []
    for number, args in servers:
        server, checked = _server(number, args, default_server, unsupported)
        parsed.append(server)
        checks = checks or checked
    if checks:
        # The first server's timing (its own options over default-server's) sets the checks'.
        balancer["health_check"] = _health_check([*default_server, *servers[0][1][2:]], settings)
    per_try = _seconds(settings["timeout server"][0]) if "timeout server" in settings else TRY_TIMEOUT
    if {"retries", "retry-on", "option redispatch"} & settings.keys() or per_try != TRY_TIMEOUT:
        balancer["retries"] = _read_retries(settings, per_try, unsupported)
    if "cookie" in settings:
        ttl = _option(settings["cookie"], "maxidle")
        balancer["sticky"] = {"by": "cookie", **({"ttl": _seconds(ttl)} if ttl else {})}
    elif "stick on" in settings:
        expire = _option(settings.get("stick-table", []), "expire")
        balancer["sticky"] = {"by": "client", **({"ttl": _seconds(expire)} if expire else {})}
    return Imported("HAProxy", parsed, balancer, unsupported)


@dataclass(frozen=True)
class _Section:
    kind: str
    name: str
    lines: list[tuple[int, str, list[str]]]


def _sections(text: str) -> list[_Section]:
    """The config's sections, each with its (line number, keyword, arguments), comments dropped."""
    sections: list[_Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in (
            "global",
            "defaults",
            "frontend",
            "backend",
            "listen",
            "resolvers",
            "peers",
            "userlist",
        ):
            sections.append(_Section(words[0], " ".join(words[1:2]), []))
        elif sections:
            sections[-1].lines.append((number, words[0], words[1:]))
        else:
            raise ConfigError(
                "an HAProxy config must start with a section (is it another system's? give --format); "
                f"got {shown(words[0], 60)} on line {number}."
            )
    return sections


def _seconds(text: str) -> float:
    match = _TIME.match(text)
    if match is None:
        raise ConfigError(f"an HAProxy time must be a number with a unit (2s, 500ms); got {shown(text)}.")
    return float(match.group(1)) * _UNITS[match.group(2) or "ms"]


def _option(args: list[str], name: str) -> str | None:
    """The value after the last ``name`` in ``args`` (``weight 3``; a server's own options
    follow default-server's, so they win), or None."""
    if name not in args[:-1]:
        return None
    return args[len(args) - 2 - args[-2::-1].index(name) + 1]


def _policy(args: list[str], unsupported: list[str]) -> Any:
    algorithm = args[0] if args else "roundrobin"
    if algorithm in POLICY:
        return POLICY[algorithm]
    if (match := re.fullmatch(r"random(?:\((\d+)\))?", algorithm)) is not None:
        draws = int(match.group(1) or 2)
        return "random" if draws == 2 else {"name": "chash_random", "draws": draws}
    unsupported.append(f"balance {said(algorithm)}: lbsim does not model it; read as roundrobin")
    return "round_robin"


def _server(number: int, args: list[str], defaults: list[str], unsupported: list[str]) -> tuple[Server, bool]:
    """A ``server NAME ADDRESS [options]`` line, with ``default-server`` options under its own."""
    if len(args) < 2:
        raise ConfigError(f"an HAProxy server line must give a name and an address; got line {number}.")
    name, address, options = args[0], args[1], [*defaults, *args[2:]]
    unsupported += [
        f"line {number}: server option {said(option)}" for option in _unknown(args[2:], _SERVER_OPTIONS)
    ]
    weight = _option(options, "weight")
    slow_start = _option(options, "slowstart")
    server = Server(
        name,
        address,
        whole(weight, f"line {number}: weight") if weight is not None else 1,
        "backup" in options,
        _seconds(slow_start) if slow_start is not None else None,
    )
    return server, "check" in options


# Server options lbsim reads: those with a value, and flags.
_SERVER_OPTIONS = ({"weight", "slowstart", "cookie", "inter", "rise", "fall"}, {"check", "backup"})
# default-server's: the check's timing besides.
_DEFAULT_OPTIONS = ({"weight", "slowstart", "inter", "rise", "fall"}, {"check"})


def _unknown(options: list[str], known: tuple[set[str], set[str]]) -> list[str]:
    """The options of ``options`` that are neither a known one with its value nor a known flag;
    the words of an unknown one up to the next known one stay together (``maxconn 10``), since
    which take values is HAProxy's to say."""
    valued, flags = known
    unknown, i, joined = [], 0, False
    while i < len(options):
        if options[i] in valued:
            if i + 1 == len(options):
                unknown.append(f"{options[i]} without a value")
            i, joined = i + 2, False
            continue
        if options[i] in flags:
            joined = False
        elif joined:
            unknown[-1] += f" {options[i]}"
        else:
            unknown.append(options[i])
            joined = True
        i += 1
    return unknown


def _health_check(options: list[str], settings: dict[str, list[str]]) -> dict[str, Any]:
    check: dict[str, Any] = {}
    for key, value in (
        ("interval", _option(options, "inter")),
        ("rise", _option(options, "rise")),
        ("fall", _option(options, "fall")),
    ):
        if value is not None:
            check[key] = _seconds(value) if key == "interval" else whole(value, key)
    if "timeout check" in settings:
        check["timeout"] = _seconds(settings["timeout check"][0])
    return check


def _read_retries(settings: dict[str, list[str]], per_try: float, unsupported: list[str]) -> dict[str, Any]:
    retries: dict[str, Any] = {"max": whole(settings.get("retries", ["3"])[0], "retries")}
    keywords = settings.get("retry-on", [])
    on = [RETRIES_ON[k] for k in keywords if k in RETRIES_ON]
    if set(keywords) >= _ERROR_CODES:
        on = [o for o in on if o != "reset"] + ["error"]
    unsupported += [f"retry-on {said(k)}" for k in keywords if k not in RETRIES_ON and k not in _ERROR_CODES]
    if keywords:  # else HAProxy's retry-on conn-failure, as emulate: haproxy has it
        retries["on"] = list(dict.fromkeys(on))
    retries["same_server"] = "option redispatch" not in settings
    if per_try != TRY_TIMEOUT:
        retries["try_timeout"] = per_try
    return retries
