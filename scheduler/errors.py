"""Typed scheduling errors, shaped like The Things Stack's error definitions.

Each class carries the reference `namespace`, `name` and gRPC code so the API layer can turn an instance into a
`ttn.lorawan.v3.ErrorDetails` without a lookup table, and the Network Server can react by code (it treats
FailedPrecondition as "path unusable" and ResourceExhausted/AlreadyExists as "no slot").
"""

from __future__ import annotations

from typing import Any, ClassVar

# gRPC status codes used here (google.rpc.Code).
INVALID_ARGUMENT = 3
ALREADY_EXISTS = 6
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
UNAVAILABLE = 14

_SCHEDULING = "pkg/gatewayserver/scheduling"
_TOA = "pkg/toa"
_IO = "pkg/gatewayserver/io"


class SchedulerError(Exception):
    """Base of every error the scheduler raises; never raised itself."""

    namespace: ClassVar[str] = ""
    name: ClassVar[str] = ""
    grpc_code: ClassVar[int] = 2
    message_format: ClassVar[str] = ""

    def __init__(self, **attributes: Any) -> None:
        self.attributes: dict[str, Any] = attributes
        super().__init__(self.message)

    @property
    def message(self) -> str:
        try:
            return self.message_format.format(**self.attributes)
        except (KeyError, IndexError, ValueError):
            return self.message_format

    @property
    def full_name(self) -> str:
        return f"{self.namespace}:{self.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.full_name}, {self.attributes!r})"


# --- time-on-air -------------------------------------------------------------------------------------------------


class ToaError(SchedulerError, ValueError):
    """Bad modulation parameter; a ValueError too so plain callers can catch it generically."""

    namespace = _TOA
    grpc_code = INVALID_ARGUMENT


class InvalidBandwidth(ToaError):
    name = "bandwidth"
    message_format = "invalid bandwidth `{bandwidth}`"

    def __init__(self, bandwidth: Any) -> None:
        super().__init__(bandwidth=bandwidth)


class InvalidSpreadingFactor(ToaError):
    name = "spreading_factor"
    message_format = "invalid spreading factor `{spreading_factor}`"

    def __init__(self, spreading_factor: Any) -> None:
        super().__init__(spreading_factor=spreading_factor)


class InvalidCodingRate(ToaError):
    name = "coding_rate"
    message_format = "invalid coding rate `{coding_rate}`"

    def __init__(self, coding_rate: Any) -> None:
        super().__init__(coding_rate=coding_rate)


class InvalidFrequency(ToaError):
    name = "frequency"
    message_format = "invalid frequency `{frequency}`"

    def __init__(self, frequency: Any) -> None:
        super().__init__(frequency=frequency)


class InvalidPayloadSize(ToaError):
    """Not in the reference (TTS takes len() of a byte slice, which cannot be negative); ours."""

    name = "payload_size"
    message_format = "invalid payload size `{payload_size}`"

    def __init__(self, payload_size: Any) -> None:
        super().__init__(payload_size=payload_size)


class InvalidBitRate(ToaError):
    """Not in the reference (TTS would divide by zero); ours."""

    name = "bit_rate"
    message_format = "invalid bit rate `{bit_rate}`"

    def __init__(self, bit_rate: Any) -> None:
        super().__init__(bit_rate=bit_rate)


# --- scheduling --------------------------------------------------------------------------------------------------


class TooLate(SchedulerError):
    namespace = _SCHEDULING
    name = "too_late"
    grpc_code = FAILED_PRECONDITION
    message_format = "too late to transmit: delay {delay} ns is less than minimum {min} ns"

    def __init__(self, delay: int, min: int) -> None:
        super().__init__(delay=delay, min=min)


class Conflict(SchedulerError):
    namespace = _SCHEDULING
    name = "conflict"
    grpc_code = ALREADY_EXISTS
    message_format = "scheduling conflict"

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)


class DutyCycle(SchedulerError):
    namespace = _SCHEDULING
    name = "duty_cycle"
    grpc_code = RESOURCE_EXHAUSTED
    message_format = "duty cycle utilization {used} exceeds usable {usable} for priority `{priority}`"

    def __init__(self, used: float, usable: float, priority: str) -> None:
        super().__init__(used=used, usable=usable, priority=priority)


class SubBandNotFound(SchedulerError):
    namespace = _SCHEDULING
    name = "sub_band_not_found"
    grpc_code = FAILED_PRECONDITION
    message_format = "sub-band not found for frequency `{frequency}` Hz"

    def __init__(self, frequency: int) -> None:
        super().__init__(frequency=frequency)


class NoClockSync(SchedulerError):
    namespace = _SCHEDULING
    name = "no_clock_sync"
    grpc_code = UNAVAILABLE
    message_format = "no clock sync"

    def __init__(self) -> None:
        super().__init__()


class NoAbsoluteGatewayTime(SchedulerError):
    namespace = _SCHEDULING
    name = "no_absolute_gateway_time"
    grpc_code = ABORTED
    message_format = "no absolute gateway time"

    def __init__(self) -> None:
        super().__init__()


class NoServerTime(SchedulerError):
    namespace = _SCHEDULING
    name = "no_server_time"
    grpc_code = ABORTED
    message_format = "no server time"

    def __init__(self) -> None:
        super().__init__()


class DwellTime(SchedulerError):
    namespace = _SCHEDULING
    name = "dwell_time"
    grpc_code = FAILED_PRECONDITION
    message_format = "packet time-on-air {duration} ns exceeds dwell time {max_duration} ns"

    def __init__(self, duration: int, max_duration: int) -> None:
        super().__init__(duration=duration, max_duration=max_duration)


class OverlappingSubBands(SchedulerError):
    namespace = _SCHEDULING
    name = "frequency_plans_overlap_sub_band"
    grpc_code = INVALID_ARGUMENT
    message_format = "frequency plans have overlapping sub-bands"

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)


class TooLong(SchedulerError):
    namespace = _IO
    name = "too_long"
    grpc_code = INVALID_ARGUMENT
    message_format = "payload length {payload_length} exceeds maximum {maximum_length} for data rate `{data_rate}`"

    def __init__(self, payload_length: int, maximum_length: int, data_rate: Any) -> None:
        super().__init__(payload_length=payload_length, maximum_length=maximum_length, data_rate=data_rate)


__all__ = [
    "SchedulerError",
    "ToaError",
    "InvalidBandwidth",
    "InvalidSpreadingFactor",
    "InvalidCodingRate",
    "InvalidFrequency",
    "InvalidPayloadSize",
    "InvalidBitRate",
    "TooLate",
    "Conflict",
    "DutyCycle",
    "SubBandNotFound",
    "NoClockSync",
    "NoAbsoluteGatewayTime",
    "NoServerTime",
    "DwellTime",
    "OverlappingSubBands",
    "TooLong",
]
