"""The stream bounds over several workers, without sockets: a peer's internal stream holds a slot under the key
of the stream behind it for as long as it lives, a peer over a bound refuses it with the bound's own error, and
the receiving worker turns that into the refusal of its client's stream (counted once, every slot given back).

Over real sockets with workers: tests/workers/test_workers_stream_limits_e2e.py and
tests/e2e/test_supervisor_stream_limits_e2e.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

import orjson
import pytest
from prometheus_client import REGISTRY

from gatewayserver.api.core import ApiCore, ApiSettings
from gatewayserver.api.keys import Principal
from gatewayserver.api.streams import StreamLimits, StreamSlots, is_limit_refusal
from gatewayserver.errors import RESOURCE_EXHAUSTED, GsError
from gatewayserver.events.bus import EventBus
from gatewayserver.ttnpb import events_pb2
from gatewayserver.workers import wire
from gatewayserver.workers.events import MAX_KEY_ID, RoutedEventBackend, peer_stream_slot
from gatewayserver.workers.internal import worker_handlers

LIMITS = StreamLimits(max_streams_per_key=2, max_streams=3)
RIGHTS = frozenset({"RIGHT_GATEWAY_STATUS_READ", "RIGHT_GATEWAY_TRAFFIC_READ"})


def principal(key_id: str) -> Principal:
    return Principal(key_id=key_id, name=key_id, rights=RIGHTS)


def request(key_id: str | None) -> dict[str, Any]:
    return {"key_id": key_id, "gateway_ids": ["gw-a"], "rights": {"gw-a": sorted(RIGHTS)}, "names": None, "tail": 0}


async def settled(check: Any) -> None:
    """Wait (generously) for the cancelled internal streams' tasks to run their clean-up."""
    async with asyncio.timeout(10):
        while not check():
            await asyncio.sleep(0.01)


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("gs_event_streams_refused_total", {"reason": reason}) or 0.0


# --- a peer's slot ----------------------------------------------------------------------------------------------


def test_a_peer_stream_counts_against_its_key_and_the_total() -> None:
    slots = StreamSlots(LIMITS)
    first = peer_stream_slot(slots, request("KEY-A"))
    peer_stream_slot(slots, request("KEY-A"))
    assert (slots.open_for("KEY-A"), slots.total) == (2, 2)
    with pytest.raises(GsError) as info:
        peer_stream_slot(slots, request("KEY-A"))
    assert info.value.full_name == "pkg/events/grpc:too_many_streams_per_key"
    assert info.value.code == RESOURCE_EXHAUSTED and is_limit_refusal(info.value)
    slots.acquire("KEY-B")  # a public stream of this worker: the same counter
    with pytest.raises(GsError) as info:
        peer_stream_slot(slots, request("KEY-C"))
    assert info.value.full_name == "pkg/events/grpc:too_many_streams" and is_limit_refusal(info.value)
    assert slots.total == 3  # refusals took nothing
    first()
    first()  # twice is harmless
    assert (slots.open_for("KEY-A"), slots.total) == (1, 2)
    peer_stream_slot(slots, request("KEY-C"))
    assert slots.total == 3


def test_no_key_takes_no_slot_and_a_malformed_one_is_refused() -> None:
    slots = StreamSlots(LIMITS)
    peer_stream_slot(slots, request(None))()
    peer_stream_slot(None, request("KEY-A"))()
    assert slots.total == 0
    for bad in ("", "K" * (MAX_KEY_ID + 1), 7, ["KEY-A"]):
        with pytest.raises(ValueError):
            peer_stream_slot(slots, {"key_id": bad})
    assert slots.total == 0
    assert not is_limit_refusal(wire.err_worker_unavailable(1, "UNAVAILABLE: gone"))


def test_two_workers_admitting_the_last_slot_at_once_both_refuse() -> None:
    """Each worker counts its own stream, then its peer's internal stream: the second count refuses on both sides,
    so the key never has more than its bound open."""
    one = StreamLimits(max_streams_per_key=1, max_streams=10)
    worker_0, worker_1 = StreamSlots(one), StreamSlots(one)
    release_0 = worker_0.acquire("KEY-A")  # a public stream received by worker 0
    release_1 = worker_1.acquire("KEY-A")  # and one received by worker 1 at the same moment
    for peer in (worker_1, worker_0):  # each one's internal stream reaches the other
        with pytest.raises(GsError) as info:
            peer_stream_slot(peer, request("KEY-A"))
        assert is_limit_refusal(info.value)
    release_0()
    release_1()
    assert worker_0.total == worker_1.total == 0


# --- the internal server's stream -------------------------------------------------------------------------------


async def test_the_internal_stream_takes_its_slot_first_and_gives_it_back_however_it_ends() -> None:
    bus = EventBus()
    slots = StreamSlots(LIMITS)
    events = worker_handlers(cast(Any, None), bus, None, slots).streams[wire.EVENTS]
    body = orjson.dumps(request("KEY-A"))
    first, second = events(body), events(body)
    assert await anext(first) == wire.FRAME_HISTORY_END
    assert await anext(second) == wire.FRAME_HISTORY_END
    assert slots.open_for("KEY-A") == 2
    # Over the bound: the bound's error before any frame, and nothing taken or attached.
    third = events(body)
    with pytest.raises(GsError) as info:
        await anext(third)
    assert info.value.full_name == "pkg/events/grpc:too_many_streams_per_key"
    assert slots.open_for("KEY-A") == 2
    # Closed by the peer (CANCEL), or cancelled with its connection (the receiving worker died): both give back.
    await first.aclose()
    assert slots.open_for("KEY-A") == 1
    task = asyncio.ensure_future(anext(second))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slots.total == 0


# --- the receiving worker ---------------------------------------------------------------------------------------


class Peers:
    """Workers 1 and 2: worker 1 sends its (empty) history and waits; worker 2 refuses with `refusal`."""

    def __init__(self, refusal: GsError | None) -> None:
        self.others = [1, 2]
        self.refusal = refusal
        self.requests: list[dict[str, Any]] = []
        self.open: set[int] = set()
        self.worker_1_listening = asyncio.Event()

    async def stream(self, index: int, method: str, body: bytes) -> AsyncGenerator[bytes, None]:
        self.requests.append(orjson.loads(body))
        self.open.add(index)
        try:
            if index == 2:
                await self.worker_1_listening.wait()  # refuse after worker 1 took its slot
                if self.refusal is not None:
                    raise self.refusal
            yield wire.FRAME_HISTORY_END
            if index == 1:
                self.worker_1_listening.set()
            await asyncio.Event().wait()
        finally:
            self.open.discard(index)


def api(peers: Peers) -> ApiCore:
    slots = StreamSlots(LIMITS)
    backend = RoutedEventBackend(EventBus(), cast(Any, peers))
    return ApiCore(cast(Any, None), backend, cast(Any, None), ApiSettings(stream_limits=LIMITS), stream_slots=slots)


def stream_request() -> events_pb2.StreamEventsRequest:
    message = events_pb2.StreamEventsRequest()
    message.identifiers.add().gateway_ids.gateway_id = "gw-a"
    return message


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (GsError("pkg/events/grpc", "too_many_streams_per_key", "this API key already has {limit} event streams "
                 "open", code=RESOURCE_EXHAUSTED, attributes={"limit": 2}), "streams_per_key"),
        (GsError("pkg/events/grpc", "too_many_streams", "the server already has {limit} event streams open",
                 code=RESOURCE_EXHAUSTED, attributes={"limit": 3}), "streams_total"),
    ],
)
async def test_a_peer_refusal_is_the_refusal_of_the_stream(
    refusal: GsError, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    peers = Peers(refusal)
    core = api(peers)
    before = refused(reason)
    with caplog.at_level(logging.DEBUG), pytest.raises(GsError) as info:
        await asyncio.wait_for(core.start_stream(principal("KEY-A"), stream_request()), 10)
    assert info.value is refusal  # the peer's own error, as a local refusal would be: RESOURCE_EXHAUSTED, HTTP 429
    assert refused(reason) == before + 1  # counted once, here
    assert core.stream_slots.total == 0  # the receiving worker's slot is given back
    await settled(lambda: not peers.open)  # worker 1's internal stream is closed, so its slot too
    assert [r["key_id"] for r in peers.requests] == ["KEY-A", "KEY-A"]  # the key's ID, never its secret
    assert "a worker failed" not in caplog.text
    assert any("event stream refused" in r.message and r.levelno == logging.WARNING for r in caplog.records)


async def test_a_stream_every_peer_accepts_holds_its_slot_until_closed() -> None:
    peers = Peers(None)
    core = api(peers)
    start, subscription = await asyncio.wait_for(core.start_stream(principal("KEY-A"), stream_request()), 10)
    assert start.name == "events.stream.start"
    assert core.stream_slots.open_for("KEY-A") == 1 and peers.open == {1, 2}
    subscription.close()
    assert core.stream_slots.total == 0
    await settled(lambda: not peers.open)


async def test_one_process_passes_the_key_and_needs_no_peer() -> None:
    core = ApiCore(cast(Any, None), EventBus(), cast(Any, None), ApiSettings(stream_limits=LIMITS))
    streams = [await core.start_stream(principal("KEY-A"), stream_request()) for _ in range(2)]
    with pytest.raises(GsError) as info:
        await core.start_stream(principal("KEY-A"), stream_request())
    assert info.value.name == "too_many_streams_per_key"
    for _, subscription in streams:
        subscription.close()
    assert core.stream_slots.total == 0
