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

# Refused by the HTTP server itself, before any handler or key check ran: malformed or oversized requests.
http_rejected = Counter(
    "gs_api_http_rejected",
    "HTTP requests refused before reaching a handler (malformed, oversized header, oversized body), by reason",
    ["reason"],
)
HTTP_REJECT_REASONS = ("body_too_large", "header_too_large", "too_many_headers", "invalid_header", "bad_method",
                       "malformed", "internal")

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
for _reason in HTTP_REJECT_REASONS:
    http_rejected.labels(_reason)
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
