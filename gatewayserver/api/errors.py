"""`GsError` → the reference's error shapes on the wire.

gRPC: a status with the code, the `error:<namespace>:<name> (<message>)` text and, in the
`grpc-status-details-bin` trailer, a `google.rpc.Status` whose details hold one `ttn.lorawan.v3.ErrorDetails`.
HTTP: grpc-gateway's body `{"code", "message", "details": [{"@type": ...ErrorDetails, ...}]}` with the mapped
HTTP status.

`google.rpc.Status` is three fields (code, message, repeated Any), encoded by hand below. `grpcio-status` would
do the same but pulls in googleapis-common-protos (a second copy of many google/* descriptors) for one message,
so it is not worth the dependency.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from google.protobuf import any_pb2

from gatewayserver import jsonpb
from gatewayserver.error_details import as_gs_error as _as_gs_error
from gatewayserver.error_details import to_error_details
from gatewayserver.errors import HTTP_STATUS_BY_GRPC_CODE, GsError
from gatewayserver.ttnpb import error_pb2

log = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def as_gs_error(exc: BaseException) -> GsError:
    """Typed errors pass through; anything else becomes an opaque internal error (details stay in the log)."""
    return _as_gs_error(exc, "pkg/gatewayserver/api")


def new_correlation_id() -> str:
    return secrets.token_hex(16)


def _outgoing(exc: BaseException) -> tuple[GsError, error_pb2.ErrorDetails]:
    """The typed error to send for `exc` and its details with a fresh correlation ID; an untyped exception is
    logged under that ID, since the caller only sees the opaque internal error."""
    err = as_gs_error(exc)
    correlation_id = new_correlation_id()
    if err is not exc:
        log.error("internal error in API call", exc_info=exc, extra={"correlation_id": correlation_id})
    return err, to_error_details(err, correlation_id)


# --- gRPC ----------------------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_rpc_status(code: int, message: str, details: list[any_pb2.Any]) -> bytes:
    """Serialise a `google.rpc.Status` {1: int32 code, 2: string message, 3: repeated Any details}."""
    out = bytearray()
    if code:
        out += b"\x08" + _varint(code)
    if message:
        raw = message.encode()
        out += b"\x12" + _varint(len(raw)) + raw
    for item in details:
        raw = item.SerializeToString()
        out += b"\x1a" + _varint(len(raw)) + raw
    return bytes(out)


def decode_rpc_status(data: bytes) -> tuple[int, str, list[any_pb2.Any]]:
    """Inverse of `encode_rpc_status` (for clients and tests)."""
    code, message, details = 0, "", []
    i = 0

    def read_varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while i < len(data):
        key = read_varint()
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value = read_varint()
            if field == 1:
                code = value
        elif wire_type == 2:
            length = read_varint()
            chunk = data[i : i + length]
            i += length
            if field == 2:
                message = chunk.decode()
            elif field == 3:
                item = any_pb2.Any()
                item.ParseFromString(chunk)
                details.append(item)
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
    return code, message, details


def grpc_status(exc: BaseException) -> tuple[int, str, tuple[tuple[str, bytes], ...]]:
    """(code, message, trailing metadata) to abort a gRPC call with."""
    err, details = _outgoing(exc)
    packed = any_pb2.Any()
    packed.Pack(details)
    text = str(err)
    return err.code, text, ((STATUS_DETAILS_KEY, encode_rpc_status(err.code, text, [packed])),)


# --- HTTP ----------------------------------------------------------------------------------------------------


def http_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) in grpc-gateway's shape."""
    err, details = _outgoing(exc)
    body = {"code": err.code, "message": str(err), "details": [jsonpb.any_to_dict(details)]}
    return HTTP_STATUS_BY_GRPC_CODE.get(err.code, 500), body


def stream_error(exc: BaseException) -> dict[str, Any]:
    """The `{"error": Status}` message that ends an HTTP stream, as grpc-gateway writes it."""
    _, body = http_error(exc)
    return {"error": body}
