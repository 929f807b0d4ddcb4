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

# --- events through Redis (events.py) -----------------------------------------------------------------------------

EVENTS_PUBLISHED = Counter(
    "gs_redis_events_published",
    "Events this process wrote to the shared Redis event stream",
)
EVENTS_DROPPED = Counter(
    "gs_redis_events_dropped",
    "Events of this process not written to Redis, by reason: queue_full (Redis too slow, the bounded publish queue "
    "was full), redis_down (Redis known unreachable), write_failed (the write of their batch failed), "
    "too_large (a name or gateway list too long to share)",
    ["reason"],
)
EVENTS_RECEIVED = Counter(
    "gs_redis_events_received",
    "Events of other instances read from the shared Redis event stream and handed to this process's subscribers",
)
EVENTS_INVALID = Counter(
    "gs_redis_events_invalid",
    "Entries of the shared Redis event stream that could not be decoded (skipped)",
)
