"""The names the result tables share: terminal statuses and the metrics of summary.csv."""

from __future__ import annotations

from lbsim.status import STATUSES

LATENCY_COLUMNS = (
    "latency_mean",
    "latency_p50",
    "latency_p90",
    "latency_p99",
    "latency_p999",
    "latency_max",
)
METRICS: tuple[str, ...] = (
    "n_requests",
    *(f"n_{status}" for status in STATUSES),
    "n_retries",
    "n_hedges",
    "error_rate",
    "availability",
    "throughput",
    "offered_load",
    *LATENCY_COLUMNS,
    "utilization_mean",
    "utilization_max",
    "imbalance",
    "balancer_utilization",
    "session_moves",
    "cross_region",
    "cross_zone",
)
# Columns of regions.csv, one row per client region.
REGION_COLUMNS = (
    "region",
    "n_requests",
    "error_rate",
    "latency_mean",
    "latency_p50",
    "latency_p99",
    "served_elsewhere",
)
