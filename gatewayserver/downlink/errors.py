"""Downlink errors in the reference's shape, and their `ErrorDetails` form for ScheduleDownlink failures.

A Network Server reacts to a failed ScheduleDownlink by gRPC code (NotFound/DataLoss/FailedPrecondition: the path
is unusable; Aborted/ResourceExhausted/AlreadyExists: no slot now), and an operator reads the per-path, per-window
reasons. So every failure here keeps the reference's `namespace:name` and code, and the nesting is the reference's:

    pkg/gatewayserver:schedule (Aborted) + ScheduleDownlinkErrorDetails{path_errors: [
        pkg/gatewayserver:schedule_path {gateway_uid} -> cause pkg/gatewayserver/io:tx_schedule (Aborted)
            + ScheduleDownlinkErrorDetails{path_errors: [
                pkg/gatewayserver/io:rx_window_schedule {window} -> cause too_late / conflict / duty_cycle / ...
            ]}
    ]}

Protobuf is imported here (not in `gatewayserver.errors`) because the details are messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..error_details import as_gs_error as _as_gs_error
from ..error_details import to_error_details
from ..errors import (
    ABORTED,
    FAILED_PRECONDITION,
    INTERNAL,
    INVALID_ARGUMENT,
    NOT_FOUND,
    UNKNOWN,
    GsError,
)
from ..ttnpb import error_pb2, gatewayserver_pb2

NS_GS = "pkg/gatewayserver"
NS_IO = "pkg/gatewayserver/io"
NS_UDP = "pkg/gatewayserver/io/udp"


def as_gs_error(exc: BaseException) -> GsError:
    return _as_gs_error(exc, NS_GS)


def details_of(exc: BaseException) -> error_pb2.ErrorDetails:
    """`ErrorDetails` of an error and its cause chain, detail messages packed as Any."""
    return to_error_details(exc)


def innermost(exc: BaseException) -> BaseException:
    """The deepest cause: the reason worth a metric label (too_late, conflict, ...)."""
    seen = 0
    while isinstance(exc, GsError) and exc.cause is not None and seen < 16:
        exc = exc.cause
        seen += 1
    return exc


def reason_of(exc: BaseException) -> str:
    """Bounded metric label for a failure: the innermost error's name; for tx_schedule the first window's."""
    exc = innermost(exc)
    if isinstance(exc, GsError) and exc.name == "tx_schedule" and exc.details:
        windows = exc.details[0].path_errors
        for window in windows:
            cause = window
            while cause.HasField("cause"):
                cause = cause.cause
            if cause.name != "rx_empty":
                return cause.name
        return "rx_empty"
    name = getattr(exc, "name", "")
    return name if isinstance(name, str) and name else "internal"


# --- constructors, named as the reference names them --------------------------------------------------------


def not_tx_request() -> GsError:
    return GsError(NS_GS, "not_tx_request", "downlink message is not a Tx request", code=INVALID_ARGUMENT)


def not_connected(gateway_uid: str) -> GsError:
    return GsError(
        NS_GS, "not_connected", "gateway `{gateway_uid}` not connected", code=NOT_FOUND,
        attributes={"gateway_uid": gateway_uid},
    )


def schedule_path(gateway_uid: str, cause: BaseException) -> GsError:
    return GsError(
        NS_GS, "schedule_path", "failed to schedule on path `{gateway_uid}`", code=UNKNOWN,
        attributes={"gateway_uid": gateway_uid}, cause=cause,
    )


def schedule(path_errors: Sequence[error_pb2.ErrorDetails], code: int = ABORTED, name: str = "schedule") -> GsError:
    details = gatewayserver_pb2.ScheduleDownlinkErrorDetails(path_errors=list(path_errors))
    message = "failed to schedule" if name == "schedule" else "invalid uplink token"
    return GsError(NS_GS, name, message, code=code, details=[details])


def tx_schedule(window_errors: Sequence[error_pb2.ErrorDetails]) -> GsError:
    details = gatewayserver_pb2.ScheduleDownlinkErrorDetails(path_errors=list(window_errors))
    return GsError(NS_IO, "tx_schedule", "failed to schedule", code=ABORTED, details=[details])


def rx_window_schedule(window: int, cause: BaseException) -> GsError:
    return GsError(
        NS_IO, "rx_window_schedule", "schedule in Rx window `{window}` failed", code=UNKNOWN,
        attributes={"window": window}, cause=cause,
    )


def rx_empty() -> GsError:
    return GsError(NS_IO, "rx_empty", "Rx window has no settings", code=FAILED_PRECONDITION)


def data_rate_rx_window(window: int, cause: BaseException | None = None) -> GsError:
    return GsError(
        NS_IO, "data_rate_rx_window", "invalid data rate in Rx window `{window}`", code=INVALID_ARGUMENT,
        attributes={"window": window}, cause=cause,
    )


def lrfhss_downlink() -> GsError:
    """Ours, as the cause of `data_rate_rx_window`: LR-FHSS is an uplink-only modulation, so say that, not just
    "invalid data rate", to whoever debugs a Network Server asking for it."""
    return GsError(
        NS_IO, "lrfhss_downlink",
        "LR-FHSS is uplink-only: LoRaWAN has no LR-FHSS downlink, use a LoRa or FSK data rate",
        code=INVALID_ARGUMENT,
    )


def no_uplink_token() -> GsError:
    return GsError(NS_IO, "no_uplink_token", "no uplink token", code=INVALID_ARGUMENT)


def no_absolute_time() -> GsError:
    return GsError(NS_IO, "no_absolute_time", "no absolute time", code=INVALID_ARGUMENT)


def downlink_path() -> GsError:
    return GsError(NS_IO, "downlink_path", "invalid downlink path", code=INVALID_ARGUMENT)


def buffer_full() -> GsError:
    return GsError(NS_IO, "buffer_full", "buffer is full", code=INTERNAL)


def downlink_path_expired() -> GsError:
    return GsError(NS_UDP, "downlink_path_expired", "downlink path expired", code=ABORTED)


def frequency_plan_not_configured(plan_id: str, configured: Sequence[str] = ()) -> GsError:
    """The reference's error (and message) for a plan the gateway does not have; `frequency_plan_ids` (ours) lists
    the ones it has, so the operator sees the mismatch without opening the registry."""
    return GsError(
        NS_IO, "frequency_plan_not_configured", "frequency plan `{id}` is not configured", code=INVALID_ARGUMENT,
        attributes={"id": plan_id, "frequency_plan_ids": list(configured)},
    )


def frequency_plans_not_from_same_band(description: str) -> GsError:
    """The reference's error; `plans` (ours) names each plan with its band."""
    return GsError(
        NS_IO, "frequency_plans_not_from_same_band", "frequency plans are not from the same band",
        code=INVALID_ARGUMENT, attributes={"plans": description},
    )
