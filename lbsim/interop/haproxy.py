"""``lbsim export --to haproxy``: the HAProxy configuration that runs a scenario's balancer
(HAProxy 2.6's configuration.txt: ``balance``, ``server`` options, ``retries``, ``retry-on``,
``option redispatch``, ``option httpchk``, ``slowstart``, stick tables and cookies).
"""

from __future__ import annotations

from collections.abc import Sequence

from lbsim import __version__
from lbsim.config.scenario import Scenario
from lbsim.interop.backends import backends_of, policy_of, seconds
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
        f"# lbsim {__version__} export of scenario {scenario.name} to HAProxy",
        *(f"# not expressed: {line}" for line in missing),
        "defaults",
        f"    mode {mode}",
        "    timeout connect 5s",
        "    timeout client 60s",
        f"    timeout server {seconds(_try_timeout(scenario))}",
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
    return Exported("\n".join(lines) + "\n", missing)


def _try_timeout(scenario: Scenario) -> float:
    """How long one try may wait for its answer: retries.try_timeout, else 60 s."""
    retries = scenario.balancer.retries
    return retries.try_timeout if retries is not None and retries.try_timeout is not None else 60.0


def _retries(scenario: Scenario, missing: list[str]) -> list[str]:
    """``retries``, ``retry-on`` and ``option redispatch`` for the scenario's retries."""
    retries = scenario.balancer.retries
    if retries is None:
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
    for key in ("budget", "hedge", "max_concurrent"):
        if getattr(retries, key) is not None:
            missing.append(f"balancer.retries.{key}: HAProxy has none")
    return lines
