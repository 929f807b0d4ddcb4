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

# --- gateway ownership and cross-instance calls (ownership.py, owners.py, router.py, service.py) -------------------

GATEWAY_MOVES = Counter(
    "gs_cluster_gateway_moves",
    "Gateways whose connection moved between instances: `in` when one connected here while another instance held "
    "its record, `out` when this instance disconnected its own because another one took it (notice or renewal)",
    ["direction"],
)
FORWARDED_CALLS = Counter(
    "gs_cluster_forwarded_calls",
    "API calls this instance forwarded to the instance owning the gateway, by method and gRPC code",
    ["method", "code"],
)
FORWARDS_FAILED = Counter(
    "gs_cluster_forwards_failed",
    "Calls about a gateway of another instance that could not be answered: `redis_unavailable` (owner unknown), "
    "`instance_unregistered` (owner's registration expired), `instance_unavailable` (owner did not answer)",
    ["reason"],
)
CALLS_REFUSED = Counter(
    "gs_cluster_calls_refused",
    "Internal cluster calls refused before any work: `missing` / `wrong` cluster key",
    ["reason"],
)
OWNERSHIP_DROPPED = Counter(
    "gs_cluster_ownership_updates_dropped",
    "Ownership record updates given up on: `pending_full` (Redis away long enough to fill the pending set), "
    "`invalid_notice` (a malformed move notice)",
    ["reason"],
)
OWNERSHIP_FLUSHES = Counter(
    "gs_cluster_ownership_flushes",
    "Batched, pipelined writes of ownership records and connection stats to Redis, by result (`ok`, `failed`)",
    ["result"],
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
