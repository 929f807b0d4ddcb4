"""Metrics of the event bus and the streaming API (names fixed in docs/design.md).

Publishing is on the uplink hot path, where a prometheus_client `Counter.inc()` (a lock round trip) would cost
more than the rest of the publish, so the bus counts with `LoopCounter`s (plain numbers, exported at scrape time).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from ..counters import LoopCounter

published = LoopCounter("gs_events_published", "Events published on the in-process event bus")
delivered = LoopCounter("gs_events_delivered", "Events handed to stream subscribers")
dropped = LoopCounter(
    "gs_events_dropped",
    "Events a stream subscriber could not take because its buffer was full (the subscriber is then dropped)",
)

stream_subscribers = Gauge("gs_event_stream_subscribers", "Open event subscriptions (gRPC and HTTP streams)")
subscribers_dropped = Counter(
    "gs_event_stream_subscribers_dropped_total", "Event stream subscribers dropped because they were too slow"
)
