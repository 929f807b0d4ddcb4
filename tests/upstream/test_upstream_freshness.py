"""Stale uplinks, drop-oldest at the queue bound, health transitions and exact shutdown accounting.

NetworkServerClient against a real grpc.aio stand-in (tests/controllable_ns.py) on the test's loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from controllable_ns import ControllableNs
from prometheus_client import REGISTRY

from gatewayserver.ttnpb import messages_pb2
from gatewayserver.upstream.health import UpstreamHealth
from gatewayserver.upstream.ns import NetworkServerClient, UplinkDropped, UpstreamSettings


def _uplink(fcnt: int, received_ns: int) -> messages_pb2.UplinkMessage:
    up = messages_pb2.UplinkMessage()
    up.payload.mac_payload.f_hdr.f_cnt = fcnt
    up.received_at.seconds, up.received_at.nanos = divmod(received_ns, 1_000_000_000)
    return up


class Results:
    """What the client reported per uplink: None (delivered), a drop reason, or a gRPC code name."""

    def __init__(self) -> None:
        self.by_fcnt: dict[int, str] = {}

    def __call__(self, uplink: Any, _context: Any, error: BaseException | None) -> None:
        fcnt = uplink.payload.mac_payload.f_hdr.f_cnt
        if error is None:
            self.by_fcnt[fcnt] = "delivered"
        elif isinstance(error, UplinkDropped):
            self.by_fcnt[fcnt] = error.reason
        else:
            self.by_fcnt[fcnt] = error.code().name  # type: ignore[attr-defined]

    async def wait(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.by_fcnt) < count:
            assert time.monotonic() < deadline, f"only {self.by_fcnt} after {timeout}s"
            await asyncio.sleep(0.02)


async def _until(predicate: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _submit(client: NetworkServerClient, fcnt: int) -> None:
    now = time.time_ns()
    client.submit(_uplink(fcnt, now), None, "handle_uplink", now)


@pytest.fixture
async def ns() -> Any:
    stand_in = ControllableNs()
    port = await stand_in.start()
    stand_in.port = port  # type: ignore[attr-defined]
    yield stand_in
    stand_in.set_mode("ok")
    await stand_in.stop()


async def test_a_full_queue_drops_its_oldest_uplink_for_the_newest(ns: ControllableNs) -> None:
    results = Results()
    client = NetworkServerClient(
        f"127.0.0.1:{ns.port}", UpstreamSettings(max_in_flight=1, queue_size=3, max_age=0), results  # type: ignore[attr-defined]
    )
    try:
        ns.set_mode("hang")
        _submit(client, 0)
        await _until(lambda: ns.calls == 1)  # fcnt 0 holds the only call slot
        for fcnt in range(1, 6):
            _submit(client, fcnt)
        assert client.queue_depth == 3
        ns.set_mode("ok")
        await results.wait(6)
    finally:
        await client.close(5)
    assert results.by_fcnt == {0: "delivered", 1: "queue_full", 2: "queue_full",
                               3: "delivered", 4: "delivered", 5: "delivered"}
    assert ns.fcnts() == [0, 3, 4, 5]


async def test_uplinks_older_than_max_age_are_dropped_when_dequeued(ns: ControllableNs) -> None:
    results = Results()
    client = NetworkServerClient(
        f"127.0.0.1:{ns.port}", UpstreamSettings(max_in_flight=1, max_age=0.5, deadline=30), results  # type: ignore[attr-defined]
    )
    try:
        ns.set_mode("hang")
        _submit(client, 0)
        await _until(lambda: ns.calls == 1)
        for fcnt in range(1, 4):
            _submit(client, fcnt)  # wait behind the hanging call ...
        await asyncio.sleep(1.0)  # ... until they are older than max_age
        ns.set_mode("ok")
        await results.wait(4)
        _submit(client, 4)  # a fresh one after the recovery goes through
        await results.wait(5)
    finally:
        await client.close(5)
    assert results.by_fcnt == {0: "delivered", 1: "stale", 2: "stale", 3: "stale", 4: "delivered"}
    assert ns.fcnts() == [0, 4]


async def test_no_retry_once_the_uplink_is_stale(ns: ControllableNs) -> None:
    """UNAVAILABLE with a backoff longer than max_age: one call, then stale, not three more late attempts."""
    results = Results()
    client = NetworkServerClient(
        f"127.0.0.1:{ns.port}",  # type: ignore[attr-defined]
        UpstreamSettings(retries=3, backoff=0.6, max_age=0.3),
        results,
    )
    try:
        ns.set_mode(grpc.StatusCode.UNAVAILABLE)
        _submit(client, 7)
        await results.wait(1)
    finally:
        await client.close(5)
    assert results.by_fcnt == {7: "stale"}
    assert ns.calls == 1


async def test_health_goes_failing_once_and_recovers_once_with_the_drops(
    ns: ControllableNs, caplog: pytest.LogCaptureFixture
) -> None:
    results = Results()
    address = f"127.0.0.1:{ns.port}"  # type: ignore[attr-defined]
    client = NetworkServerClient(address, UpstreamSettings(retries=0, max_age=0), results)
    caplog.set_level(logging.INFO, logger="gatewayserver.upstream.ns")
    try:
        assert REGISTRY.get_sample_value("gs_upstream_up", {"address": address}) == 1.0
        ns.set_mode(grpc.StatusCode.UNAVAILABLE)
        for fcnt in range(10):
            _submit(client, fcnt)
            await results.wait(fcnt + 1)
        assert client.health.failing
        assert REGISTRY.get_sample_value("gs_upstream_up", {"address": address}) == 0.0
        report = client.health.report()
        assert report["failing"] and report["code"] == "UNAVAILABLE" and report["uplinks_dropped"] == 10
        ns.set_mode("ok")
        for fcnt in range(10, 15):
            _submit(client, fcnt)
            await results.wait(fcnt + 1)
        assert not client.health.failing
        assert REGISTRY.get_sample_value("gs_upstream_up", {"address": address}) == 1.0
    finally:
        await client.close(5)
    failing = [r for r in caplog.records if r.getMessage().startswith("Network Server failing")]
    recovered = [r for r in caplog.records if r.getMessage() == "Network Server recovered"]
    assert len(failing) == 1 and len(recovered) == 1, [r.getMessage() for r in caplog.records]
    assert failing[0].address == address and failing[0].code == "UNAVAILABLE"  # type: ignore[attr-defined]
    assert "reachable" in failing[0].check  # type: ignore[attr-defined]
    assert recovered[0].uplinks_dropped == 10  # type: ignore[attr-defined]
    assert recovered[0].down_for.endswith("s")  # type: ignore[attr-defined]


async def test_shutdown_counts_queued_in_flight_and_retrying_uplinks_exactly(ns: ControllableNs) -> None:
    """The stand-in answers 3 uplinks, then hangs; one more NS fails every call, so its uplinks sit in backoff."""
    failing_ns = ControllableNs()
    failing_port = await failing_ns.start()
    failing_ns.set_mode(grpc.StatusCode.UNAVAILABLE)
    results, failing_results = Results(), Results()
    ns.answer_first = 3
    client = NetworkServerClient(
        f"127.0.0.1:{ns.port}", UpstreamSettings(max_in_flight=4, retries=0, deadline=60, max_age=0), results  # type: ignore[attr-defined]
    )
    retrying = NetworkServerClient(
        f"127.0.0.1:{failing_port}", UpstreamSettings(retries=5, backoff=60, max_age=0), failing_results
    )
    try:
        for fcnt in range(20):
            _submit(client, fcnt)
        for fcnt in range(100, 102):
            _submit(retrying, fcnt)
        await _until(lambda: len(ns.received) == 3 and ns.calls == 3 + 4 and failing_ns.calls == 2)
    finally:
        abandoned = await client.close(0.2)
        abandoned_retrying = await retrying.close(0.2)
        await failing_ns.stop()
    assert len(ns.received) == 3
    assert abandoned == 20 - len(ns.received) == 17
    assert client.abandoned == {"queued": 13, "in_flight": 4, "retrying": 0, "dropped_while_stopping": 0}
    assert abandoned_retrying == 2
    assert retrying.abandoned == {"queued": 0, "in_flight": 0, "retrying": 2, "dropped_while_stopping": 0}
    assert results.by_fcnt == dict.fromkeys(ns.fcnts(), "delivered")  # which 3 of the first 4 calls won: any


def test_health_core_needs_failures_in_a_row_and_ignores_per_message_codes() -> None:
    health = UpstreamHealth("ns:1884", threshold=3)
    assert health.failed("UNAVAILABLE", 1) is None
    assert health.failed("INVALID_ARGUMENT", 2) is None  # about one message, not the server
    assert health.failed("UNAVAILABLE", 3) is None
    assert health.succeeded(4) is None  # two in a row were not enough; the run starts again
    assert health.failed("DEADLINE_EXCEEDED", 10) is None
    health.uplink_dropped()
    assert health.failed("DEADLINE_EXCEEDED", 11) is None
    down = health.failed("DEADLINE_EXCEEDED", 12)
    assert down is not None and down.failing and down.code == "DEADLINE_EXCEEDED" and "hung" in down.hint
    assert health.failed("DEADLINE_EXCEEDED", 13) is None  # once per transition
    health.uplink_dropped()
    up = health.succeeded(10 + 5_000_000_000)
    assert up is not None and not up.failing and up.down_for_ns == 5_000_000_000 and up.dropped == 2
    assert health.succeeded(20) is None


async def test_a_long_stale_backlog_is_dropped_in_batches_that_let_the_loop_run(ns: ControllableNs) -> None:
    """600 stale uplinks behind a hung call: all counted, and the loop gets turns between batches of 256."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticks_at_drop: list[int] = []
    results = Results()

    def on_result(uplink: Any, context: Any, error: BaseException | None) -> None:
        if isinstance(error, UplinkDropped):
            ticks_at_drop.append(ticks)
        results(uplink, context, error)

    client = NetworkServerClient(
        f"127.0.0.1:{ns.port}", UpstreamSettings(max_in_flight=1, max_age=0.3, deadline=30, queue_size=1000),  # type: ignore[attr-defined]
        on_result,
    )
    ticking = asyncio.get_running_loop().create_task(ticker())
    try:
        ns.set_mode("hang")
        _submit(client, 0)
        await _until(lambda: ns.calls == 1)
        for fcnt in range(1, 601):
            _submit(client, fcnt)
        await asyncio.sleep(0.6)
        ns.set_mode("ok")
        await results.wait(601)
    finally:
        ticking.cancel()
        await client.close(5)
    assert list(results.by_fcnt.values()).count("stale") == 600
    assert len(set(ticks_at_drop)) >= 3  # 600 drops in at least three loop turns (256 + 256 + 88)


async def test_a_call_failing_during_shutdown_is_not_retried_and_is_reported_beside_the_abandoned(
    ns: ControllableNs,
) -> None:
    results = Results()
    client = NetworkServerClient(
        f"127.0.0.1:{ns.port}", UpstreamSettings(retries=3, backoff=0.2, max_age=0, deadline=30), results  # type: ignore[attr-defined]
    )
    ns.set_mode("hang")
    _submit(client, 1)
    await _until(lambda: ns.calls == 1)
    closing = asyncio.get_running_loop().create_task(client.close(20))
    await asyncio.sleep(0.1)
    ns.set_mode(grpc.StatusCode.UNAVAILABLE)  # the hanging call now fails: stopping, so no retry
    assert await closing == 0
    assert ns.calls == 1
    assert results.by_fcnt == {1: "UNAVAILABLE"}
    assert client.abandoned == {"queued": 0, "in_flight": 0, "retrying": 0, "dropped_while_stopping": 1}
