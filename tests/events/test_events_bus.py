"""The in-process event bus: routing, filters, visibility, history and slow subscribers."""

from __future__ import annotations

import asyncio

import pytest

from gatewayserver.errors import INVALID_ARGUMENT, RESOURCE_EXHAUSTED, GsError
from gatewayserver.events import EventBus, name_matcher, resolve_names
from gatewayserver.events import metrics as event_metrics
from gatewayserver.events.definitions import (
    GS_GATEWAY_CONNECT,
    GS_STATUS_RECEIVE,
    GS_UP_FORWARD,
    GS_UP_RECEIVE,
)
from gatewayserver.events.event import Event, new_ulid
from gatewayserver.ttnpb import messages_pb2

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000
G1 = (("gtw1", bytes.fromhex("B827EBFFFE8DB887")),)
G2 = (("gtw2", None),)
TRAFFIC = {"RIGHT_GATEWAY_TRAFFIC_READ"}
STATUS = {"RIGHT_GATEWAY_STATUS_READ"}


def drain(sub) -> list[Event]:
    out = []
    while sub.pending():
        out.append(sub._queue.popleft())
    return out


async def test_routes_by_gateway_and_keeps_order() -> None:
    bus = EventBus()
    s1 = bus.subscribe({"gtw1"})
    s2 = bus.subscribe({"gtw2"})
    both = bus.subscribe({"gtw1", "gtw2"})
    events = [GS_UP_RECEIVE.new(T0 + i, G1 if i % 2 else G2) for i in range(10)]
    for e in events:
        bus.publish(e)
    assert await s1.next_batch() == events[1::2]
    assert await s2.next_batch() == events[0::2]
    assert await both.next_batch() == events


async def test_event_for_two_gateways_is_delivered_once() -> None:
    bus = EventBus()
    sub = bus.subscribe({"gtw1", "gtw2"})
    e = GS_UP_FORWARD.new(T0, G1 + G2)
    bus.publish(e)
    assert await sub.next_batch() == [e]


async def test_names_filter_exact_and_regex() -> None:
    bus = EventBus()
    exact = bus.subscribe({"gtw1"}, name_matcher(["gs.up.receive"]))
    regex = bus.subscribe({"gtw1"}, name_matcher(["/^gs\\.(status|gateway)\\./"]))
    up, st, conn = GS_UP_RECEIVE.new(T0, G1), GS_STATUS_RECEIVE.new(T0, G1), GS_GATEWAY_CONNECT.new(T0, G1)
    for e in (up, st, conn):
        bus.publish(e)
    assert drain(exact) == [up]
    assert drain(regex) == [st, conn]


def test_name_resolution_errors_are_the_references() -> None:
    with pytest.raises(GsError) as info:
        resolve_names(["gs.up.nope"])
    assert (info.value.full_name, info.value.code) == ("pkg/events:unknown_event_name", INVALID_ARGUMENT)
    assert info.value.attributes == {"name": "gs.up.nope"}
    with pytest.raises(GsError) as info:
        resolve_names(["/gs.up.(/"])
    assert info.value.full_name == "pkg/events:invalid_regexp"
    with pytest.raises(GsError) as info:
        resolve_names(["/^as\\./"])
    assert info.value.full_name == "pkg/events:no_matching_events"
    assert info.value.attributes == {"regexp": "^as\\."}
    assert resolve_names([]) is None
    # The documented example regex selects every gs.* definition.
    assert "gs.up.receive" in resolve_names(["/^gs..+/"])


async def test_visibility_by_rights() -> None:
    bus = EventBus()
    traffic = bus.subscribe({"gtw1"}, rights={"gtw1": TRAFFIC})
    status = bus.subscribe({"gtw1"}, rights={"gtw1": STATUS})
    everything = bus.subscribe({"gtw1"}, rights={"gtw1": {"RIGHT_GATEWAY_ALL"}})
    up, st, conn = GS_UP_RECEIVE.new(T0, G1), GS_STATUS_RECEIVE.new(T0, G1), GS_GATEWAY_CONNECT.new(T0, G1)
    for e in (up, st, conn):
        bus.publish(e)
    assert drain(traffic) == [up]
    assert drain(status) == [st, conn]
    assert drain(everything) == [up, st, conn]


async def test_tail_and_after_from_history() -> None:
    bus = EventBus(history_size=100)
    events = [GS_UP_RECEIVE.new(T0 + i * SEC, G1) for i in range(10)]
    for e in events:
        bus.publish(e)
    bus.publish(GS_UP_RECEIVE.new(T0 + 11 * SEC, G2))
    assert drain(bus.subscribe({"gtw1"}, tail=3)) == events[-3:]
    assert drain(bus.subscribe({"gtw1"}, after_ns=T0 + 6 * SEC)) == events[7:]
    # Both: whichever limit is reached first.
    assert drain(bus.subscribe({"gtw1"}, tail=5, after_ns=T0 + 7 * SEC)) == events[8:]
    assert drain(bus.subscribe({"gtw1"}, tail=2, after_ns=T0)) == events[-2:]
    # Filters apply to history too.
    assert drain(bus.subscribe({"gtw1"}, name_matcher(["gs.status.receive"]), tail=5)) == []
    # Live events follow history without a gap.
    sub = bus.subscribe({"gtw1"}, tail=1)
    live = GS_UP_RECEIVE.new(T0 + 20 * SEC, G1)
    bus.publish(live)
    assert await sub.next_batch() == [events[-1], live]


def test_history_is_bounded_by_size_and_age() -> None:
    bus = EventBus(history_size=5, history_max_age_ns=10 * SEC)
    events = [GS_UP_RECEIVE.new(T0 + i * SEC, G1) for i in range(8)]
    for e in events:
        bus.publish(e)
    assert drain(bus.subscribe({"gtw1"}, tail=100)) == events[-5:]
    late = GS_UP_RECEIVE.new(T0 + 16 * SEC, G1)
    bus.publish(late)  # everything before T0+6s is now too old
    assert drain(bus.subscribe({"gtw1"}, tail=100)) == [events[6], events[7], late]
    # Age is also checked against the reader's clock.
    assert drain(bus.subscribe({"gtw1"}, tail=100, now_ns=T0 + 25 * SEC)) == [late]


async def test_slow_subscriber_is_dropped_without_slowing_the_publisher() -> None:
    bus = EventBus()
    slow = bus.subscribe({"gtw1"}, buffer=4)
    fast = bus.subscribe({"gtw1"}, buffer=1000)
    dropped_before = event_metrics.dropped.value()
    events = [GS_UP_RECEIVE.new(T0 + i, G1) for i in range(10)]
    for e in events:
        bus.publish(e)  # never blocks, never raises
    assert slow.closed
    assert event_metrics.dropped.value() == dropped_before + 1
    # What was buffered is still handed out, then the notice.
    assert await slow.next_batch() == events[:4]
    with pytest.raises(GsError) as info:
        await slow.next_batch()
    assert (info.value.full_name, info.value.code) == ("pkg/events:buffer_full", RESOURCE_EXHAUSTED)
    assert await fast.next_batch() == events
    assert bus.subscriber_count() == 1


async def test_async_iteration_and_close_wakes_the_reader() -> None:
    bus = EventBus()
    sub = bus.subscribe({"gtw1"})
    got: list[Event] = []

    async def reader() -> None:
        async for e in sub:
            got.append(e)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    e = GS_UP_RECEIVE.new(T0, G1)
    bus.publish(e)
    await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(task, 1)
    assert got == [e]
    assert bus.subscriber_count() == 0


def test_publish_never_raises() -> None:
    bus = EventBus()
    bus.subscribe({"gtw1"})
    bus.publish(object())  # type: ignore[arg-type]
    bus.publish(Event("gs.up.receive", T0, (("gtw1",),)))  # type: ignore[arg-type]


def test_unique_id_is_a_ulid_of_the_event_time() -> None:
    from ulid import ULID

    e = GS_UP_RECEIVE.new(T0 + 123_456_789, G1)
    uid = e.unique_id
    assert uid == e.unique_id
    assert ULID.from_str(uid).milliseconds == (T0 + 123_456_789) // 1_000_000
    assert len({new_ulid(T0) for _ in range(1000)}) == 1000


def test_event_json_equals_the_json_of_its_proto() -> None:
    """The direct dict builder (used for HTTP streams) and the proto path (gRPC) must agree exactly."""
    import orjson

    from gatewayserver import jsonpb
    from gatewayserver.ttnpb import messages_pb2

    up = messages_pb2.GatewayUplinkMessage(band_id="EU_863_870")
    up.message.raw_payload = b"\x40"
    up.message.rx_metadata.add().snr = 7.2
    e = GS_UP_RECEIVE.new(T0 + 5, G1, up, ["gs:conn:x"])
    assert e.to_json() == orjson.dumps(jsonpb.to_dict(e.to_proto()))
    bare = GS_GATEWAY_CONNECT.new(T0, G2)
    assert bare.to_json() == orjson.dumps(jsonpb.to_dict(bare.to_proto()))


def test_data_factory_runs_once_and_only_when_read():
    calls: list[int] = []

    def build() -> messages_pb2.GatewayUplinkMessage:
        calls.append(1)
        return messages_pb2.GatewayUplinkMessage(band_id="EU_863_870")

    bus = EventBus()
    unread = GS_UP_RECEIVE.new(1_000, (("gtw1", None),), data_factory=build)
    bus.publish(unread)
    assert calls == []  # published and remembered, never read: never built
    read = GS_UP_RECEIVE.new(2_000, (("gtw1", None),), data_factory=build)
    bus.publish(read)
    assert read.data.band_id == "EU_863_870"
    assert read.to_proto().data.type_url.endswith("ttn.lorawan.v3.GatewayUplinkMessage")
    assert read.to_dict()["data"]["band_id"] == "EU_863_870"
    assert read.data is read.data
    assert calls == [1]


def test_name_patterns_use_re2_within_bounds() -> None:
    from gatewayserver.events.definitions import MAX_NAME_LENGTH, MAX_NAMES, MAX_PATTERNS

    # Linear time: Python's backtracking `re` would search each defined name for hours here.
    with pytest.raises(GsError) as info:
        resolve_names(["/(.|.|.)*X/"])
    assert info.value.full_name == "pkg/events:no_matching_events"
    for bad in ("/(a)\\1/", "/(?=gs)/", "/\ud800/", "/" + ".{1000}" * 28 + "/"):
        with pytest.raises(GsError) as info:
            resolve_names([bad])
        assert info.value.full_name == "pkg/events:invalid_regexp", bad
    with pytest.raises(GsError) as info:
        resolve_names(["gs.up.receive"] * (MAX_NAMES + 1))
    assert info.value.attributes == {"count": MAX_NAMES + 1, "limit": MAX_NAMES}
    with pytest.raises(GsError) as info:
        resolve_names(["/gs/"] * (MAX_PATTERNS + 1))
    assert info.value.full_name == "pkg/events:too_many_patterns"
    with pytest.raises(GsError) as info:
        resolve_names(["x" * (MAX_NAME_LENGTH + 1)])
    assert info.value.attributes == {"index": 0, "length": MAX_NAME_LENGTH + 1, "limit": MAX_NAME_LENGTH}
    assert resolve_names(["/^gs\\.(?P<dir>up|down)\\.\\pL+$/"]) == {
        "gs.up.receive", "gs.up.forward", "gs.up.drop", "gs.down.send"
    }
