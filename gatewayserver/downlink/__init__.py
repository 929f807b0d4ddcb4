"""Downlinks: ScheduleDownlink decisions for one gateway (`planner`, sans-I/O) and the reference's errors.

The core's `Connection` (`gatewayserver/core/connection.py`) books downlinks through the planner and hands them to
the gateway's frontend; the frontends write them in their own wire format.
"""

from .planner import GatewayDownlinkState, Planned, plan_request, plan_window

__all__ = [
    "GatewayDownlinkState",
    "Planned",
    "plan_request",
    "plan_window",
]
