"""``balancer.emulate``: every default the way one production balancer ships it.

With ``emulate: envoy | nginx | haproxy`` a scenario gets, for each key it leaves out, the
value that system uses; each policy name means that system's algorithm of the name; and
a mechanism the system does not have is refused rather than silently mixed in. Anything
the scenario sets explicitly, within what the system can do, wins. Without ``emulate``,
lbsim's own defaults apply and any mix is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lbsim.config.balancer import NGINX_PASSIVE_KEYS, OutlierDetectionModel
from lbsim.errors import ConfigError, shown


@dataclass(frozen=True)
class Emulation:
    """What one production balancer does by default.

    Attributes:
        system: the system and the versions its rules were checked against.
        balancer: ``balancer`` keys the system sets when the scenario leaves them out.
        sections: keys inside a ``balancer`` section, set when the scenario turns that
            section on (``health_check``, ``retries``, ``outlier_detection``).
        policies: what each policy name means under this system: an lbsim policy name, or a
            policy spec whose parameters the scenario's own override.
        absent: ``balancer`` keys (or ``section.key``) the system has no counterpart for,
            with the reason; a scenario that sets one is refused.
        fixed: ``balancer`` keys (or ``section.key``) whose value the system fixes (its
            default in ``balancer`` or ``sections``), with the reason; another is refused.
        retried: what the system retries when the scenario says nothing (for the docs).
        slow_start: keys inside each server group's ``slow_start`` (its ``style`` is fixed);
            None when the system has no slow start (a group with one is refused).
        retry_every_server: without ``retries.max``, retry on each other server once (NGINX's
            proxy_next_upstream_tries 0).
        http_only: ``section.key`` defaults that apply at layer 7 only (left out at layer 4
            unless the scenario gives them).
        notes: where lbsim's model of the system is knowingly short of it.
    """

    system: str
    balancer: Mapping[str, Any]
    sections: Mapping[str, Mapping[str, Any]]
    policies: Mapping[str, str | Mapping[str, Any]]
    absent: Mapping[str, str]
    fixed: Mapping[str, str]
    retried: str
    slow_start: Mapping[str, Any] | None
    retry_every_server: bool = False
    http_only: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def required(self, path: str) -> Any:
        """The value the system fixes for ``path`` (a key of ``fixed``)."""
        section, _, key = path.partition(".")
        return self.sections[section][key] if key else self.balancer[section]


# Keys only Envoy's outlier detection has, and keys only NGINX's passive checks have.
_ENVOY_PASSIVE = tuple(key for key in OutlierDetectionModel.model_fields if key not in NGINX_PASSIVE_KEYS)
_NGINX_PASSIVE = NGINX_PASSIVE_KEYS


def _passive(keys: tuple[str, ...], reason: str) -> dict[str, str]:
    return {f"outlier_detection.{key}": reason for key in keys}


EMULATIONS: dict[str, Emulation] = {
    "envoy": Emulation(
        system="Envoy 1.28-1.32",
        balancer={
            # cluster.proto CommonLbConfig healthy_panic_threshold: 50%; backups are a
            # lower priority, spilled to by health (overprovisioning factor 1.4).
            "panic_threshold": 50.0,
            "backups": "priority",
            # circuit_breaker.proto thresholds: max_connections, max_pending_requests and
            # max_requests 1024 (max_retries 3 is retries.max_concurrent).
            "circuit_breaker": {"max_requests": 1024, "max_pending": 1024, "max_connections": 1024},
        },
        sections={
            "health_check": {"style": "envoy"},
            # Route retry policy: num_retries 1, full jitter from 25 ms, capped at 250 ms,
            # at most 3 retries at once per cluster (the max_retries circuit breaker).
            "retries": {"max": 1, "backoff": 0.025, "max_backoff": 0.25, "max_concurrent": 3},
        },
        slow_start={"style": "envoy"},
        http_only=(
            "circuit_breaker.max_connections",
            "circuit_breaker.max_pending",
            "circuit_breaker.max_requests",
        ),
        policies={
            "round_robin": "edf_round_robin",
            "weighted_round_robin": "edf_round_robin",
            "edf_round_robin": "edf_round_robin",
            "least_connections": "p2c",
            "p2c": "p2c",
            "random": "random",
            # xxHash64 over each server's address; the ring rebuilt on every change.
            "ring_hash": {"name": "ring_hash", "hash": "xxhash64", "ring": "envoy"},
            "maglev": {"name": "maglev", "hash": "xxhash64"},
        },
        absent={
            **_passive(_NGINX_PASSIVE, "it is NGINX's passive check; Envoy's is outlier detection"),
            "circuit_breaker.failure_threshold": "Envoy has no per-backend breaker; outlier detection ejects",
            "retries.turnaround": "Envoy's retries back off with full jitter",
            "retries.same_server": "Envoy's retries can avoid previous hosts, never pin one",
        },
        fixed={
            "backups": "Envoy's backups are priority levels",
            "health_check.style": "Envoy's active checks",
        },
        retried="nothing without a route retry policy; with one, 1 retry on the conditions it names",
        notes=(
            "ring_hash and maglev place keys as Envoy does when servers have `addresses` "
            "(else the server names are hashed, as with use_hostname_for_hashing)",
            "the circuit breakers' limits are HTTP's: at layer 4 they are left out (tcp_proxy's "
            "cap of 1024 proxied connections is not modeled)",
        ),
    ),
    "nginx": Emulation(
        system="NGINX 1.22-1.26 (open source)",
        balancer={
            "panic_threshold": 0.0,
            # backup: used only when no primary server is available.
            "backups": "last_resort",
            # ngx_http_upstream.c server directive: max_fails=1 fail_timeout=10s.
            "outlier_detection": {"max_fails": 1, "fail_timeout": 10.0},
            # proxy_next_upstream error timeout; proxy_next_upstream_tries 0: every server
            # once; no back-off and no limit on concurrent retries.
            "retries": {
                "on": ["connect_failure", "reset", "timeout"],
                "backoff": 0.0,
                "max_concurrent": None,
            },
        },
        sections={},
        slow_start=None,
        retry_every_server=True,
        policies={
            "round_robin": "weighted_round_robin",
            "weighted_round_robin": "weighted_round_robin",
            "least_connections": "least_connections",
            # ip_hash: the /24 hash over weights, not the notes' md5 modulo.
            "ip_hash": {"name": "ip_hash", "style": "nginx"},
            "random": "weighted_random",
            "weighted_random": "weighted_random",
            # random two least_conn: two distinct weighted draws, the less loaded per weight.
            "random_two": "random_two",
            "p2c": "random_two",
            # hash $key consistent: NGINX's CRC-32 ring.
            "ring_hash": {"name": "ring_hash", "hash": "crc32", "ring": "nginx"},
            "least_response_time": "least_response_time",
        },
        absent={
            "health_check": "active health checks are NGINX Plus only",
            "locality": "NGINX has no zone-aware routing",
            "circuit_breaker": "NGINX has no circuit breakers (max_conns is per server)",
            **_passive(_ENVOY_PASSIVE, "it is Envoy's outlier detection; NGINX's is max_fails"),
            "retries.budget": "NGINX has no retry budget",
            "retries.hedge": "NGINX does not hedge",
            "retries.same_server": "NGINX retries the next server (proxy_next_upstream), never the same",
            "retries.turnaround": "NGINX retries at once",
        },
        fixed={
            "panic_threshold": "NGINX has no panic mode (it is Envoy's)",
            "backups": "NGINX uses backups only when no primary is available",
        },
        retried=(
            "a connection error, a reset or a timeout, on every other server once "
            "(proxy_next_upstream error timeout)"
        ),
        notes=("least_response_time is least_time: NGINX Plus, and open source from NGINX 1.31",),
    ),
    "haproxy": Emulation(
        system="HAProxy 2.6-2.8",
        balancer={
            "panic_threshold": 0.0,
            # backup: used only when no active server is available.
            "backups": "last_resort",
            # retries 3, retry-on conn-failure, no option redispatch: each retry to the same
            # server after the turn-around timer, min(timeout connect, 1 s) (configuration.txt).
            "retries": {
                "max": 3,
                "on": ["connect_failure"],
                "same_server": True,
                "turnaround": 1.0,
                "max_concurrent": None,
            },
        },
        sections={"health_check": {"style": "haproxy"}},
        slow_start={"style": "haproxy"},
        policies={
            "round_robin": "fast_weighted_round_robin",
            "weighted_round_robin": "fast_weighted_round_robin",
            "fast_weighted_round_robin": "fast_weighted_round_robin",
            "least_connections": "weighted_least_connections",
            "weighted_least_connections": "weighted_least_connections",
            "random": "chash_random",
            "chash_random": "chash_random",
        },
        absent={
            "outlier_detection": "HAProxy's passive checks (observe, error-limit) are not modeled",
            "locality": "HAProxy has no zone-aware routing",
            "circuit_breaker": "HAProxy has no circuit breakers (maxconn queues instead)",
            "retries.budget": "HAProxy has no retry budget",
            "retries.hedge": "HAProxy does not hedge",
        },
        fixed={
            "panic_threshold": "HAProxy has no panic mode (it is Envoy's)",
            "backups": "HAProxy uses backups only when no active server is available",
            "health_check.style": "HAProxy's active checks",
        },
        retried=(
            "a failed connection, 3 times, to the same server, each after 1 s (retries 3, no "
            "redispatch; the turn-around timer is min(timeout connect, 1 s))"
        ),
    ),
}


def apply_emulation(scenario: Mapping[str, Any]) -> Mapping[str, Any]:
    """``scenario`` (a raw mapping) with ``balancer.emulate``'s defaults filled in and its
    policy names translated; unchanged without ``emulate``.

    Raises:
        ConfigError: the scenario sets a mechanism or a policy the emulated system does not
            have (the key named), or ``emulate`` names no known system.
    """
    balancer = scenario.get("balancer")
    if not isinstance(balancer, Mapping) or balancer.get("emulate") is None:
        return scenario
    name = balancer["emulate"]
    if not isinstance(name, str) or name not in EMULATIONS:
        raise ConfigError(
            f"must be one of {', '.join(EMULATIONS)}; got {shown(name)}.", key="balancer.emulate"
        )
    system = EMULATIONS[name]
    _refuse(system, name, balancer)
    out = dict(balancer)
    for key, value in system.balancer.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, Mapping) and isinstance(out[key], Mapping):
            out[key] = {**value, **out[key]}
    if out.get("layer") == 4:
        for path in system.http_only:
            section, _, key = path.partition(".")
            if _given(balancer, path) is _MISSING and isinstance(out.get(section), Mapping):
                out[section] = {k: v for k, v in out[section].items() if k != key}
    for section, defaults in system.sections.items():
        if isinstance(out.get(section), Mapping):
            out[section] = {**defaults, **out[section]}
    groups = scenario.get("servers")
    retries = out.get("retries")
    if system.retry_every_server and isinstance(retries, Mapping) and "max" not in retries:
        out["retries"] = {**retries, "max": max(0, _server_count(groups) - 1)}
    out["policy"] = _translate(system, name, out.get("policy", "round_robin"), "balancer.policy")
    if isinstance(out.get("pools"), Mapping):
        out["pools"] = {
            pool: _pool(system, name, spec, f"balancer.pools.{pool}.policy")
            for pool, spec in out["pools"].items()
        }
    result = {**scenario, "balancer": out}
    if isinstance(groups, list):
        result["servers"] = [_slow_start(system, name, group, i) for i, group in enumerate(groups)]
    return result


def _refuse(system: Emulation, name: str, balancer: Mapping[str, Any]) -> None:
    """Refuse a key the system has no counterpart for, or a value other than the one it fixes."""
    for path, reason in system.absent.items():
        if _given(balancer, path) is not _MISSING:
            raise ConfigError(
                f"must be left out with emulate: {name} ({reason}); remove emulate to mix systems.",
                key=f"balancer.{path}",
            )
    for path, reason in system.fixed.items():
        wanted, value = system.required(path), _given(balancer, path)
        if value is not _MISSING and value != wanted:
            raise ConfigError(
                f"must be {wanted!r} with emulate: {name} ({reason}); got {shown(value)}. "
                "Remove emulate to mix systems.",
                key=f"balancer.{path}",
            )


_MISSING = object()


def _given(balancer: Mapping[str, Any], path: str) -> Any:
    """The value the scenario gives ``path`` (``key`` or ``section.key``), or _MISSING."""
    section, _, key = path.partition(".")
    value = balancer.get(section, _MISSING)
    if not key or value is _MISSING:
        return _MISSING if value is None else value
    return value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING


def _translate(system: Emulation, name: str, spec: Any, key: str) -> Any:
    """The policy ``spec`` means under ``system``: its name mapped (with the system's
    parameters), the scenario's parameters kept."""
    if isinstance(spec, Mapping):
        meaning = _translate(system, name, spec.get("name"), key)
        base = dict(meaning) if isinstance(meaning, Mapping) else {"name": meaning}
        return {**base, **spec, "name": base["name"]}
    if not isinstance(spec, str) or ":" in spec:
        return spec  # a Policy object or a user's module:Class
    if spec not in system.policies:
        raise ConfigError(
            f"must be one of {', '.join(system.policies)} with emulate: {name} ({system.system} "
            f"has no counterpart of the others, or lbsim does not model it); got {shown(spec)}.",
            key=key,
        )
    return system.policies[spec]


def _pool(system: Emulation, name: str, pool: Any, key: str) -> Any:
    if isinstance(pool, Mapping) and pool.get("policy") is not None:
        return {**pool, "policy": _translate(system, name, pool["policy"], key)}
    return pool


def _slow_start(system: Emulation, name: str, group: Any, i: int) -> Any:
    if not isinstance(group, Mapping) or not isinstance(group.get("slow_start"), Mapping):
        return group
    if system.slow_start is None:
        raise ConfigError(
            f"must be left out with emulate: {name} (slow start is NGINX Plus only); "
            "remove emulate to mix systems.",
            key=f"servers[{i}].slow_start",
        )
    style = group["slow_start"].get("style", system.slow_start["style"])
    if style != system.slow_start["style"]:
        raise ConfigError(
            f"must be {system.slow_start['style']!r} with emulate: {name}; got {shown(style)}. "
            "Remove emulate to mix systems.",
            key=f"servers[{i}].slow_start.style",
        )
    return {**group, "slow_start": {**system.slow_start, **group["slow_start"]}}


def _server_count(groups: Any) -> int:
    """The number of servers ``groups`` (raw server groups) declare; invalid counts count 1
    here and are refused by the schema."""
    if not isinstance(groups, list):
        return 1
    counts = [g.get("count", 1) if isinstance(g, Mapping) else 1 for g in groups]
    return sum(c if isinstance(c, int) and c >= 1 else 1 for c in counts)
