"""Events across instances, the part without I/O: Redis stream entries, the publish queue, history selection and
the rules that deliver every event once.

Where an event comes from decides how a subscriber gets it, so that no event can arrive twice:

- this process's own events: from the local bus, live, as without Redis;
- the other workers of this instance (`--workers`): from their internal streams, as without Redis;
- every other instance's events: from the shared Redis stream, read by one task per process.

Every process also writes its own events to Redis. History (`tail`, `after`) is the union of the local history
(and the other workers') with the Redis history, without repeats (by unique ID), so the events of this
instance that had not reached Redis yet when the stream opened are still there. The Redis history is read at one
point of the shared stream, its `snapshot` (the stream's last ID then): a live entry at or before the snapshot
was part of that read, so it is dropped for this subscriber; an event already delivered live before the history
was complete is left out of the history.

Sans-I/O: values in, values out; the shell (`events.py`) reads Redis and the clock.
"""

from __future__ import annotations

import heapq
import struct
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gatewayserver.events.event import Event

#: The shared stream every instance appends to (the live feed, and the order of the total history bound).
STREAM_KEY = "gs:events"
#: Prefix of the per-gateway history streams: `gs:events:gw:<gateway id>`.
GATEWAY_KEY_PREFIX = "gs:events:gw:"

#: Stream entry fields. Small names: they are stored with every entry (twice: shared and per-gateway stream).
FIELD_GATEWAYS = b"g"  # the event's gateway IDs, space separated (the first one keys the per-gateway history)
FIELD_SOURCE = b"s"  # the instance that published it
FIELD_NAME = b"n"  # the event name, to filter without decoding
FIELD_EVENT = b"e"  # the serialized ttn.lorawan.v3.Event

#: One Redis stream ID, `milliseconds-sequence`, as a pair that compares in stream order.
StreamId = tuple[int, int]


def parse_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


# --- publishing ------------------------------------------------------------------------------------------------

#: The script that appends a batch. Per event: the shared stream (ID assigned by Redis), then the gateway's stream
#: with the same ID (IDs of the shared stream only grow, so it is newer than everything in the gateway's stream),
#: trimmed to about `per_gateway` and expiring `age_ms` after its last event. Then the total bound: the oldest
#: entries beyond `size` leave both streams. One round trip per batch, atomic, so a history read sees an event in
#: both streams or in neither.
PUBLISH_SCRIPT = """
local stream = KEYS[1]
local size = tonumber(ARGV[1])
local per_gateway = tonumber(ARGV[2])
local age_ms = tonumber(ARGV[3])
local prefix = ARGV[4]
local source = ARGV[5]
local blob = ARGV[6]
local pos = 1
local count = 0
while pos <= #blob do
  local glen, nlen, plen, at = struct.unpack('>HBI4', blob, pos)
  local gateways = string.sub(blob, at, at + glen - 1)
  local name = string.sub(blob, at + glen, at + glen + nlen - 1)
  local payload = string.sub(blob, at + glen + nlen, at + glen + nlen + plen - 1)
  pos = at + glen + nlen + plen
  local key = prefix .. string.match(gateways, '^[^ ]*')
  local id = redis.call('XADD', stream, '*', 'g', gateways, 's', source, 'n', name, 'e', payload)
  redis.pcall('XADD', key, 'MAXLEN', '~', per_gateway, id, 'g', gateways, 's', source, 'n', name, 'e', payload)
  redis.call('PEXPIRE', key, age_ms)
  count = count + 1
end
local excess = redis.call('XLEN', stream) - size
if excess > 0 then
  local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
  for _, entry in ipairs(old) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'g' then
        redis.call('XDEL', prefix .. string.match(fields[j+1], '^[^ ]*'), entry[1])
      end
    end
    redis.call('XDEL', stream, entry[1])
  end
end
redis.call('PEXPIRE', stream, age_ms)
return count
"""


def script_args(size: int, per_gateway: int, age_ms: int, source: str) -> list[Any]:
    """The script's ARGV but for the last one, the batch (`batch_record` of each event, concatenated)."""
    return [size, per_gateway or size, max(1, age_ms), GATEWAY_KEY_PREFIX, source]


_RECORD_HEAD = struct.Struct(">HBI")


def batch_record(event: Event) -> bytes | None:
    """One event in the script's batch argument: lengths (2, 1 and 4 bytes, big-endian), its gateway IDs (space
    separated), its name, its `ttn.lorawan.v3.Event`. One argument per batch instead of several per event: the
    Redis client's per-argument encoding was a third of the publishing cost. None when it does not fit."""
    gateways = " ".join(g for g, _ in event.gateway_ids).encode()
    name = event.name.encode()
    if not gateways or len(gateways) > 0xFFFF or len(name) > 0xFF:
        return None
    payload = encode_event(event)
    return _RECORD_HEAD.pack(len(gateways), len(name), len(payload)) + gateways + name + payload


def parse_batch(blob: bytes) -> list[tuple[str, str, bytes]]:
    """`batch_record`s back to (gateways, name, payload): what the script does, for the tests."""
    out = []
    pos = 0
    while pos < len(blob):
        glen, nlen, plen = _RECORD_HEAD.unpack_from(blob, pos)
        pos += _RECORD_HEAD.size
        gateways = blob[pos:pos + glen].decode()
        pos += glen
        name = blob[pos:pos + nlen].decode()
        pos += nlen
        out.append((gateways, name, blob[pos:pos + plen]))
        pos += plen
    return out


# --- the ttn.lorawan.v3.Event wire format, written directly ----------------------------------------------------------
# Building the message through the protobuf runtime (`Event.to_proto`) cost 15-35 µs an event, more than the
# whole uplink path; every event of an instance with Redis is serialized, so it is written here by hand (field
# numbers of lorawan-stack's events.proto; a test checks the result against the runtime's parse of it).


_SMALL = [bytes((i,)) for i in range(0x80)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    size = len(payload)
    return _SMALL[tag] + (_SMALL[size] if size < 0x80 else _varint(size)) + payload


_RIGHT_NUMBERS: dict[str, int] = {}


def _right_number(name: str) -> int:
    number = _RIGHT_NUMBERS.get(name)
    if number is None:
        from gatewayserver.ttnpb import rights_pb2

        number = _RIGHT_NUMBERS[name] = int(rights_pb2.Right.Value(name))
    return number


#: Encoded parts that repeat from event to event (per name: name and visibility; per gateway: its identifiers;
#: per origin), so an event costs the encoding of its time, correlation IDs, unique ID and data only. Bounded:
#: cleared when it grows past `_CACHE_LIMIT` entries (names and origins are few; gateways are many).
_CACHE: dict[Any, bytes] = {}
_CACHE_LIMIT = 20_000


def _cached(key: Any, make: Callable[[], bytes]) -> bytes:
    value = _CACHE.get(key)
    if value is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        value = _CACHE[key] = make()
    return value


def _name_part(event: Event) -> bytes:
    """Name and visibility: the parts every event of a name shares (fields may come in any order on the wire)."""
    rights = event.visibility
    visibility = _field(0x42, _field(0x0A, b"".join(_varint(_right_number(r)) for r in rights))) if rights else b""
    return _field(0x0A, event.name.encode()) + visibility


def _gateway_part(gateway_id: str, eui: bytes | None) -> bytes:
    ids = _field(0x0A, gateway_id.encode()) + (_field(0x12, eui) if eui else b"")
    return _field(0x1A, _field(0x22, ids))


def encode_event(event: Event) -> bytes:
    """`event` as a serialized `ttn.lorawan.v3.Event`, the same message `Event.to_proto()` builds."""
    proto = event._proto
    if proto is not None:  # built already (someone streamed it): the runtime's bytes are as good
        return bytes(proto.SerializeToString())
    head = _cached(event.name, lambda: _name_part(event))
    seconds, nanos = divmod(event.time_ns, 1_000_000_000)
    timestamp = (b"\x08" + _varint(seconds) if seconds else b"") + (b"\x10" + _varint(nanos) if nanos else b"")
    parts = [head, b"\x12" + _varint(len(timestamp)) + timestamp]
    for gateway_id, eui in event.gateway_ids:
        parts.append(_cached((gateway_id, eui), lambda g=gateway_id, e=eui: _gateway_part(g, e)))  # type: ignore[misc]
    data = event.data
    if data is not None:
        type_url = "type.googleapis.com/" + data.DESCRIPTOR.full_name
        packed = _field(0x0A, type_url.encode()) + _field(0x12, data.SerializeToString())
        parts.append(_field(0x22, packed))
    for cid in event.correlation_ids:
        parts.append(_field(0x2A, cid.encode()))
    origin = event.origin
    if origin:
        parts.append(_cached(("o", origin), lambda: _field(0x32, origin.encode())))
    parts.append(_field(0x62, event.unique_id.encode()))
    return b"".join(parts)


class PublishQueue:
    """Events waiting for the next write to Redis: bounded, so a slow or absent Redis costs dropped events (counted
    by reason), never memory. Events without a gateway are not shared (no stream can ask for them)."""

    __slots__ = ("_events", "limit", "dropped")

    def __init__(self, limit: int) -> None:
        self._events: deque[Event] = deque()
        self.limit = max(1, limit)
        #: reason -> events dropped (the shell turns these into `gs_redis_events_dropped_total`).
        self.dropped: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._events)

    def push(self, event: Event) -> bool:
        if not event.gateway_ids:
            return False
        if len(self._events) >= self.limit:
            self._drop("queue_full", 1)
            return False
        self._events.append(event)
        return True

    def take(self, max_items: int) -> list[Event]:
        events = self._events
        if len(events) <= max_items:
            batch = list(events)
            events.clear()
            return batch
        return [events.popleft() for _ in range(max_items)]

    def drop_all(self, reason: str) -> int:
        count = len(self._events)
        self._events.clear()
        if count:
            self._drop(reason, count)
        return count

    def drop(self, reason: str, count: int) -> None:
        if count:
            self._drop(reason, count)

    def _drop(self, reason: str, count: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


# --- reading -----------------------------------------------------------------------------------------------------

Entry = tuple[bytes, Mapping[bytes, bytes]]  # (stream ID, fields) as the Redis client returns them


def entry_gateways(fields: Mapping[bytes, bytes]) -> list[str]:
    return fields.get(FIELD_GATEWAYS, b"").decode().split(" ")


def decode_event(fields: Mapping[bytes, bytes]) -> Event | None:
    """The event of an entry, or None when the entry is not one (never raises: Redis is shared, not trusted)."""
    from gatewayserver.ttnpb import events_pb2
    from gatewayserver.workers.wire import event_from_proto

    try:
        event = event_from_proto(events_pb2.Event.FromString(fields[FIELD_EVENT]))
    except Exception:  # a corrupt or foreign entry: skipped, counted by the caller
        return None
    return event if event.gateway_ids else None


def select_history(
    per_gateway: Iterable[Sequence[Entry]],
    accepts: Callable[[Event, str], bool],
    *,
    tail: int,
    after_ns: int | None,
    oldest_ns: int | None,
) -> tuple[list[Event], int]:
    """The matching events of the gateways' streams (each newest first, as XREVRANGE returns them) in time order:
    after `after_ns`, not older than `oldest_ns`, the last `tail` (0: all). Returns the events and how many entries
    could not be decoded.

    Time order, not the streams' order: instances write their events in batches (up to 50 ms apart), so an
    instance's event can land in Redis after a newer one of another instance, and `merge_histories` merges sorted
    sources. In stream order, two instances answering the same `tail` disagreed around a gateway's move: the
    one with the late event in its own history put it first, the other last."""
    picked: list[tuple[tuple[int, StreamId], Event]] = []
    bad = 0
    seen: set[bytes] = set()
    for entries in per_gateway:
        for raw_id, fields in entries:
            if raw_id in seen:  # an event naming several gateways is stored under its first one only; be safe
                continue
            seen.add(raw_id)
            event = decode_event(fields)
            if event is None:
                bad += 1
                continue
            if after_ns is not None and event.time_ns <= after_ns:
                continue
            if oldest_ns is not None and event.time_ns < oldest_ns:
                continue
            if any(accepts(event, gid) for gid, _ in event.gateway_ids):
                picked.append(((event.time_ns, parse_id(raw_id)), event))
    picked.sort(key=lambda pair: pair[0])
    events = [event for _, event in picked]
    if tail > 0:
        events = events[-tail:]
    return events, bad


def merge_histories(histories: Sequence[Sequence[Event]], already_delivered: set[str], tail: int) -> list[Event]:
    """One history out of several sources (local, other workers, Redis), each in its own order: merged by time,
    every unique ID once, leaving out what the subscriber already got live, and only the last `tail` (0: all)."""
    out: list[Event] = []
    seen = set(already_delivered)
    for event in heapq.merge(*histories, key=_time):
        uid = event.unique_id
        if uid in seen:
            continue
        seen.add(uid)
        out.append(event)
    if tail > 0:
        out = out[-tail:]
    return out


def _time(event: Event) -> int:
    return event.time_ns


def live_wanted(entry_id: StreamId, snapshot: StreamId | None) -> bool:
    """A live entry from Redis reaches a subscriber only if it is newer than the subscriber's history snapshot."""
    return snapshot is None or entry_id > snapshot


def history_count(tail: int, per_gateway: int) -> int:
    """How many entries to read from each gateway's stream: the per-gateway bound, fewer with a smaller `tail`."""
    bound = per_gateway if per_gateway > 0 else 0
    if tail > 0:
        return min(tail, bound) if bound else tail
    return bound


__all__ = [
    "FIELD_EVENT",
    "FIELD_GATEWAYS",
    "FIELD_NAME",
    "FIELD_SOURCE",
    "GATEWAY_KEY_PREFIX",
    "PUBLISH_SCRIPT",
    "STREAM_KEY",
    "PublishQueue",
    "StreamId",
    "decode_event",
    "entry_gateways",
    "batch_record",
    "encode_event",
    "parse_batch",
    "format_id",
    "history_count",
    "live_wanted",
    "merge_histories",
    "parse_id",
    "script_args",
    "select_history",
]
