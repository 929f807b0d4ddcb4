"""`merge_expositions`: what `/metrics` shows with several workers, from each worker's own exposition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gatewayserver.workers.exposition import merge_expositions


def exposition(uplinks: float, utilization: float, up: float, rtt: list[float], rss: float) -> str:
    registry = CollectorRegistry()
    Counter("gs_uplinks_received_total", "Uplinks", registry=registry).inc(uplinks)
    Gauge("gs_gateways_connected", "Gateways", ["protocol"], registry=registry).labels("udp").set(uplinks)
    Gauge("gs_sub_band_utilization_ratio", "Max share", ["sub_band"], registry=registry).labels("a").set(utilization)
    Gauge("gs_upstream_up", "NS up", ["address"], registry=registry).labels("ns:1").set(up)
    histogram = Histogram("gs_gateway_rtt_seconds", "RTT", buckets=(0.1, 1.0), registry=registry)
    for value in rtt:
        histogram.observe(value)
    Gauge("process_resident_memory_bytes", "RSS", registry=registry).set(rss)
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_histograms_and_gauges_are_summed_extrema_kept_per_process_labelled() -> None:
    merged = samples(
        merge_expositions(
            [exposition(3, 0.25, 1, [0.05], 100), exposition(4, 0.5, 0, [0.5, 2.0], 200), None]
        )
    )
    assert merged[("gs_uplinks_received_total", ())] == 7
    assert merged[("gs_gateways_connected", (("protocol", "udp"),))] == 7
    assert merged[("gs_sub_band_utilization_ratio", (("sub_band", "a"),))] == 0.5
    assert merged[("gs_upstream_up", (("address", "ns:1"),))] == 0
    assert merged[("gs_gateway_rtt_seconds_bucket", (("le", "0.1"),))] == 1
    assert merged[("gs_gateway_rtt_seconds_bucket", (("le", "1.0"),))] == 2
    assert merged[("gs_gateway_rtt_seconds_bucket", (("le", "+Inf"),))] == 3
    assert merged[("gs_gateway_rtt_seconds_count", ())] == 3
    assert merged[("process_resident_memory_bytes", (("worker", "0"),))] == 100
    assert merged[("process_resident_memory_bytes", (("worker", "1"),))] == 200
    assert ("process_resident_memory_bytes", ()) not in merged
    assert merged[("gs_worker_up", (("worker", "0"),))] == 1
    assert merged[("gs_worker_up", (("worker", "2"),))] == 0


def test_one_worker_merges_to_its_own_values() -> None:
    text = exposition(5, 0.1, 1, [0.2], 50)
    merged = samples(merge_expositions([text]))
    for key, value in samples(text).items():
        if key[0].startswith("process_"):
            key = (key[0], (("worker", "0"),))
        assert merged[key] == value


def test_redis_up_is_the_least_of_the_workers() -> None:
    """A health flag like gs_upstream_up: the GatewayServerRedisDown alert (== 0) must see one worker's outage, and
    "all up" must read 1 whatever the worker count, not N."""

    def worker(up: float) -> str:
        registry = CollectorRegistry()
        Gauge("gs_redis_up", "Redis up", registry=registry).set(up)
        return generate_latest(registry).decode()

    assert samples(merge_expositions([worker(1), worker(0)]))[("gs_redis_up", ())] == 0
    assert samples(merge_expositions([worker(1), worker(1), worker(1)]))[("gs_redis_up", ())] == 1
