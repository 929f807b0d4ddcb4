"""Metrics of the operator and cluster APIs (names fixed in docs/design.md)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from ..counters import LoopCounter

auth_failures = Counter(
    "gs_api_auth_failures",
    "Rejected API credentials (missing, malformed, unknown or wrong keys, wrong cluster keys)",
    ["api"],
)
# Counted on every API call, from the event loop (grpc.aio and aiohttp handlers both run there).
api_requests = LoopCounter("gs_api_requests", "API calls handled, by API and method", ["api", "method", "code"])

for _api in ("grpc", "http"):
    auth_failures.labels(_api)

# `labels()` builds and checks a tuple key on every call, so each (api, method, code) child is
# looked up once; the key space is small and closed (fixed method names, status codes).
_request_counters: dict[tuple[str, str, str], Any] = {}


def count_request(api: str, method: str, code: str) -> None:
    key = (api, method, code)
    counter = _request_counters.get(key)
    if counter is None:
        counter = _request_counters[key] = api_requests.labels(api, method, code)
    counter.inc()
