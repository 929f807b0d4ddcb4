"""Metrics of the cluster parts (Redis link, and what the instances share through it)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REDIS_UP = Gauge(
    "gs_redis_up",
    "1 while the instance's Redis (redis_url) answers, 0 while it does not; absent without redis_url",
)
REDIS_ERRORS = Counter(
    "gs_redis_errors",
    "Redis operations that failed (connection refused or lost, timeout, error reply), by operation",
    ["operation"],
)
