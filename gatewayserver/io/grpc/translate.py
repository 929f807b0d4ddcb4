"""`GtwGs.LinkGateway` messages to and from the core, sans-I/O.

A gateway on a streaming link already speaks `ttn.lorawan.v3`, so translating is mostly checking and filling in
what only the server may say: which gateway received the uplink (the link's identity, not whatever the message
claims), when the server received it, the registry's public location and downlink path constraint, and no uplink
token or correlation ids of the gateway's own making. Every input is hostile: each `GatewayUp` does bounded work
(`MAX_UPLINKS` uplinks, `MAX_ANTENNAS` antennas each, bounded status and acknowledgment sizes), and what is refused
comes back as a `Dropped` with a bounded reason for the shell to count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from ...registry import GatewayEntry
from ...ttnpb import enums_pb2, gateway_pb2, gatewayserver_pb2, identifiers_pb2, messages_pb2, metadata_pb2

MAX_UPLINKS = 32
MAX_ANTENNAS = 16
MAX_PAYLOAD = 256
MAX_STATUS_BYTES = 16 * 1024
MAX_CORRELATION_IDS = 32
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Dropped:
    """Something of a `GatewayUp` that goes no further: `reason` is a metric label, `detail` for the log."""

    reason: str
    detail: str = ""


def _best_rssi(uplink: messages_pb2.UplinkMessage) -> float:
    return max((md.rssi for md in uplink.rx_metadata), default=float("-inf"))


def _check_uplink(uplink: messages_pb2.UplinkMessage) -> Dropped | None:
    size = len(uplink.raw_payload)
    if not 1 <= size <= MAX_PAYLOAD:
        return Dropped("payload", f"{size} bytes")
    if not uplink.settings.frequency:
        return Dropped("frequency", "no frequency")
    data_rate = uplink.settings.data_rate
    kind = data_rate.WhichOneof("modulation")
    if kind == "lora":
        if not (5 <= data_rate.lora.spreading_factor <= 12 and data_rate.lora.bandwidth):
            return Dropped("data_rate", "LoRa spreading factor or bandwidth out of range")
    elif kind == "fsk":
        if not data_rate.fsk.bit_rate:
            return Dropped("data_rate", "FSK without bit rate")
    elif kind is None:
        return Dropped("data_rate", "no data rate")
    if not 1 <= len(uplink.rx_metadata) <= MAX_ANTENNAS:
        return Dropped("malformed", f"{len(uplink.rx_metadata)} rx_metadata entries")
    return None


def _registry_location(entry: GatewayEntry) -> metadata_pb2.Location | None:
    loc = entry.location
    if loc is None or not entry.location_public:
        return None
    location = metadata_pb2.Location(latitude=loc.latitude, longitude=loc.longitude, altitude=loc.altitude)
    if loc.accuracy:
        location.accuracy = loc.accuracy
    location.source = metadata_pb2.SOURCE_REGISTRY
    return location


def uplinks(
    up: gatewayserver_pb2.GatewayUp,
    ids: identifiers_pb2.GatewayIdentifiers,
    entry: GatewayEntry,
    received_at_ns: int,
    drops: list[Dropped],
) -> list[messages_pb2.UplinkMessage]:
    """The uplinks of one `GatewayUp`, checked, deduplicated by best RSSI, stamped with the server receive time.

    Each refused or duplicate uplink is appended to `drops`. The messages returned are new ones, not `up`'s.
    """
    messages = up.uplink_messages
    if len(messages) > MAX_UPLINKS:
        drops.extend(Dropped("too_many", f"{len(messages)} uplinks in one message") for _ in messages[MAX_UPLINKS:])
        messages = messages[:MAX_UPLINKS]  # type: ignore[assignment]
    best: dict[bytes, messages_pb2.UplinkMessage] = {}
    for uplink in messages:
        problem = _check_uplink(uplink)
        if problem is not None:
            drops.append(problem)
            continue
        seen = best.get(uplink.raw_payload)
        if seen is None:
            best[uplink.raw_payload] = uplink
        elif _best_rssi(uplink) > _best_rssi(seen):
            best[uplink.raw_payload] = uplink
            drops.append(Dropped("duplicate", "weaker copy replaced"))
        else:
            drops.append(Dropped("duplicate"))
    out = []
    location = _registry_location(entry)
    seconds, nanos = divmod(received_at_ns, _NS)
    for uplink in best.values():
        msg = messages_pb2.UplinkMessage()
        msg.raw_payload = uplink.raw_payload
        msg.settings.CopyFrom(uplink.settings)
        if uplink.HasField("crc_status"):
            msg.crc_status.CopyFrom(uplink.crc_status)
        msg.received_at.seconds, msg.received_at.nanos = seconds, nanos
        for source in uplink.rx_metadata:
            md = msg.rx_metadata.add()
            md.CopyFrom(source)
            md.gateway_ids.CopyFrom(ids)
            md.ClearField("uplink_token")  # only the server issues tokens
            md.received_at.seconds, md.received_at.nanos = seconds, nanos
            if entry.downlink_path_constraint:
                md.downlink_path_constraint = cast(enums_pb2.DownlinkPathConstraint, entry.downlink_path_constraint)
            if location is not None and not md.HasField("location"):
                md.location.CopyFrom(location)
        if not msg.settings.timestamp:
            msg.settings.timestamp = msg.rx_metadata[0].timestamp
        out.append(msg)
    return out


def status(up: gatewayserver_pb2.GatewayUp) -> gateway_pb2.GatewayStatus | Dropped | None:
    """The gateway status of a `GatewayUp`, if any; refused when larger than any real status."""
    if not up.HasField("gateway_status"):
        return None
    found = up.gateway_status
    if found.ByteSize() > MAX_STATUS_BYTES:
        return Dropped("status_too_large", f"{found.ByteSize()} bytes")
    result = gateway_pb2.GatewayStatus()
    result.CopyFrom(found)
    return result


def tx_acknowledgment(up: gatewayserver_pb2.GatewayUp) -> messages_pb2.TxAcknowledgment | Dropped | None:
    """The TX acknowledgment of a `GatewayUp`, if any; only its correlation ids and result matter."""
    if not up.HasField("tx_acknowledgment"):
        return None
    found = up.tx_acknowledgment
    if len(found.correlation_ids) > MAX_CORRELATION_IDS:
        return Dropped("tx_ack_malformed", f"{len(found.correlation_ids)} correlation ids")
    if found.result not in messages_pb2.TxAcknowledgment.Result.values():
        return Dropped("tx_ack_malformed", f"result {found.result}")
    return messages_pb2.TxAcknowledgment(correlation_ids=found.correlation_ids, result=found.result)


def gateway_down(message: messages_pb2.DownlinkMessage) -> gatewayserver_pb2.GatewayDown:
    """What a scheduled downlink looks like on the link: the message as scheduled, correlation ids included."""
    down = gatewayserver_pb2.GatewayDown()
    down.downlink_message.CopyFrom(message)
    return down
