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

stream_refusals = Counter(
    "gs_event_streams_refused",
    "Event stream requests refused by a bound, by reason: too_many_identifiers, too_many_names, "
    "too_many_patterns, name_too_long, invalid_regexp, streams_per_key, streams_total",
    ["reason"],
)
STREAM_REFUSAL_REASONS = (
    "too_many_identifiers",
    "too_many_names",
    "too_many_patterns",
    "name_too_long",
    "invalid_regexp",
    "streams_per_key",
    "streams_total",
)

for _api in ("grpc", "http"):
    auth_failures.labels(_api)
for _reason in STREAM_REFUSAL_REASONS:
    stream_refusals.labels(_reason)

# `labels()` builds and checks a tuple key on every call, so each (api, method, code) child is
# looked up once; the key space is small and closed (fixed method names, status codes).
_request_counters: dict[tuple[str, str, str], Any] = {}


def count_request(api: str, method: str, code: str) -> None:
    key = (api, method, code)
    counter = _request_counters.get(key)
    if counter is None:
        counter = _request_counters[key] = api_requests.labels(api, method, code)
    counter.inc()
