"""Metrics of the worker processes and their cross-worker calls (declared beside the code that sets them:
supervisor.py, peers.py, internal.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

WORKER_RESTARTS = Gauge(
    "gs_worker_restarts",
    "Times the supervisor restarted this worker process after it died (0 for a worker started with the daemon). "
    "The worker label is the index of the worker (which gateways it owns: EUI modulo the worker count).",
    ["worker"],
)
WORKER_GATEWAYS = Gauge(
    "gs_worker_gateways_connected",
    "Gateways connected to this worker (the ones it owns that are live): how the EUI steering spreads the fleet. "
    "Their sum is gs_gateways_connected.",
    ["worker"],
)
forwarded = Counter(
    "gs_worker_forwarded_calls",
    "API calls forwarded to the worker owning the gateway, by internal method and gRPC code",
    ["method", "code"],
)
refused = Counter(
    "gs_worker_calls_refused",
    "Internal worker calls refused for a missing or wrong worker secret, by reason",
    ["reason"],
)
REFUSED_REASONS = ("missing", "wrong")
for _reason in REFUSED_REASONS:
    refused.labels(_reason)
