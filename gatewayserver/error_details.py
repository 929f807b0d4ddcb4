"""`ttn.lorawan.v3.ErrorDetails` from any error: the one conversion used by events, APIs and the downlink path.

Typed errors keep their `namespace:name`, code and public attributes; scheduler errors (which carry the same
identity as class attributes) take the same shape; anything else becomes an opaque internal error so no internal
detail leaks to a client (it stays in the log). Causes are rendered as a bounded chain and detail messages are
packed as `Any`, as the reference does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import Message

from scheduler.errors import SchedulerError

from .errors import INTERNAL, GsError
from .ttnpb import error_pb2

MAX_CAUSE_DEPTH = 8


def as_gs_error(exc: BaseException, internal_namespace: str = "pkg/gatewayserver") -> GsError:
    if isinstance(exc, GsError):
        return exc
    if isinstance(exc, SchedulerError):
        return GsError(exc.namespace, exc.name, exc.message_format, code=exc.grpc_code, attributes=exc.attributes)
    return GsError(internal_namespace, "internal", "internal error", code=INTERNAL)


def struct_value(value: Any) -> Any:
    """A JSON-compatible value for `ErrorDetails.attributes` (a google.protobuf.Struct)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): struct_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [struct_value(v) for v in value]
    if isinstance(value, bytes):
        return value.hex().upper()
    return str(value)


def to_error_details(exc: BaseException, correlation_id: str = "", depth: int = 0) -> error_pb2.ErrorDetails:
    err = as_gs_error(exc)
    details = error_pb2.ErrorDetails(
        namespace=err.namespace,
        name=err.name,
        message_format=err.message_format,
        correlation_id=correlation_id,
        code=err.code,
    )
    if err.attributes:
        details.attributes.update({k: struct_value(v) for k, v in err.attributes.items()})
    if err.cause is not None and depth < MAX_CAUSE_DEPTH:
        details.cause.CopyFrom(to_error_details(err.cause, "", depth + 1))
    for item in err.details:
        if isinstance(item, Message):
            packed = any_pb2.Any()
            packed.Pack(item)
            details.details.append(packed)
    return details
