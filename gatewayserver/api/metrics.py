"""Metrics of the operator and cluster APIs (names fixed in docs/design.md)."""

from __future__ import annotations

from prometheus_client import Counter

auth_failures = Counter(
    "gs_api_auth_failures",
    "Rejected API credentials (missing, malformed, unknown or wrong keys, wrong cluster keys)",
    ["api"],
)
api_requests = Counter("gs_api_requests", "API calls handled, by API and method", ["api", "method", "code"])

for _api in ("grpc", "http"):
    auth_failures.labels(_api)
