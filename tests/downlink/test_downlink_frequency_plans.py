"""Gateways with several frequency plans, TxRequest.frequency_plan_id and LR-FHSS requests.

Planner, registry, end to end.

Two test plans of the EU868 band: MULTI_A allows only 868.0-868.6 MHz; MULTI_B adds the 869.4-869.65 MHz sub-band
(with its own EIRP ceiling and a dwell-time limit on 869.525 MHz) and a lower ceiling on 868.0-868.6 MHz.
MULTI_REST is MULTI_A with a 2 s time-off-air.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from downlink_support import GATEWAY_ID, class_a, token_of

from frequency_plans import FrequencyPlanStore
from gatewayserver.config import ConfigError, resolve
from gatewayserver.daemon import start_daemon
from gatewayserver.downlink.planner import TIMESTAMP, GatewayDownlinkState, Planned, plan_request, plan_window
from gatewayserver.errors import INVALID_ARGUMENT, GsError
from gatewayserver.registry import GatewayEntry, GatewayRegistry, RegistryError, load_registry_file
from gatewayserver.ttnpb import gatewayserver_pb2, lorawan_pb2
from scheduler import Conflict, DwellTime, SubBandNotFound

PLANS = {
    "multi_a.yml": """
id: MULTI_A
band_id: EU_863_870
uplink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5}
downlink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5}
sub_bands:
  - {min_frequency: 868000000, max_frequency: 868600000, duty_cycle: 0.01}
""",
    "multi_b.yml": """
id: MULTI_B
band_id: EU_863_870
uplink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5}
downlink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5}
  - {frequency: 869525000, min_data_rate: 0, max_data_rate: 5, dwell_time: {enabled: true, duration: 200ms}}
sub_bands:
  - {min_frequency: 868000000, max_frequency: 868600000, duty_cycle: 0.01, max_eirp: 12}
  - {min_frequency: 869400000, max_frequency: 869650000, duty_cycle: 0.1, max_eirp: 20}
""",
    "multi_rest.yml": """
id: MULTI_REST
extends: MULTI_A
time_off_air: {fraction: 0, duration: 2s}
""",
}
NOW = 1_700_000_000 * 1_000_000_000
S_US = 1_000_000  # one second of concentrator timestamp (µs)
SF7 = lorawan_pb2.DataRate(lora=lorawan_pb2.LoRaDataRate(spreading_factor=7, bandwidth=125_000, coding_rate="4/5"))
SF12 = lorawan_pb2.DataRate(lora=lorawan_pb2.LoRaDataRate(spreading_factor=12, bandwidth=125_000, coding_rate="4/5"))
LR_FHSS = lorawan_pb2.DataRate(
    lrfhss=lorawan_pb2.LRFHSSDataRate(modulation_type=0, operating_channel_width=137_000, coding_rate="2/3")
)
PAYLOAD = b"\x60" + bytes(12)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FrequencyPlanStore:
    directory = tmp_path_factory.mktemp("plans")
    for name, text in PLANS.items():
        (directory / name).write_text(text)
    return FrequencyPlanStore([directory])


def state_for(store: FrequencyPlanStore, *plan_ids: str) -> GatewayDownlinkState:
    state = GatewayDownlinkState(GatewayEntry("gw-multi", b"\x00" * 8, plan_ids), store)
    state.sync(0, NOW, None)
    return state


def rx1(
    state: GatewayDownlinkState, frequency: int, data_rate: lorawan_pb2.DataRate = SF7, at_s: int = 1, plan_id: str = ""
) -> Planned:
    return plan_window(state, PAYLOAD, 1, frequency, data_rate, TIMESTAMP, at_s * S_US, 6, NOW, plan_id=plan_id)


def class_a_request(frequency: int, plan_id: str = "", data_rate: lorawan_pb2.DataRate = SF7) -> lorawan_pb2.TxRequest:
    request = lorawan_pb2.TxRequest(rx1_frequency=frequency, rx1_delay=1, priority=lorawan_pb2.HIGHEST)
    setattr(request, "class", lorawan_pb2.CLASS_A)
    request.rx1_data_rate.CopyFrom(data_rate)
    request.frequency_plan_id = plan_id
    return request


# --- several plans of one band ------------------------------------------------------------------------------------


def test_frequency_only_the_second_plan_has_is_used_with_that_plans_limits(store: FrequencyPlanStore) -> None:
    with pytest.raises(SubBandNotFound):  # MULTI_A alone does not allow 869.525 MHz
        rx1(state_for(store, "MULTI_A"), 869_525_000)
    planned = rx1(state_for(store, "MULTI_A", "MULTI_B"), 869_525_000)
    assert planned.frequency == 869_525_000
    # MULTI_B's sub-band ceiling (20 dBm), not what the band would give under MULTI_A (29.15 dBm).
    assert planned.tx_power == 20.0


def test_second_plans_dwell_time_applies_on_its_channel(store: FrequencyPlanStore) -> None:
    state = state_for(store, "MULTI_A", "MULTI_B")
    with pytest.raises(DwellTime) as info:  # SF12 lasts about a second; MULTI_B allows 200 ms on 869.525 MHz
        rx1(state, 869_525_000, SF12)
    assert info.value.attributes["max_duration"] == 200_000_000


def test_first_plan_that_allows_the_frequency_decides_the_power(store: FrequencyPlanStore) -> None:
    assert rx1(state_for(store, "MULTI_A", "MULTI_B"), 868_100_000).tx_power == pytest.approx(16.15)
    assert rx1(state_for(store, "MULTI_B", "MULTI_A"), 868_100_000).tx_power == 12.0


def test_frequency_outside_every_plan_refused_even_without_duty_cycle(store: FrequencyPlanStore) -> None:
    # Not enforcing duty cycle stops the airtime accounting; the plans still say where the gateway may transmit.
    state = GatewayDownlinkState(GatewayEntry("gw-free", b"\x00" * 8, ("MULTI_A",), enforce_duty_cycle=False), store)
    state.sync(0, NOW, None)
    with pytest.raises(SubBandNotFound):
        rx1(state, 869_525_000)
    assert rx1(state, 868_100_000).frequency == 868_100_000


def test_duty_cycle_ledger_covers_every_plans_sub_bands(store: FrequencyPlanStore) -> None:
    state = state_for(store, "MULTI_A", "MULTI_B")
    ranges = {(sb.min_frequency, sb.max_frequency, sb.duty_cycle) for sb in state.scheduler.sub_bands}
    assert ranges == {(868_000_000, 868_600_000, 0.01), (869_400_000, 869_650_000, 0.1)}


def test_longest_time_off_air_of_the_plans_applies(store: FrequencyPlanStore) -> None:
    state = state_for(store, "MULTI_A", "MULTI_REST")
    rx1(state, 868_100_000, at_s=1)
    with pytest.raises(Conflict):  # MULTI_REST rests 2 s after each emission
        rx1(state, 868_300_000, at_s=2)
    rx1(state, 868_300_000, at_s=4)


# --- plans of different bands -------------------------------------------------------------------------------------


def test_plans_of_different_bands_refused_at_downlink_time(store: FrequencyPlanStore) -> None:
    with pytest.raises(GsError) as info:
        GatewayDownlinkState(GatewayEntry("gw-mixed", b"\x00" * 8, ("EU_863_870", "US_902_928_FSB_2")), store)
    assert (info.value.namespace, info.value.name) == ("pkg/gatewayserver/io", "frequency_plans_not_from_same_band")
    assert info.value.code == INVALID_ARGUMENT
    assert "EU_863_870 (EU_863_870)" in info.value.attributes["plans"]
    assert "US_902_928_FSB_2 (US_902_928)" in info.value.attributes["plans"]


def write_registry(path: Path, plan_ids: list[str], **extra: object) -> Path:
    path.write_text(
        yaml.safe_dump({"gateways": [{"eui": "0016c001ff000002", "frequency_plan_ids": plan_ids, **extra}]})
    )
    return path


def test_plans_of_different_bands_refused_at_registry_load(tmp_path: Path, store: FrequencyPlanStore) -> None:
    path = write_registry(tmp_path / "gateways.yml", ["EU_863_870", "US_902_928_FSB_2"])
    with pytest.raises(RegistryError, match=r"gateways\[0\]\.frequency_plan_ids: .*not from the same band"):
        load_registry_file(path, "EU_863_870", store)


def test_reload_with_plans_of_different_bands_keeps_the_old_registry(
    tmp_path: Path, store: FrequencyPlanStore
) -> None:
    path = write_registry(tmp_path / "gateways.yml", ["MULTI_A", "MULTI_B"])
    registry = GatewayRegistry.from_file(path, frequency_plans=store)
    write_registry(path, ["MULTI_A", "US_902_928_FSB_2"])
    with pytest.raises(RegistryError, match="not from the same band"):
        registry.reload()
    (entry,) = registry.entries()
    assert entry.frequency_plan_ids == ("MULTI_A", "MULTI_B")


def test_plans_with_clashing_sub_bands_refused_only_when_duty_cycle_is_enforced(
    tmp_path: Path, store: FrequencyPlanStore
) -> None:
    # Both AS923, but AS_920_923 and AS_923 draw different sub-band edges: no single duty-cycle ledger fits both.
    path = write_registry(tmp_path / "gateways.yml", ["AS_920_923", "AS_923"])
    with pytest.raises(RegistryError, match="overlapping sub-bands"):
        load_registry_file(path, "EU_863_870", store)
    write_registry(path, ["AS_920_923", "AS_923"], enforce_duty_cycle=False)
    (entry,) = load_registry_file(path, "EU_863_870", store)
    assert entry.frequency_plan_ids == ("AS_920_923", "AS_923")


async def test_daemon_refuses_to_start_with_plans_of_different_bands(tmp_path: Path) -> None:
    path = write_registry(tmp_path / "gateways.yml", ["EU_863_870", "US_902_928_FSB_2"])
    flags = {"udp_listen": ["127.0.0.1:0"], "grpc_listen": None, "http_listen": None, "gateways": str(path)}
    try:
        daemon = await start_daemon(resolve(flags, environ={}))
    except ConfigError as exc:
        assert "not from the same band" in str(exc)
        return
    await daemon.shutdown()  # do not leave a daemon running when the check is missing
    pytest.fail("the daemon started with plans of different bands")


# --- TxRequest.frequency_plan_id ----------------------------------------------------------------------------------


def test_frequency_plan_id_chooses_among_the_gateways_plans(store: FrequencyPlanStore) -> None:
    state = state_for(store, "MULTI_A", "MULTI_B")
    # 868.1 MHz is in both plans: the requested plan's ceiling applies, whatever the registry order.
    assert plan_request(state, PAYLOAD, class_a_request(868_100_000, "MULTI_B"), 0, NOW).tx_power == 12.0
    assert plan_request(state, PAYLOAD, class_a_request(868_100_000, "MULTI_A"), 2 * S_US, NOW).tx_power == (
        pytest.approx(16.15)
    )
    # 869.525 MHz is only in MULTI_B: asking for MULTI_A refuses the window with the usual frequency reason.
    assert rx1(state, 869_525_000, at_s=5, plan_id="MULTI_B").tx_power == 20.0
    with pytest.raises(SubBandNotFound):
        rx1(state, 869_525_000, at_s=7, plan_id="MULTI_A")


def test_unknown_frequency_plan_id_refuses_the_path(store: FrequencyPlanStore) -> None:
    state = state_for(store, "MULTI_A", "MULTI_B")
    with pytest.raises(GsError) as info:
        plan_request(state, PAYLOAD, class_a_request(868_100_000, "EU_863_870"), 0, NOW)
    error = info.value
    assert (error.namespace, error.name, error.code) == ("pkg/gatewayserver/io", "frequency_plan_not_configured", 3)
    assert error.attributes == {"id": "EU_863_870", "frequency_plan_ids": ["MULTI_A", "MULTI_B"]}
    assert state.scheduler.emissions() == []  # nothing booked


# --- LR-FHSS ------------------------------------------------------------------------------------------------------


def test_lrfhss_downlink_refused_with_its_reason(store: FrequencyPlanStore) -> None:
    state = state_for(store, "MULTI_A")
    with pytest.raises(GsError) as info:
        rx1(state, 868_100_000, LR_FHSS)
    error = info.value
    assert (error.name, error.code, error.attributes) == ("data_rate_rx_window", INVALID_ARGUMENT, {"window": 1})
    assert error.cause is not None and error.cause.name == "lrfhss_downlink"
    assert "no LR-FHSS downlink" in error.cause.message


# --- end to end: what the Network Server sees ---------------------------------------------------------------------


async def test_e2e_frequency_plan_id_among_the_gateways_plans(make_harness) -> None:
    harness = await make_harness(frequency_plan_ids=["EU_863_870", "EU_863_870_TTN"])
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    msg = class_a(token_of(up))
    msg.request.frequency_plan_id = "EU_863_870_TTN"
    response = await harness.server.schedule_downlink(msg)
    assert response.rx1


async def test_e2e_unknown_frequency_plan_id_is_a_path_error(make_harness) -> None:
    harness = await make_harness(frequency_plan_ids=["EU_863_870", "EU_863_870_TTN"])
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    msg = class_a(token_of(up))
    msg.request.frequency_plan_id = "US_902_928_FSB_2"
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(msg)
    (details,) = info.value.details
    (path_error,) = details.path_errors
    # The same shape as the planner's other per-path reasons (no_uplink_token, ...): schedule_path -> reason.
    assert (path_error.name, path_error.attributes["gateway_uid"]) == ("schedule_path", GATEWAY_ID)
    cause = path_error.cause
    assert (cause.namespace, cause.name, cause.code) == ("pkg/gatewayserver/io", "frequency_plan_not_configured", 3)
    assert cause.attributes["id"] == "US_902_928_FSB_2"
    assert list(cause.attributes["frequency_plan_ids"]) == ["EU_863_870", "EU_863_870_TTN"]
    assert path_error.code == 3
    assert gw.received_downlinks.empty()


async def test_e2e_lrfhss_downlink_refused_in_each_window(harness) -> None:
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_a(token_of(up), rx1=LR_FHSS, rx2=LR_FHSS))
    (details,) = info.value.details
    tx_schedule = details.path_errors[0].cause
    assert tx_schedule.name == "tx_schedule"
    windows = gatewayserver_pb2.ScheduleDownlinkErrorDetails()
    assert tx_schedule.details[0].Unpack(windows)
    for window in windows.path_errors:
        assert (window.cause.name, window.cause.code) == ("data_rate_rx_window", INVALID_ARGUMENT)
        assert window.cause.cause.name == "lrfhss_downlink"
        assert "LoRaWAN has no LR-FHSS downlink" in window.cause.cause.message_format
    assert gw.received_downlinks.empty()
