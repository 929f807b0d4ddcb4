"""Errors in The Things Stack's shape.

A Network Server (and an operator's tooling) decides what to do with a failure by its gRPC code and its
`namespace:name`, so every error that can cross an API carries both, plus public attributes and a cause chain.
The conversion to `ttn.lorawan.v3.ErrorDetails` lives in `gatewayserver.api.errors` so this module stays free of
protobuf imports and can be raised from anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# gRPC status codes by name; kept here as plain ints so cores need no grpc import.
OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16

HTTP_STATUS_BY_GRPC_CODE: dict[int, int] = {
    OK: 200,
    CANCELLED: 499,
    UNKNOWN: 500,
    INVALID_ARGUMENT: 400,
    DEADLINE_EXCEEDED: 504,
    NOT_FOUND: 404,
    ALREADY_EXISTS: 409,
    PERMISSION_DENIED: 403,
    RESOURCE_EXHAUSTED: 429,
    FAILED_PRECONDITION: 400,
    ABORTED: 409,
    OUT_OF_RANGE: 400,
    UNIMPLEMENTED: 501,
    INTERNAL: 500,
    UNAVAILABLE: 503,
    DATA_LOSS: 500,
    UNAUTHENTICATED: 401,
}


class GsError(Exception):
    """An error with a stable identity (`namespace:name`) and a gRPC code.

    `code` may be UNKNOWN, in which case the effective code is the cause's, as the reference does for wrapper
    errors such as `schedule_path`.
    """

    def __init__(
        self,
        namespace: str,
        name: str,
        message_format: str,
        *,
        code: int,
        attributes: Mapping[str, Any] | None = None,
        cause: BaseException | None = None,
        details: Sequence[Any] = (),
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.message_format = message_format
        self._code = code
        self.attributes = dict(attributes or {})
        self.cause = cause
        self.details = list(details)
        super().__init__(self.message)

    @property
    def code(self) -> int:
        if self._code == UNKNOWN and self.cause is not None:
            return error_code(self.cause)
        return self._code

    @property
    def message(self) -> str:
        """The format with public attributes filled in, like the reference's rendered message."""
        text = self.message_format
        for key, value in self.attributes.items():
            text = text.replace("{" + key + "}", str(value))
        return text

    @property
    def full_name(self) -> str:
        return f"{self.namespace}:{self.name}"

    def __str__(self) -> str:
        return f"error:{self.full_name} ({self.message})"


def error_code(exc: BaseException) -> int:
    """The gRPC code of any exception: its own for typed errors, UNKNOWN otherwise."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    grpc_code = getattr(exc, "grpc_code", None)
    if isinstance(grpc_code, int):
        return grpc_code
    return UNKNOWN
