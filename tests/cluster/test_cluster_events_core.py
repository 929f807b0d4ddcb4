"""The sans-I/O rules of events across instances (`gatewayserver.cluster.events_core`), driven by explicit values."""

from __future__ import annotations

from gatewayserver.cluster.events_core import (
    FIELD_EVENT,
    FIELD_GATEWAYS,
    FIELD_NAME,
    FIELD_SOURCE,
    PublishQueue,
    batch_record,
    encode_event,
    format_id,
    history_count,
    live_wanted,
    merge_histories,
    parse_batch,
    parse_id,
    select_history,
)
from gatewayserver.events.event import Event
from gatewayserver.ttnpb import events_pb2, messages_pb2


def ev(gateway: str, time_ns: int, uid: str, name: str = "gs.up.receive") -> Event:
    return Event(name, time_ns, ((gateway, None),), unique_id=uid)


def entry(stream_id: str, event: Event, source: str = "gs-a") -> tuple[bytes, dict[bytes, bytes]]:
    return stream_id.encode(), {
        FIELD_GATEWAYS: b" ".join(g.encode() for g, _ in event.gateway_ids), FIELD_SOURCE: source.encode(),
        FIELD_NAME: event.name.encode(), FIELD_EVENT: encode_event(event),
    }


def everything(event: Event, gateway_id: str) -> bool:
    return True


def test_stream_ids_compare_in_stream_order() -> None:
    assert parse_id(b"1700000000000-0") < parse_id("1700000000000-1") < parse_id("1700000000001-0")
    assert parse_id("5") == (5, 0)
    assert format_id(parse_id(b"12-34")) == "12-34"


def test_publish_queue_is_bounded_and_counts_drops_by_reason() -> None:
    queue = PublishQueue(3)
    events = [ev("gw-1", i, f"u{i}") for i in range(5)]
    assert [queue.push(e) for e in events] == [True, True, True, False, False]
    assert queue.dropped == {"queue_full": 2}
    assert queue.take(2) == events[:2]
    assert queue.push(ev("gw-1", 9, "u9"))
    assert queue.drop_all("redis_down") == 2
    assert len(queue) == 0
    queue.drop("write_failed", 4)
    assert queue.dropped == {"queue_full": 2, "redis_down": 2, "write_failed": 4}


def test_publish_queue_skips_events_without_a_gateway() -> None:
    queue = PublishQueue(3)
    assert not queue.push(Event("events.stream.start", 1, ()))
    assert len(queue) == 0 and queue.dropped == {}


def test_batch_records_carry_gateways_name_and_the_event() -> None:
    one = Event("gs.up.receive", 7, (("gw-1", b"\x01" * 8), ("gw-2", None)), unique_id="U1")
    two = Event("gs.down.send", 8, (("gw-3", None),), unique_id="U2")
    records = [batch_record(one), batch_record(two)]
    assert None not in records
    parsed = parse_batch(b"".join(r for r in records if r is not None))
    assert [(g, n) for g, n, _ in parsed] == [("gw-1 gw-2", "gs.up.receive"), ("gw-3", "gs.down.send")]
    assert events_pb2.Event.FromString(parsed[0][2]).unique_id == "U1"
    assert batch_record(Event("x" * 300, 1, (("gw-1", None),))) is None  # a name too long for its length byte


def test_hand_encoded_event_is_the_runtimes_message() -> None:
    data = messages_pb2.GatewayUplinkMessage(band_id="EU_863_870")
    data.message.raw_payload = bytes(range(200))  # lengths over 127: multi-byte varints
    cases = [
        Event("gs.up.receive", 1_700_000_000_123_456_789, (("gw-1", bytes.fromhex("0102030405060708")),), data,
              ("gs:conn:01ABC", "gs:uplink:01DEF"), unique_id="01ULID"),
        Event("gs.gateway.connect", 5, (("gw-2", None), ("gw-3", None)), origin="", unique_id="X"),
        Event("events.stream.start", 0, (("gw-4", None),), visibility=(), unique_id="Y"),
        Event("gs.status.receive", 2_000_000_000, (("gw-5", None),), visibility=("RIGHT_ALL", "RIGHT_GATEWAY_ALL")),
    ]
    for event in cases:
        mine = events_pb2.Event.FromString(encode_event(event))
        assert mine == event.to_proto()
        assert encode_event(event) == event.to_proto().SerializeToString()  # built once: the runtime's bytes


def test_history_is_in_time_order_filtered_and_cut_to_the_tail() -> None:
    # Two gateways' streams, newest first as XREVRANGE returns them.
    gw1 = [entry("30-0", ev("gw-1", 300, "c")), entry("10-0", ev("gw-1", 100, "a"))]
    gw2 = [entry("20-0", ev("gw-2", 200, "b")), entry("5-0", ev("gw-2", 50, "old"))]
    events, bad = select_history([gw1, gw2], everything, tail=0, after_ns=None, oldest_ns=60)
    assert [e.unique_id for e in events] == ["a", "b", "c"] and bad == 0  # "old" is past the age
    events, _ = select_history([gw1, gw2], everything, tail=2, after_ns=None, oldest_ns=None)
    assert [e.unique_id for e in events] == ["b", "c"]
    events, _ = select_history([gw1, gw2], everything, tail=0, after_ns=100, oldest_ns=None)
    assert [e.unique_id for e in events] == ["b", "c"]  # strictly after


def test_an_event_written_late_by_its_instance_takes_its_place_by_time() -> None:
    # Instance B's disconnect (time 250) reached Redis in B's next batch, after C's connect (260) and uplink (270):
    # the history must be sorted by time as `merge_histories` expects, whatever the order the batches landed in.
    gw = [entry("40-0", ev("gw-1", 250, "b-disconnect")), entry("31-0", ev("gw-1", 270, "c-up")),
          entry("30-0", ev("gw-1", 260, "c-connect")), entry("10-0", ev("gw-1", 100, "a"))]
    events, _ = select_history([gw], everything, tail=0, after_ns=None, oldest_ns=None)
    assert [e.unique_id for e in events] == ["a", "b-disconnect", "c-connect", "c-up"]
    events, _ = select_history([gw], everything, tail=2, after_ns=None, oldest_ns=None)
    assert [e.unique_id for e in events] == ["c-connect", "c-up"]
    local = [ev("gw-1", 250, "b-disconnect")]  # the same event from the local history of B
    merged = merge_histories([local, select_history([gw], everything, tail=0, after_ns=None, oldest_ns=None)[0]],
                             already_delivered=set(), tail=3)
    assert [e.unique_id for e in merged] == ["b-disconnect", "c-connect", "c-up"]


def test_history_applies_the_subscribers_filter_and_counts_undecodable_entries() -> None:
    gw1 = [
        entry("3-0", ev("gw-1", 3, "keep")),
        entry("2-0", ev("gw-1", 2, "skip", name="gs.status.receive")),
        (b"1-0", {FIELD_GATEWAYS: b"gw-1", FIELD_EVENT: b"\xff\xff not a proto"}),
    ]
    events, bad = select_history(
        [gw1], lambda e, g: e.name == "gs.up.receive", tail=0, after_ns=None, oldest_ns=None
    )
    assert [e.unique_id for e in events] == ["keep"] and bad == 1


def test_merged_history_has_each_event_once_and_leaves_out_what_came_live() -> None:
    local = [ev("gw-1", 10, "a"), ev("gw-1", 30, "c")]
    redis = [ev("gw-1", 10, "a"), ev("gw-2", 20, "b"), ev("gw-1", 30, "c"), ev("gw-1", 40, "d")]
    merged = merge_histories([local, redis], already_delivered=set(), tail=0)
    assert [e.unique_id for e in merged] == ["a", "b", "c", "d"]
    merged = merge_histories([local, redis], already_delivered={"d"}, tail=0)
    assert [e.unique_id for e in merged] == ["a", "b", "c"]
    merged = merge_histories([local, redis], already_delivered=set(), tail=2)
    assert [e.unique_id for e in merged] == ["c", "d"]


def test_a_live_entry_at_or_before_the_snapshot_was_in_the_history() -> None:
    snapshot = (1000, 3)
    assert not live_wanted((1000, 3), snapshot)
    assert not live_wanted((999, 9), snapshot)
    assert live_wanted((1000, 4), snapshot)
    assert live_wanted((1, 0), None)  # no history was read from Redis: every live entry is new


def test_history_count_per_gateway() -> None:
    assert history_count(tail=0, per_gateway=1000) == 1000
    assert history_count(tail=10, per_gateway=1000) == 10
    assert history_count(tail=5000, per_gateway=1000) == 1000
    assert history_count(tail=7, per_gateway=0) == 7
    assert history_count(tail=0, per_gateway=0) == 0  # no bound: all
