"""Semtech UDP datagram framing (protocol versions 1 and 2), sans-I/O.

Every datagram starts with `version(1) token(2) type(1)`; the gateway-to-server types then carry the gateway
EUI (8 bytes) and, for PUSH_DATA and TX_ACK, a JSON body. Parsing here only frames: the JSON body is left as
bytes so the caller can acknowledge first and decode with orjson afterwards.

Rejections raise `PacketError` whose `reason` is a short, fixed string meant for a metric label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

PUSH_DATA: Final = 0x00
PUSH_ACK: Final = 0x01
PULL_DATA: Final = 0x02
PULL_RESP: Final = 0x03
PULL_ACK: Final = 0x04
TX_ACK: Final = 0x05

TYPE_NAMES: Final[dict[int, str]] = {
    PUSH_DATA: "push_data",
    PUSH_ACK: "push_ack",
    PULL_DATA: "pull_data",
    PULL_RESP: "pull_resp",
    PULL_ACK: "pull_ack",
    TX_ACK: "tx_ack",
}

VERSIONS: Final = frozenset((1, 2))

_HEADER = 4
_EUI_END = 12

# TxAcknowledgment.Result numbers (ttn.lorawan.v3); duplicated here so the codec needs no protobuf import.
SUCCESS: Final = 0
UNKNOWN_ERROR: Final = 1
TOO_LATE: Final = 2
TOO_EARLY: Final = 3
COLLISION_PACKET: Final = 4
COLLISION_BEACON: Final = 5
TX_FREQ: Final = 6
TX_POWER: Final = 7
GPS_UNLOCKED: Final = 8

TX_ACK_RESULTS: Final[dict[str, int]] = {
    "NONE": SUCCESS,
    "TOO_LATE": TOO_LATE,
    "TOO_EARLY": TOO_EARLY,
    "COLLISION_PACKET": COLLISION_PACKET,
    "COLLISION_BEACON": COLLISION_BEACON,
    "TX_FREQ": TX_FREQ,
    "TX_POWER": TX_POWER,
    "GPS_UNLOCKED": GPS_UNLOCKED,
}


class PacketError(ValueError):
    """A datagram or body that cannot be accepted. `reason` is bounded and safe to use as a metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(slots=True, frozen=True)
class Datagram:
    """One framed datagram. `eui` is None for the server-to-gateway types, which carry none."""

    version: int
    token: bytes
    type: int
    eui: bytes | None
    body: bytes


def parse_datagram(data: bytes) -> Datagram:
    """Frame a datagram sent by a gateway (PUSH_DATA, PULL_DATA, TX_ACK).

    Trailing bytes after a PULL_DATA are tolerated and returned as `body` (some forwarders pad). An empty
    PUSH_DATA body is refused: there is nothing to acknowledge it for.
    """
    n = len(data)
    if n < _HEADER:
        raise PacketError("too_short", f"{n} bytes")
    version = data[0]
    if version != 2 and version != 1:
        raise PacketError("unknown_version", str(version))
    kind = data[3]
    if kind == PUSH_DATA or kind == PULL_DATA:
        pass
    elif kind == TX_ACK:
        if version == 1:
            raise PacketError("unknown_type", "TX_ACK does not exist in protocol version 1")
    elif kind == PUSH_ACK or kind == PULL_RESP or kind == PULL_ACK:
        raise PacketError("wrong_direction", TYPE_NAMES[kind])
    else:
        raise PacketError("unknown_type", str(kind))
    if n < _EUI_END:
        raise PacketError("no_eui", f"{n} bytes")
    if kind == PUSH_DATA and n == _EUI_END:
        raise PacketError("no_body")
    return Datagram(version, data[1:3], kind, data[4:_EUI_END], data[_EUI_END:])


def parse_server_datagram(data: bytes) -> Datagram:
    """Frame a datagram sent by a server (PUSH_ACK, PULL_ACK, PULL_RESP): the gateway side, for the simulator."""
    n = len(data)
    if n < _HEADER:
        raise PacketError("too_short", f"{n} bytes")
    version = data[0]
    if version != 2 and version != 1:
        raise PacketError("unknown_version", str(version))
    kind = data[3]
    if kind == PUSH_ACK or kind == PULL_ACK:
        return Datagram(version, data[1:3], kind, None, data[_HEADER:])
    if kind == PULL_RESP:
        if n == _HEADER:
            raise PacketError("no_body")
        return Datagram(version, data[1:3], kind, None, data[_HEADER:])
    if kind in TYPE_NAMES:
        raise PacketError("wrong_direction", TYPE_NAMES[kind])
    raise PacketError("unknown_type", str(kind))


def _check(version: int, token: bytes) -> None:
    if version != 2 and version != 1:
        raise ValueError(f"protocol version must be 1 or 2, not {version!r}")
    if len(token) != 2:
        raise ValueError(f"token must be 2 bytes, not {len(token)}")


def _check_eui(eui: bytes) -> None:
    if len(eui) != 8:
        raise ValueError(f"EUI must be 8 bytes, not {len(eui)}")


def encode_ack(version: int, token: bytes, type: int) -> bytes:
    """PUSH_ACK or PULL_ACK echoing the gateway's version and token."""
    if type != PUSH_ACK and type != PULL_ACK:
        raise ValueError(f"not an acknowledgement type: {type!r}")
    _check(version, token)
    return bytes((version, token[0], token[1], type))


def encode_pull_resp(version: int, token: bytes, body: bytes) -> bytes:
    """PULL_RESP carrying a `{"txpk": ...}` body. Protocol v1 forwarders ignore the token; it is written as given."""
    _check(version, token)
    return bytes((version, token[0], token[1], PULL_RESP)) + body


def encode_push_data(version: int, token: bytes, eui: bytes, body: bytes) -> bytes:
    """Gateway side: PUSH_DATA with a JSON body (`{"rxpk": [...], "stat": {...}}`)."""
    _check(version, token)
    _check_eui(eui)
    return bytes((version, token[0], token[1], PUSH_DATA)) + eui + body


def encode_pull_data(version: int, token: bytes, eui: bytes) -> bytes:
    """Gateway side: PULL_DATA keepalive, which also opens the downlink path."""
    _check(version, token)
    _check_eui(eui)
    return bytes((version, token[0], token[1], PULL_DATA)) + eui


def encode_tx_ack(version: int, token: bytes, eui: bytes, body: bytes = b"") -> bytes:
    """Gateway side: TX_ACK (protocol v2 only) echoing the PULL_RESP token; an empty body means success."""
    _check(version, token)
    if version == 1:
        raise ValueError("TX_ACK does not exist in protocol version 1")
    _check_eui(eui)
    return bytes((version, token[0], token[1], TX_ACK)) + eui + body


@dataclass(slots=True, frozen=True)
class TxAckResult:
    """Outcome of a TX_ACK.

    `result` is a `TxAcknowledgment.Result` number. `error` is the name the gateway sent (None on success),
    so an unknown name mapped to UNKNOWN_ERROR stays visible in logs. `warning`/`value` carry an accepted
    warning such as `TX_POWER` with the power actually used.
    """

    result: int
    error: str | None = None
    warning: str | None = None
    value: int | float | str | None = None

    @property
    def ok(self) -> bool:
        return self.result == SUCCESS


TX_ACK_SUCCESS: Final = TxAckResult(SUCCESS)

_TRAILING = b"\x00 \t\r\n"


def parse_tx_ack(body: bytes) -> TxAckResult:
    """Decode a TX_ACK body.

    Accepted: empty (or only NUL/whitespace) = success; `{"txpk_ack":{"error":"NONE"}}` and an empty or absent
    error = success; `{"txpk_ack":{"warn":"TX_POWER","value":14}}` = success with a warning; any other error
    name maps to its `TxAcknowledgment.Result`, unknown names to UNKNOWN_ERROR. A body that is not JSON, or
    JSON of the wrong shape, raises `PacketError("bad_json")`.
    """
    body = body.rstrip(_TRAILING)
    if not body:
        return TX_ACK_SUCCESS
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PacketError("bad_json", "TX_ACK body is not JSON") from exc
    if not isinstance(doc, dict):
        raise PacketError("bad_json", "TX_ACK body is not an object")
    ack = doc.get("txpk_ack")
    if ack is None:
        return TX_ACK_SUCCESS
    if not isinstance(ack, dict):
        raise PacketError("bad_json", "txpk_ack is not an object")
    value = ack.get("value")
    if not isinstance(value, (int, float, str)) or isinstance(value, bool):
        value = None
    warning = ack.get("warn")
    if not isinstance(warning, str) or not warning or warning.upper() == "NONE":
        warning = None
    error = ack.get("error")
    if error is None or error == "":
        result = SUCCESS
        error = None
    elif isinstance(error, str):
        name = error.strip().upper()
        result = TX_ACK_RESULTS.get(name, UNKNOWN_ERROR)
        if result == SUCCESS:
            error = None
    else:
        result = UNKNOWN_ERROR
        error = str(error)
    if result == SUCCESS and warning is None and value is None:
        return TX_ACK_SUCCESS
    return TxAckResult(result, error, warning, value)


def encode_tx_ack_body(error: str | None = None, *, warning: str | None = None, value: int | None = None) -> bytes:
    """Gateway side: a TX_ACK JSON body as the reference forwarder writes it (empty for plain success)."""
    if error is None and warning is None:
        return b""
    ack: dict[str, object] = {}
    if error is not None:
        ack["error"] = error
    if warning is not None:
        ack["warn"] = warning
        if value is not None:
            ack["value"] = value
    return orjson.dumps({"txpk_ack": ack})
