"""Counters and histograms for the per-uplink path, without a lock per increment.

prometheus_client guards every `inc()` and `observe()` with a mutex so that any thread may update any metric.
Ours are only ever updated from the event loop's thread, and the uplink path updates five of them per uplink, so
those locks (plus the context-manager calls around them) came to a measurable share of the per-uplink budget.
These classes keep plain integers and floats and hand them to prometheus_client only at scrape time, through a
collector registered like any other metric: the exposition (names, `_total`, labels, buckets) is the same.

Use them for metrics updated per datagram or per uplink from the loop thread; everything else stays on
prometheus_client's own types.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString


def _child(metric: Any, values: tuple[str, ...], make: Callable[[], Any]) -> Any:
    """The child for these label values, created on first use (like prometheus_client's `labels`)."""
    key = tuple(str(v) for v in values)
    if len(key) != len(metric.labelnames):
        raise ValueError(f"{metric.name}: expected labels {metric.labelnames}, got {key}")
    child = metric._children.get(key)
    if child is None:
        child = metric._children[key] = make()
    return child


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LoopCounter:
    """A counter, optionally labelled; `name` without `_total`, as prometheus_client expects from collectors."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _CounterChild] = {}
        self._own = _CounterChild()
        if not self.labelnames:
            self._children[()] = self._own
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> _CounterChild:
        return _child(self, values, _CounterChild)

    def inc(self, amount: float = 1.0) -> None:
        self._own.value += amount

    def value(self, *values: str) -> float:
        child = self._children.get(tuple(values))
        return child.value if child is not None else 0.0

    def describe(self) -> Iterable[CounterMetricFamily]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in list(self._children.items()):
            family.add_metric(list(key), child.value)
        yield family


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # `le` buckets: a value equal to a bound belongs to that bound's bucket, which bisect_left gives.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class LoopHistogram:
    """A histogram with fixed buckets, optionally labelled."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (), *,
                 buckets: Sequence[float], registry: CollectorRegistry | None = REGISTRY) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(sorted(float(b) for b in buckets if b != float("inf")))
        self._children: dict[tuple[str, ...], _HistogramChild] = {}
        if not self.labelnames:
            self._children[()] = _HistogramChild(self.bounds)
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> _HistogramChild:
        return _child(self, values, lambda: _HistogramChild(self.bounds))

    def observe(self, value: float) -> None:
        self._children[()].observe(value)

    def describe(self) -> Iterable[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in list(self._children.items()):
            cumulative = 0
            buckets = []
            for bound, count in zip((*self.bounds, float("inf")), list(child.counts), strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            family.add_metric(list(key), buckets, child.sum)
        yield family

