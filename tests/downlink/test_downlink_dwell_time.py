"""Dwell time per downlink channel (regional-facts 3.3), decided by the sans-I/O planner."""

from __future__ import annotations

from pathlib import Path

import pytest

from frequency_plans import FrequencyPlanStore
from gatewayserver.downlink.planner import TIMESTAMP, GatewayDownlinkState, plan_window
from gatewayserver.registry import GatewayEntry
from gatewayserver.ttnpb import lorawan_pb2
from scheduler import DwellTime

PLAN = """
id: DWELL_TEST
band_id: EU_863_870
uplink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5}
downlink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5, dwell_time: {enabled: true, duration: 100ms}}
  - {frequency: 868300000, min_data_rate: 0, max_data_rate: 5, dwell_time: {enabled: false}}
  - {frequency: 868500000, min_data_rate: 0, max_data_rate: 5}
dwell_time: {uplinks: false, downlinks: DOWNLINKS, duration: 400ms}
"""
NOW = 1_700_000_000 * 1_000_000_000
SF12 = lorawan_pb2.DataRate(lora=lorawan_pb2.LoRaDataRate(spreading_factor=12, bandwidth=125_000, coding_rate="4/5"))
SF7 = lorawan_pb2.DataRate(lora=lorawan_pb2.LoRaDataRate(spreading_factor=7, bandwidth=125_000, coding_rate="4/5"))


def state_for(tmp_path: Path, plan_downlinks: bool) -> GatewayDownlinkState:
    (tmp_path / "dwell.yml").write_text(PLAN.replace("DOWNLINKS", "true" if plan_downlinks else "false"))
    entry = GatewayEntry("gw", b"\x00" * 8, ("DWELL_TEST",), enforce_duty_cycle=False)
    state = GatewayDownlinkState(entry, FrequencyPlanStore([tmp_path]))
    state.sync(0, NOW, None)
    return state


def plan(state: GatewayDownlinkState, frequency: int, data_rate: lorawan_pb2.DataRate, at_s: int = 1) -> None:
    plan_window(state, b"\x60" + bytes(12), 1, frequency, data_rate, TIMESTAMP, at_s * 1_000_000, 3, NOW)


@pytest.mark.parametrize("plan_downlinks", [False, True])
def test_channel_dwell_time_decides_over_the_plan(tmp_path: Path, plan_downlinks: bool) -> None:
    state = state_for(tmp_path, plan_downlinks)
    # Channel switched on with its own 100 ms: SF7 (~40 ms) fits, SF12 (~1 s) does not, whatever the plan says.
    plan(state, 868_100_000, SF7, at_s=1)
    with pytest.raises(DwellTime) as info:
        plan(state, 868_100_000, SF12, at_s=3)
    assert info.value.attributes["max_duration"] == 100_000_000
    # Channel switched off: no limit, even when the plan's downlink dwell time is on.
    plan(state, 868_300_000, SF12, at_s=5)


def test_channel_without_its_own_switch_follows_the_plan(tmp_path: Path) -> None:
    off, on = tmp_path / "off", tmp_path / "on"
    off.mkdir()
    on.mkdir()
    plan(state_for(off, False), 868_500_000, SF12)
    with pytest.raises(DwellTime) as info:
        plan(state_for(on, True), 868_500_000, SF12)
    assert info.value.attributes["max_duration"] == 400_000_000
