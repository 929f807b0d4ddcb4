"""Bookings made before any uplink (class C `imme`) survive the first real clock sync at the right time."""

from __future__ import annotations

from frequency_plans import FrequencyPlanStore
from gatewayserver.downlink.planner import GatewayDownlinkState
from gatewayserver.registry import GatewayEntry
from scheduler.clock import TIMESTAMP_MODULUS

S = 1_000_000_000
MS = 1_000_000


def test_first_uplink_moves_stand_in_bookings_to_the_real_time_line():
    entry = GatewayEntry("gtw-anchor", bytes(8), ("EU_863_870",))
    state = GatewayDownlinkState(entry, FrequencyPlanStore())
    clock = state.scheduler.clock
    now = 1_795_000_000 * S
    # What the planner does for class C before any uplink: a stand-in anchor from the server clock.
    clock.sync((now // 1000) % TIMESTAMP_MODULUS, now)
    state.synthetic_clock = True
    booked = state.scheduler.schedule_anytime(869_525_000, 200 * MS, 6, now)
    booked_at_server_time = clock.to_server_time(booked.starts)

    # The gateway's real counter reads something unrelated: 30 minutes away from the stand-in.
    real_ts = ((now // 1000) + 30 * 60 * 1_000_000) % TIMESTAMP_MODULUS
    state.sync(real_ts, now, None)
    assert not state.synthetic_clock
    (start, _end), = state.scheduler.emissions()
    assert clock.to_server_time(start) == booked_at_server_time
    assert clock.to_timestamp(clock.from_server_time(now)) == real_ts
