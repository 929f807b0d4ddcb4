"""Dwell time and payload-size checks for a downlink.

Kept free of the frequency-plan package: callers pass numbers and callables, so this module does not depend on
how plans are loaded. (The EIRP rule lives with the plans: `FrequencyPlan.eirp_for`.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import DwellTime, TooLong

DEFAULT_DWELL_TIME = 400_000_000  # ns; regional parameters' dwell-time limit
LORAWAN_PHY_OVERHEAD = 5  # MHDR (1) + MIC (4) around the MACPayload


def check_dwell_time(time_on_air: int, *, dwell_time: bool, max_duration: int | None = None) -> None:
    """Refuse a transmission longer than the dwell time when the plan (or channel) enables downlink dwell time."""
    if not dwell_time:
        return
    limit = DEFAULT_DWELL_TIME if max_duration is None else max_duration
    if time_on_air > limit:
        raise DwellTime(duration=time_on_air, max_duration=limit)


def check_payload_size(
    phy_payload_length: int,
    max_mac_payload: int | Callable[[bool], int],
    *,
    dwell_time: bool = False,
    data_rate: Any = None,
) -> None:
    """PHYPayload must be <= max MACPayload + 5 for the data rate.

    `max_mac_payload` is the number, or a callable taking `dwell_time` (the band table's no-dwell / dwell
    columns). A maximum of 0 means the data rate is unusable under dwell time.
    """
    maximum = max_mac_payload(dwell_time) if callable(max_mac_payload) else max_mac_payload
    if maximum <= 0 or phy_payload_length > maximum + LORAWAN_PHY_OVERHEAD:
        raise TooLong(
            payload_length=phy_payload_length,
            maximum_length=maximum + LORAWAN_PHY_OVERHEAD if maximum > 0 else 0,
            data_rate=data_rate,
        )


__all__ = ["check_dwell_time", "check_payload_size", "DEFAULT_DWELL_TIME"]
