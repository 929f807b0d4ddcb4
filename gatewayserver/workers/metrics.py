"""Metrics of the worker processes and their cross-worker calls (declared beside the code that sets them:
supervisor.py, peers.py, internal.py, links.py)."""

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
    "Gateways connected to this worker: UDP forwarders it owns by EUI and gRPC links whose stream it accepted (how "
    "the steering spreads the fleet). Their sum is gs_gateways_connected summed over protocols.",
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

LINKS_DROPPED = Counter(
    "gs_worker_links_dropped",
    "Cross-worker link announcements not kept, by reason: evicted (the bounded table of gateways linked at peers "
    "was full, the oldest entry was dropped), resync (too many pending for one peer, replaced by a full list), "
    "invalid (a malformed announcement)",
    ["reason"],
)
for _reason in ("evicted", "resync", "invalid"):
    LINKS_DROPPED.labels(_reason)

frames_rejected = Counter(
    "gs_worker_frames_rejected",
    "Internal worker connections closed for malformed input, by reason: oversize (a frame longer than allowed), "
    "short (a length too small for a frame), kind (an unknown frame kind), call (an unreadable call), credit (a "
    "bad credit, or stream items beyond it), duplicate_id (a request id already in use), unexpected (a frame out "
    "of place), truncated (the peer stopped mid-frame), hello_timeout (no worker secret in time)",
    ["reason"],
)
FRAME_REJECT_REASONS = (
    "oversize", "short", "kind", "call", "credit", "duplicate_id", "unexpected", "truncated", "hello_timeout",
)
for _reason in FRAME_REJECT_REASONS:
    frames_rejected.labels(_reason)
