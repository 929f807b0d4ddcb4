"""Metrics of the event bus and the streaming API (names fixed in docs/design.md).

Publishing is on the uplink hot path, where a prometheus_client `Counter.inc()` (a lock round trip) would cost
more than the rest of the publish. The bus therefore bumps plain integers in `counts` and a collector exports
them at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class _Counts:
    __slots__ = ("published", "delivered", "dropped")

    def __init__(self) -> None:
        self.published = 0
        self.delivered = 0
        self.dropped = 0


counts = _Counts()


class _BusCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "gs_events_published", "Events published on the in-process event bus", value=counts.published
        )
        yield CounterMetricFamily("gs_events_delivered", "Events handed to stream subscribers", value=counts.delivered)
        yield CounterMetricFamily(
            "gs_events_dropped",
            "Events a stream subscriber could not take because its buffer was full (the subscriber is then dropped)",
            value=counts.dropped,
        )


REGISTRY.register(_BusCollector())

stream_subscribers = Gauge("gs_event_stream_subscribers", "Open event subscriptions (gRPC and HTTP streams)")
subscribers_dropped = Counter(
    "gs_event_stream_subscribers_dropped_total", "Event stream subscribers dropped because they were too slow"
)
