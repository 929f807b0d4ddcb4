"""The internal API between workers: method names, frames, and errors across the process boundary.

Workers call each other over framed connections on a Unix socket (`spec.socket_path`, `transport.py`). The
methods carry the public API's own protobuf messages where one exists (a forwarded ScheduleDownlink is the
`DownlinkMessage` the Network Server sent), so nothing is translated twice; the few internal-only shapes (an event
stream request, the gateway list) are JSON. Method names have gRPC's `/service/Method` form, so the same handler
table can also be mounted as a gRPC service (`dispatch.grpc_handler`).

An error raised by the owner travels as the public API's own `ErrorDetails` and is rebuilt here as the same
`GsError`, so the caller of the receiving worker gets exactly what the owner said.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from gatewayserver.errors import UNAVAILABLE, GsError
from gatewayserver.events.event import Event
from gatewayserver.ttnpb import error_pb2, events_pb2, rights_pb2

SERVICE = "gs.worker.v1.Worker"
SCHEDULE_DOWNLINK = f"/{SERVICE}/ScheduleDownlink"
CONNECTION_STATS = f"/{SERVICE}/ConnectionStats"
CONNECTIONS = f"/{SERVICE}/Connections"
GATEWAY_INFO = f"/{SERVICE}/GatewayInfo"
EVENTS = f"/{SERVICE}/Events"
RELATED = f"/{SERVICE}/Related"
METRICS = f"/{SERVICE}/Metrics"
LINKS = f"/{SERVICE}/Links"  # JSON: gateways linked (GtwGs.LinkGateway) at the sender; see links.py

#: Event stream frames: one kind byte, then the payload.
FRAME_EVENT = b"\x01"  # + serialized ttn.lorawan.v3.Event
FRAME_HISTORY_END = b"\x02"  # the history part is complete; live events follow

NS = "pkg/gatewayserver/workers"


def identity(data: bytes) -> bytes:
    return data


def err_worker_unavailable(index: int, reason: str) -> GsError:
    """A peer that does not answer: the caller learns which worker and why, never waits past the deadline."""
    return GsError(
        NS, "worker_unavailable",
        "worker {worker} is not answering ({reason}); it owns the gateway, retry once it is back",
        code=UNAVAILABLE, attributes={"worker": index, "reason": reason},
    )


# --- errors across the boundary ----------------------------------------------------------------------------------

_MAX_DEPTH = 8


def _message_class(type_name: str) -> Callable[[], Message] | None:
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    except KeyError:
        return None
    return message_factory.GetMessageClass(descriptor)


def unpack_any(packed: any_pb2.Any) -> Message | None:
    """The message inside an `Any`, if its type is one this process knows (all ttnpb types are)."""
    cls = _message_class(packed.TypeName())
    if cls is None:
        return None
    message = cls()
    if not packed.Unpack(message):
        return None
    return message


def error_from_details(details: error_pb2.ErrorDetails, depth: int = 0) -> GsError:
    """The `GsError` an `ErrorDetails` describes: same identity, code, public attributes, cause chain and detail
    messages, so re-sending it gives the client what the owner sent."""
    cause = error_from_details(details.cause, depth + 1) if details.HasField("cause") and depth < _MAX_DEPTH else None
    attributes = {key: _plain(value) for key, value in details.attributes.items()}
    extra = [m for m in (unpack_any(item) for item in details.details) if m is not None]
    return GsError(
        details.namespace, details.name, details.message_format, code=details.code,
        attributes=attributes, cause=cause, details=extra,
    )


def _plain(value: Any) -> Any:
    """Struct values arrive as floats for numbers; give back ints where they were ints (message rendering)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- events across the boundary ----------------------------------------------------------------------------------


def event_from_proto(proto: events_pb2.Event) -> Event:
    """An `Event` rebuilt from the owner's `ttn.lorawan.v3.Event`: its proto is the one received (streamed again
    as is), its data is unpacked only if someone renders it as JSON."""
    gateway_ids = tuple(
        (ids.gateway_ids.gateway_id, bytes(ids.gateway_ids.eui) or None)
        for ids in proto.identifiers
        if ids.WhichOneof("ids") == "gateway_ids"
    )
    factory = None
    if proto.HasField("data"):
        packed = proto.data

        def factory() -> Message:
            message = unpack_any(packed)
            return message if message is not None else packed

    event = Event(
        proto.name,
        proto.time.seconds * 1_000_000_000 + proto.time.nanos,
        gateway_ids,
        None,
        tuple(proto.correlation_ids),
        origin=proto.origin,
        unique_id=proto.unique_id,
        visibility=tuple(rights_pb2.Right.Name(r) for r in proto.visibility.rights),
        data_factory=factory,
    )
    event._proto = proto
    return event


def event_frames(events: Sequence[Event]) -> list[bytes]:
    return [FRAME_EVENT + event.to_proto().SerializeToString() for event in events]


__all__ = [
    "CONNECTIONS",
    "CONNECTION_STATS",
    "EVENTS",
    "FRAME_EVENT",
    "FRAME_HISTORY_END",
    "GATEWAY_INFO",
    "LINKS",
    "METRICS",
    "RELATED",
    "SCHEDULE_DOWNLINK",
    "err_worker_unavailable",
    "error_from_details",
    "event_from_proto",
    "identity",
]
