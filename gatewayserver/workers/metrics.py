"""Metrics of the worker processes (declared beside the code that sets them)."""

from __future__ import annotations

from prometheus_client import Gauge

WORKER_RESTARTS = Gauge(
    "gs_worker_restarts",
    "Times the supervisor restarted this worker process after it died (0 for a worker started with the daemon). "
    "The worker label is the index of the worker (which gateways it owns: EUI modulo the worker count).",
    ["worker"],
)
