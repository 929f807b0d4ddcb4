"""Downlinks: NsGs.ScheduleDownlink decisions (`planner`, sans-I/O) and the UDP shell (`service`)."""

from .planner import GatewayDownlinkState, Planned, plan_request, plan_window
from .service import MAX_HELD, MAX_PENDING, DownlinkService, PendingTx

__all__ = [
    "DownlinkService",
    "GatewayDownlinkState",
    "MAX_HELD",
    "MAX_PENDING",
    "PendingTx",
    "Planned",
    "plan_request",
    "plan_window",
]
