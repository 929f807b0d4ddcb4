"""The event object that travels over the bus.

Publishing happens on the uplink hot path, so an `Event` only holds references to what the emitter already has.
Everything a reader needs — the ULID, the `ttn.lorawan.v3.Event` proto, its JSON — is computed on first use and
cached on the object, so one event fanned out to a hundred subscribers is converted once, and an event nobody
reads is never converted at all.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # pragma: no cover
    from google.protobuf.message import Message

#: The host name every event carries as `origin`, like the reference does.
ORIGIN = socket.gethostname()

# Uniqueness, not secrecy, is what an event id needs, so the fast Mersenne Twister is enough.
_random_bits = random.getrandbits
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of digits, so a 130-bit ULID takes 13 table look-ups instead of 26 shifts.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]

GatewayRef = tuple[str, "bytes | None"]


def new_ulid(time_ns: int) -> str:
    """A ULID (48-bit milliseconds + 80 random bits, Crockford base32) for `time_ns`."""
    value = ((time_ns // 1_000_000) & 0xFFFF_FFFF_FFFF) << 80 | _random_bits(80)
    pairs = _PAIRS
    return "".join(
        [pairs[(value >> shift) & 0x3FF] for shift in (120, 110, 100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 0)]
    )


class Event:
    """One event: a name, a time, the gateways it concerns and optional protobuf data.

    `gateway_ids` is a tuple of `(gateway_id, eui bytes or None)`. `data` must not be mutated after publishing;
    the proto and JSON forms are cached. `data_factory` instead of `data` defers building the data message to its
    first reader (most events are never read): the uplink path passes one so that the `GatewayUplinkMessage`
    copy of every uplink is only made for the events someone streams or looks up.
    """

    __slots__ = (
        "name",
        "time_ns",
        "gateway_ids",
        "_data",
        "_data_factory",
        "correlation_ids",
        "origin",
        "_unique_id",
        "_proto",
        "_dict",
        "_json",
        "_visibility",
    )

    def __init__(
        self,
        name: str,
        time_ns: int,
        gateway_ids: tuple[GatewayRef, ...],
        data: Message | None = None,
        correlation_ids: Sequence[str] = (),
        *,
        origin: str = ORIGIN,
        unique_id: str | None = None,
        visibility: tuple[str, ...] | None = None,
        data_factory: Callable[[], Message] | None = None,
    ) -> None:
        self.name = name
        self.time_ns = time_ns
        self.gateway_ids = gateway_ids
        self._data = data
        self._data_factory = data_factory
        self.correlation_ids = correlation_ids
        self.origin = origin
        self._unique_id = unique_id
        self._proto: Any = None
        self._dict: dict[str, Any] | None = None
        self._json: bytes | None = None
        self._visibility = visibility

    def __repr__(self) -> str:
        ids = ",".join(g for g, _ in self.gateway_ids)
        return f"Event({self.name!r}, {self.time_ns}, [{ids}])"

    @property
    def data(self) -> Message | None:
        """The event's data message; built by the factory on first read, then shared by every reader."""
        factory = self._data_factory
        if factory is not None:
            self._data_factory = None
            self._data = factory()
        return self._data

    @property
    def unique_id(self) -> str:
        """Assigned on first read; stable afterwards because every reader shares this object."""
        uid = self._unique_id
        if uid is None:
            uid = self._unique_id = new_ulid(self.time_ns)
        return uid

    @property
    def visibility(self) -> tuple[str, ...]:
        """Right names that make this event visible, from its definition unless given explicitly."""
        vis = self._visibility
        if vis is None:
            from .definitions import visibility_of

            vis = self._visibility = visibility_of(self.name)
        return vis

    def to_proto(self) -> Any:
        """The `ttn.lorawan.v3.Event` message, built once."""
        proto = self._proto
        if proto is None:
            proto = self._proto = _build_proto(self)
        return proto

    def to_dict(self) -> dict[str, Any]:
        """The reference JSON object (as Python values), built once."""
        d = self._dict
        if d is None:
            d = self._dict = _build_dict(self)
        return d

    def to_json(self) -> bytes:
        """The reference JSON encoding, built once and shared by every HTTP subscriber."""
        j = self._json
        if j is None:
            import orjson

            j = self._json = orjson.dumps(self.to_dict())
        return j


def _build_proto(event: Event) -> Any:
    from google.protobuf import any_pb2, timestamp_pb2

    from gatewayserver.ttnpb import events_pb2, identifiers_pb2, rights_pb2

    proto = events_pb2.Event(
        name=event.name,
        time=timestamp_pb2.Timestamp(seconds=event.time_ns // 1_000_000_000, nanos=event.time_ns % 1_000_000_000),
        correlation_ids=list(event.correlation_ids),
        origin=event.origin,
        unique_id=event.unique_id,
    )
    for gateway_id, eui in event.gateway_ids:
        ids = identifiers_pb2.GatewayIdentifiers(gateway_id=gateway_id)
        if eui:
            ids.eui = eui
        proto.identifiers.add().gateway_ids.CopyFrom(ids)
    data = event.data
    if data is not None:
        packed = any_pb2.Any()
        packed.Pack(data)
        proto.data.CopyFrom(packed)
    rights = event.visibility
    if rights:
        # Right.Value returns a plain int in the stubs; it is a Right by construction.
        proto.visibility.rights.extend(cast(rights_pb2.Right, rights_pb2.Right.Value(r)) for r in rights)
    return proto


def _build_dict(event: Event) -> dict[str, Any]:
    from gatewayserver import jsonpb

    d: dict[str, Any] = {
        "name": event.name,
        "time": jsonpb.format_timestamp_ns(event.time_ns),
    }
    if event.gateway_ids:
        idents = []
        for gateway_id, eui in event.gateway_ids:
            g: dict[str, Any] = {"gateway_id": gateway_id}
            if eui:
                g["eui"] = eui.hex().upper()
            idents.append({"gateway_ids": g})
        d["identifiers"] = idents
    data = event.data
    if data is not None:
        d["data"] = jsonpb.any_to_dict(data)
    if event.correlation_ids:
        d["correlation_ids"] = list(event.correlation_ids)
    if event.origin:
        d["origin"] = event.origin
    if event.visibility:
        d["visibility"] = {"rights": list(event.visibility)}
    d["unique_id"] = event.unique_id
    return d
