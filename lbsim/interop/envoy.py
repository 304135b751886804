"""``lbsim import --format envoy``: an Envoy cluster (v3 API, YAML or JSON; alone or the first
of a bootstrap's ``static_resources.clusters``) as a scenario's servers and ``balancer``
(``emulate: envoy``), after cluster.proto, health_check.proto, outlier_detection.proto and
circuit_breaker.proto of envoy/config/cluster/v3 and envoy/config/core/v3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lbsim.config.loading import read_yaml
from lbsim.errors import ConfigError, shown
from lbsim.interop.imported import Imported, Server, said, whole

# cluster.proto LbPolicy -> lbsim's policy under emulate: envoy.
POLICY = {
    "ROUND_ROBIN": "round_robin",
    "LEAST_REQUEST": "least_connections",
    "RANDOM": "random",
    "RING_HASH": "ring_hash",
    "MAGLEV": "maglev",
}
# Cluster keys that change nothing lbsim models.
_HARMLESS = {"name", "connect_timeout", "type", "dns_lookup_family", "lb_policy", "load_assignment"}
# outlier_detection.proto -> lbsim's outlier_detection (durations and the stdev factor, which
# Envoy gives in thousandths, converted below).
OUTLIER = {
    "consecutive_5xx": "consecutive_errors",
    "interval": "interval",
    "base_ejection_time": "base_ejection",
    "max_ejection_time": "max_ejection",
    "max_ejection_percent": "max_ejection_percent",
    "success_rate_minimum_hosts": "success_rate_minimum_hosts",
    "success_rate_request_volume": "success_rate_request_volume",
    "success_rate_stdev_factor": "success_rate_stdev_factor",
}
BREAKER = {
    "max_connections": "max_connections",
    "max_pending_requests": "max_pending",
    "max_requests": "max_requests",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def read(text: str) -> Imported:
    """The cluster in ``text`` (see the module).

    Raises:
        ConfigError: not YAML, no cluster with endpoints, or a value Envoy would not take.
    """
    cluster = _cluster(read_yaml(text.encode(), "the Envoy config (YAML or JSON)"))
    unsupported = [said(key) for key in cluster if key not in _HARMLESS and key not in _READ]
    balancer: dict[str, Any] = {"emulate": "envoy"}
    policy = str(cluster.get("lb_policy", "ROUND_ROBIN"))
    if policy not in POLICY:
        unsupported.append(f"lb_policy {shown(policy, 40)}: lbsim does not model it; read as ROUND_ROBIN")
    balancer["policy"] = POLICY.get(policy, "round_robin")
    choices = _get(cluster, "least_request_lb_config", "choice_count")
    if policy == "LEAST_REQUEST" and choices is not None:
        balancer["policy"] = {
            "name": "p2c",
            "choices": whole(choices, "least_request_lb_config.choice_count"),
        }
    slow = _get(cluster, "round_robin_lb_config", "slow_start_config") or _get(
        cluster, "least_request_lb_config", "slow_start_config"
    )
    window = None
    if isinstance(slow, Mapping):
        window = _seconds(slow["slow_start_window"]) if "slow_start_window" in slow else None
        unsupported += [f"slow_start_config.{said(key)}" for key in slow if key != "slow_start_window"]
    servers = _servers(cluster, window)
    panic = _get(cluster, "common_lb_config", "healthy_panic_threshold", "value")
    if panic is not None:
        balancer["panic_threshold"] = panic  # checked as the scenario's panic_threshold
    checks = _mappings(cluster.get("health_checks") or [], "health_checks")
    if checks:
        balancer["health_check"] = _health_check(checks[0])
        unsupported += ["health_checks: only the first is read"] if len(checks) > 1 else []
    if "outlier_detection" in cluster:
        balancer["outlier_detection"] = _outlier(
            _mapping(cluster["outlier_detection"], "outlier_detection"), unsupported
        )
    thresholds = _mappings(
        _get(cluster, "circuit_breakers", "thresholds") or [], "circuit_breakers.thresholds"
    )
    if thresholds:
        breaker = thresholds[0]
        where = "circuit_breakers.thresholds[0]."
        balancer["circuit_breaker"] = {
            BREAKER[k]: whole(v, f"{where}{k}") for k, v in breaker.items() if k in BREAKER
        }
        unsupported += [
            f"circuit_breakers.thresholds[0].{said(k)}"
            for k in breaker
            if k not in BREAKER and k != "priority"
        ]
        unsupported += (
            ["circuit_breakers: only the first threshold (DEFAULT priority) is read"]
            if len(thresholds) > 1
            else []
        )
    return Imported("Envoy", servers, balancer, unsupported)


_READ = {
    "least_request_lb_config", "round_robin_lb_config", "common_lb_config", "health_checks",
    "outlier_detection", "circuit_breakers",
}  # fmt: skip


def _cluster(data: Any) -> Mapping[str, Any]:
    """The cluster itself, or the first of a bootstrap's static clusters, or of a list."""
    if isinstance(data, Mapping) and isinstance(data.get("static_resources"), Mapping):
        data = data["static_resources"].get("clusters")
    if isinstance(data, Mapping) and isinstance(data.get("clusters"), list):
        data = data["clusters"]
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, Mapping) or not isinstance(data.get("load_assignment"), Mapping):
        raise ConfigError("an Envoy config must hold a cluster with a load_assignment; got none.")
    return data


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a mapping; got {shown(value, 40)}.")
    return value


def _mappings(value: Any, what: str) -> list[Mapping[str, Any]]:
    """``value``, a list of mappings (``what`` names it in the error)."""
    if not isinstance(value, list):
        raise ConfigError(f"{what} must be a list; got {shown(value, 40)}.")
    return [_mapping(item, f"{what}[{i}]") for i, item in enumerate(value)]


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _seconds(value: Any) -> float:
    """A protobuf Duration as YAML writes it: ``5s``, ``0.25s`` or {seconds, nanos}."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1))
    if isinstance(value, Mapping):
        return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    raise ConfigError(f"an Envoy duration must be like 5s or 0.25s; got {shown(value)}.")


def _servers(cluster: Mapping[str, Any], slow_start: float | None) -> list[Server]:
    """One server per lb_endpoint: priority 0 primary, higher priorities backups."""
    servers = []
    groups = _mappings(cluster["load_assignment"].get("endpoints") or [], "load_assignment.endpoints")
    for g, group in enumerate(groups):
        where = f"load_assignment.endpoints[{g}]"
        backup = whole(group.get("priority", 0), f"{where}.priority") > 0
        for e, entry in enumerate(_mappings(group.get("lb_endpoints") or [], f"{where}.lb_endpoints")):
            socket = _get(entry, "endpoint", "address", "socket_address")
            what = f"{where}.lb_endpoints[{e}].endpoint.address.socket_address"
            if not isinstance(socket, Mapping) or "address" not in socket or "port_value" not in socket:
                raise ConfigError(f"{what} must give an address and a port_value; got {shown(socket, 60)}.")
            address = f"{socket['address']}:{whole(socket['port_value'], f'{what}.port_value')}"
            name = _get(entry, "endpoint", "hostname")
            weight = whole(
                entry.get("load_balancing_weight", 1), f"{where}.lb_endpoints[{e}].load_balancing_weight"
            )
            servers.append(
                Server(name if isinstance(name, str) else None, address, weight, backup, slow_start)
            )
    if not servers:
        raise ConfigError("an Envoy cluster's load_assignment must list endpoints; got none.")
    return servers


def _health_check(check: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, ours in (("interval", "interval"), ("timeout", "timeout"), ("interval_jitter", "jitter")):
        if key in check:
            out[ours] = _seconds(check[key])
    for key, ours in (("unhealthy_threshold", "fall"), ("healthy_threshold", "rise")):
        if key in check:
            out[ours] = whole(check[key], f"health_checks[0].{key}")
    return out


def _outlier(detection: Mapping[str, Any], unsupported: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in detection.items():
        if key not in OUTLIER:
            unsupported.append(f"outlier_detection.{said(key)}")
        elif key in ("interval", "base_ejection_time", "max_ejection_time"):
            out[OUTLIER[key]] = _seconds(value)
        elif key == "success_rate_stdev_factor":
            out[OUTLIER[key]] = whole(value, f"outlier_detection.{key}") / 1000
        else:
            out[OUTLIER[key]] = value
    return out
