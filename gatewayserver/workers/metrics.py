"""Metrics of the cross-worker calls (declared beside the code that counts them: peers.py, internal.py)."""

from __future__ import annotations

from prometheus_client import Counter

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
