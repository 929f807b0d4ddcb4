"""The lock-free loop counters must expose exactly what prometheus_client's own types would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gatewayserver.counters import LoopCounter, LoopHistogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _samples(registry: CollectorRegistry) -> list[str]:
    """Exposition lines without `_created` (our collectors have no creation time) and without comments."""
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if line and not line.startswith("#") and "_created" not in line)


def _headers(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if line.startswith("# TYPE") and "_created" not in line)


def test_counters_match_prometheus_client():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    for registry, kind in ((ours, LoopCounter), (theirs, Counter)):
        plain = kind("gs_test_uplinks_total", "Uplinks.", registry=registry)
        labelled = kind("gs_test_dropped_total", "Drops.", ["reason"], registry=registry)
        plain.inc()
        plain.inc(2)
        labelled.labels("crc").inc()
        labelled.labels("crc").inc()
        labelled.labels("repeat").inc(5)
    assert _samples(ours) == _samples(theirs)
    assert _headers(ours) == _headers(theirs)
    assert 'gs_test_dropped_total{reason="crc"} 2.0' in _samples(ours)


def test_histograms_match_prometheus_client_including_bucket_edges():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    values = [0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.05, 0.3, 5.0, 7.5, 0.0]
    for registry, kind in ((ours, LoopHistogram), (theirs, Histogram)):
        histogram = kind("gs_test_latency_seconds", "Latency.", ["call"], buckets=BUCKETS, registry=registry)
        for value in values:
            histogram.labels("handle_uplink").observe(value)
        histogram.labels("report_tx_ack").observe(0.02)
    assert _samples(ours) == _samples(theirs)
    assert _headers(ours) == _headers(theirs)


def test_unlabelled_histogram_and_label_count_is_checked():
    registry = CollectorRegistry()
    histogram = LoopHistogram("gs_test_plain_seconds", "Plain.", buckets=(0.1, 1.0), registry=registry)
    histogram.observe(0.5)
    assert 'gs_test_plain_seconds_bucket{le="1.0"} 1.0' in _samples(registry)
    assert 'gs_test_plain_seconds_bucket{le="0.1"} 0.0' in _samples(registry)
    counter = LoopCounter("gs_test_labelled_total", "Labelled.", ["a"], registry=registry)
    try:
        counter.labels("x", "y")
    except ValueError as exc:
        assert "expected labels" in str(exc)
    else:
        raise AssertionError("a wrong number of label values must be refused")
