"""Shipped plans against the regional facts, plan by plan (expected values written out here)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frequency_plans import FrequencyPlanStore, UnknownFrequencyPlan, to_json_dict
from frequency_plans.loader import FrequencyPlan

REQUIRED_IDS = [
    "EU_863_870",
    "EU_863_870_TTN",
    *[f"US_902_928_FSB_{n}" for n in range(1, 9)],
    *[f"AU_915_928_FSB_{n}" for n in range(1, 9)],
    "AS_923",
    "AS_923_2",
    "AS_923_3",
    "AS_923_4",
    "AS_920_923",
    "AS_923_925",
    "IN_865_867",
    "KR_920_923_TTN",
    "CN_470_510_FSB_11",
    "RU_864_870_TTN",
    "EU_433",
]


@pytest.fixture(scope="module")
def store() -> FrequencyPlanStore:
    return FrequencyPlanStore()


def ups(plan: FrequencyPlan) -> list[tuple[int, int, int, int | None]]:
    return [(c.frequency, c.min_data_rate, c.max_data_rate, c.radio) for c in plan.uplink_channels]


def downs(plan: FrequencyPlan) -> list[tuple[int, int, int]]:
    return [(c.frequency, c.min_data_rate, c.max_data_rate) for c in plan.downlink_channels]


def subs(plan: FrequencyPlan) -> list[tuple[int, int, float, float | None]]:
    return [(s.min_frequency, s.max_frequency, s.duty_cycle, s.max_eirp) for s in plan.sub_bands]


def radios(plan: FrequencyPlan) -> list[tuple]:
    return [
        (r.chip_type, r.frequency, r.rssi_offset, None if r.tx is None else (r.tx.min_frequency, r.tx.max_frequency))
        for r in plan.radios
    ]


EU_SUB_BANDS = [
    (863000000, 865000000, 0.001, 16.15),
    (865000000, 868000000, 0.01, 16.15),
    (868000000, 868600000, 0.01, 16.15),
    (868700000, 869200000, 0.001, 16.15),
    (869400000, 869650000, 0.1, 29.15),
    (869700000, 870000000, 0.01, 16.15),
]


def test_required_plans_present(store: FrequencyPlanStore) -> None:
    assert set(REQUIRED_IDS) <= set(store.ids())
    assert store.ids() == sorted(store.ids())
    with pytest.raises(UnknownFrequencyPlan):
        store.get("NOPE")
    with pytest.raises(KeyError):  # UnknownFrequencyPlan is a KeyError
        store.get("NOPE")


def test_time_off_air_defaults(store: FrequencyPlanStore) -> None:
    for plan in store.plans():
        assert (plan.time_off_air.fraction, plan.time_off_air.duration) == (0, 0), plan.id


# ---- EU


EU_UPS = [
    (868100000, 0, 5, 1),
    (868300000, 0, 5, 1),
    (868500000, 0, 5, 1),
    (867100000, 0, 5, 0),
    (867300000, 0, 5, 0),
    (867500000, 0, 5, 0),
    (867700000, 0, 5, 0),
    (867900000, 0, 5, 0),
]


@pytest.mark.parametrize("plan_id, rx2_dr", [("EU_863_870", 0), ("EU_863_870_TTN", 3)])
def test_eu_863_870(store: FrequencyPlanStore, plan_id: str, rx2_dr: int) -> None:
    plan = store.get(plan_id)
    assert plan.band_id == "EU_863_870"
    assert ups(plan) == EU_UPS
    assert downs(plan) == [(f, lo, hi) for f, lo, hi, _ in EU_UPS]
    assert subs(plan) == EU_SUB_BANDS
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (869525000, rx2_dr)
    assert (plan.lora_standard_channel.frequency, plan.lora_standard_channel.data_rate) == (868300000, 6)
    assert plan.lora_standard_channel.radio == 1
    assert (plan.fsk_channel.frequency, plan.fsk_channel.data_rate, plan.fsk_channel.radio) == (868800000, 7, 1)
    assert radios(plan) == [
        ("SX1257", 867500000, -166, (863000000, 870000000)),
        ("SX1257", 868500000, -166, None),
    ]
    assert plan.clock_source == 1
    assert plan.max_eirp is None
    assert plan.listen_before_talk is None
    # EIRP: sub-band ceilings; P (869.4-869.65 MHz) allows 29.15; gaps fall back to the band default 16.
    assert plan.eirp_for(868100000) == 16.15
    assert plan.eirp_for(869525000) == 29.15
    assert plan.eirp_for(868650000) == 16
    assert plan.find_sub_band(868650000) is None
    assert plan.find_sub_band(869300000) is None
    assert plan.find_sub_band(868800000).duty_cycle == 0.001
    assert plan.find_sub_band(865000000).duty_cycle == 0.001
    assert plan.find_sub_band(868000000).max_frequency == 868000000
    assert plan.ping_slot.frequencies == (869525000,)
    assert plan.ping_slot.data_rate == 3
    assert plan.beacon.frequencies == (869525000,)
    assert plan.rx1_frequency(867300000) == 867300000


def test_eu_868_1_extends_and_overrides_lists(store: FrequencyPlanStore) -> None:
    plan = store.get("EU_868_1")
    base = store.get("EU_863_870")
    assert plan.extends == "EU_863_870"
    assert ups(plan) == [(868100000, 0, 5, 1)]
    assert downs(plan) == [(868100000, 0, 5)]
    assert plan.radios == base.radios
    assert plan.fsk_channel == base.fsk_channel
    assert plan.name == "Europe 868.1 MHz"


def test_eu_433(store: FrequencyPlanStore) -> None:
    plan = store.get("EU_433")
    assert ups(plan) == [
        (433175000, 0, 5, 0),
        (433375000, 0, 5, 0),
        (433575000, 0, 5, 0),
        (433775000, 0, 5, 0),
        (433975000, 0, 5, 1),
        (434175000, 0, 5, 1),
        (434375000, 0, 5, 1),
        (434575000, 0, 5, 1),
    ]
    assert downs(plan) == [(f, 0, 5) for f, *_ in ups(plan)]
    # The plan's sub-band replaces the band's narrower 433.175-434.665 MHz one.
    assert subs(plan) == [(433050000, 434790000, 0.1, 12.15)]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (434665000, 0)
    assert (plan.lora_standard_channel.frequency, plan.lora_standard_channel.data_rate) == (434075000, 6)
    assert plan.fsk_channel is None
    assert radios(plan) == [
        ("SX1255", 433475000, -176, (433050000, 434790000)),
        ("SX1255", 434275000, -176, None),
    ]
    assert plan.eirp_for(433175000) == 12.15
    assert plan.eirp_for(433100000) == 12.15  # band default 12.15, plan sub-band 12.15
    assert plan.find_sub_band(433100000) is not None
    assert plan.band.find_sub_band(433100000) is None


# ---- US / AU


@pytest.mark.parametrize("n", range(1, 9))
def test_us_fsb(store: FrequencyPlanStore, n: int) -> None:
    plan = store.get(f"US_902_928_FSB_{n}")
    first = [902300000, 903900000, 905500000, 907100000, 908700000, 910300000, 911900000, 913500000][n - 1]
    std = [903000000, 904600000, 906200000, 907800000, 909400000, 911000000, 912600000, 914200000][n - 1]
    radio0 = [902700000, 904300000, 905900000, 907500000, 909100000, 910700000, 912300000, 913900000][n - 1]
    radio1 = [903400000, 905000000, 906600000, 908200000, 909800000, 911400000, 913000000, 914600000][n - 1]
    assert plan.band_id == "US_902_928"
    assert ups(plan) == [(first + 200000 * i, 0, 3, 0 if i < 4 else 1) for i in range(8)]
    assert plan.downlink_channels == ()
    assert (plan.lora_standard_channel.frequency, plan.lora_standard_channel.data_rate) == (std, 4)
    assert plan.lora_standard_channel.radio == 0
    assert plan.fsk_channel is None
    assert (plan.dwell_time.uplinks, plan.dwell_time.downlinks, plan.dwell_time.duration) == (
        True,
        False,
        400_000_000,
    )
    assert radios(plan) == [
        ("SX1257", radio0, -166, (923000000, 928000000)),
        ("SX1257", radio1, -166, None),
    ]
    assert subs(plan) == [(902300000, 914900000, 1, 23.15), (923300000, 927500000, 1, 28.15)]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (923300000, 8)
    assert plan.max_eirp is None
    assert plan.eirp_for(923300000) == 28.15
    assert plan.eirp_for(first) == 23.15
    # RX1 on the downlink grid: channel index mod 8.
    assert [plan.rx1_frequency(first + 200000 * i) for i in range(8)] == [923300000 + 600000 * i for i in range(8)]
    assert plan.rx1_frequency(std) == 923300000 + 600000 * ((63 + n) % 8)
    assert plan.max_mac_payload(8) == 61
    assert plan.ping_slot.frequencies == tuple(923300000 + 600000 * k for k in range(8))


def test_us_fsb2_worked_examples(store: FrequencyPlanStore) -> None:
    plan = store.get("US_902_928_FSB_2")
    assert plan.rx1_frequency(903900000) == 923300000
    assert plan.rx1_frequency(904600000) == 923900000
    assert plan.name == "United States 902-928 MHz, FSB 2 (used by TTN)"


@pytest.mark.parametrize(
    "plan_id, base, frequency",
    [("US_903_0", 1, 903000000), ("US_904_6", 2, 904600000), ("US_914_2", 8, 914200000)],
)
def test_us_single_channel(store: FrequencyPlanStore, plan_id: str, base: int, frequency: int) -> None:
    plan = store.get(plan_id)
    parent = store.get(f"US_902_928_FSB_{base}")
    assert ups(plan) == [(frequency, 0, 3, 1)]
    assert downs(plan) == [(frequency, 0, 3)]
    assert plan.max_eirp == 24.15
    # The plan max EIRP overrides both US sub-band ceilings, RX2 included.
    assert plan.eirp_for(923300000) == 24.15
    assert plan.eirp_for(frequency) == 24.15
    assert plan.radios == parent.radios
    assert plan.lora_standard_channel == parent.lora_standard_channel
    assert plan.dwell_time == parent.dwell_time


@pytest.mark.parametrize("n", range(1, 9))
def test_au_fsb(store: FrequencyPlanStore, n: int) -> None:
    plan = store.get(f"AU_915_928_FSB_{n}")
    first = [915200000, 916800000, 918400000, 920000000, 921600000, 923200000, 924800000, 926400000][n - 1]
    std = 915900000 + 1600000 * (n - 1)
    assert plan.band_id == "AU_915_928"
    assert ups(plan) == [(first + 200000 * i, 0, 5, 0 if i < 4 else 1) for i in range(8)]
    assert plan.downlink_channels == ()
    assert (plan.lora_standard_channel.frequency, plan.lora_standard_channel.data_rate) == (std, 6)
    assert (plan.dwell_time.uplinks, plan.dwell_time.downlinks, plan.dwell_time.duration) == (None, False, None)
    assert radios(plan) == [
        ("SX1257", first + 400000, -166, (915000000, 928000000)),
        ("SX1257", first + 1100000, -166, None),
    ]
    assert subs(plan) == [(915000000, 928000000, 1, 30)]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (923300000, 8)
    assert plan.eirp_for(923300000) == 30
    # Downlink dwell time off: the plain payload column applies.
    assert plan.max_mac_payload(2) == 59
    br = store.get(f"AU_915_928_FSB_{n}_BR")
    assert (br.dwell_time.uplinks, br.dwell_time.downlinks) == (False, False)
    assert ups(br) == ups(plan)


def test_au_fsb2_values(store: FrequencyPlanStore) -> None:
    plan = store.get("AU_915_928_FSB_2")
    assert plan.lora_standard_channel.frequency == 917500000
    assert [r.frequency for r in plan.radios] == [917200000, 917900000]
    assert plan.rx1_frequency(917500000) == 923900000


# ---- AS923


@pytest.mark.parametrize(
    "plan_id, channels, radio0, rx2, sub_band",
    [
        ("AS_923", (923200000, 923400000), 923300000, 923200000, (923000000, 923500000, 0.01, 16)),
        ("AS_923_2", (921400000, 921600000), 921500000, 921400000, (921400000, 922000000, 0.01, 16)),
        ("AS_923_3", (916600000, 916800000), 916700000, 916600000, (916500000, 917000000, 0.01, 16)),
        ("AS_923_4", (917300000, 917500000), 917400000, 917300000, (917300000, 917500000, 0.01, 16)),
    ],
)
def test_as923_groups(store: FrequencyPlanStore, plan_id, channels, radio0, rx2, sub_band) -> None:
    plan = store.get(plan_id)
    assert plan.band_id == plan_id
    assert ups(plan) == [(f, 0, 5, 0) for f in channels]
    assert downs(plan) == [(f, 0, 5) for f in channels]
    assert radios(plan) == [("SX1257", radio0, -166, (915000000, 928000000))]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (rx2, 2)
    assert subs(plan) == [sub_band]
    assert plan.lora_standard_channel is None and plan.fsk_channel is None
    assert plan.dwell_time.downlinks is None
    assert plan.eirp_for(channels[0]) == 16
    assert plan.max_mac_payload(2) == 123

    ndt = store.get(f"{plan_id}_NDT")
    assert (ndt.dwell_time.uplinks, ndt.dwell_time.downlinks) == (False, False)
    dt = store.get(f"{plan_id}_DT")
    assert (dt.dwell_time.uplinks, dt.dwell_time.downlinks, dt.dwell_time.duration) == (True, True, 400_000_000)
    # Downlink dwell time switches the payload table to the dwell column.
    assert dt.max_mac_payload(2) == 19
    assert dt.max_mac_payload(0) == 0
    assert ups(dt) == ups(plan)


def test_as_920_923(store: FrequencyPlanStore) -> None:
    plan = store.get("AS_920_923")
    assert plan.band_id == "AS_923"
    assert ups(plan) == [
        (923200000, 0, 5, 0),
        (923400000, 0, 5, 0),
        (922200000, 0, 5, 1),
        (922400000, 0, 5, 1),
        (922600000, 0, 5, 0),
        (922800000, 0, 5, 0),
        (923000000, 0, 5, 0),
        (922000000, 0, 5, 1),
    ]
    assert downs(plan) == [(f, 0, 5) for f, *_ in ups(plan)]
    assert subs(plan) == [(922000000, 923400000, 1, None)]
    assert (plan.lora_standard_channel.frequency, plan.lora_standard_channel.data_rate) == (922100000, 6)
    assert (plan.fsk_channel.frequency, plan.fsk_channel.data_rate) == (921800000, 7)
    assert radios(plan) == [
        ("SX1257", 923000000, -166, (920000000, 923400000)),
        ("SX1257", 922100000, -166, None),
    ]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (923200000, 2)
    assert plan.eirp_for(922000000) == 16
    assert plan.eirp_for(923200000) == 16
    assert plan.find_sub_band(923200000).duty_cycle == 1  # not the band's 1 %
    assert plan.find_sub_band(923500000) is None  # refused: outside the plan sub-band

    lbt = store.get("AS_920_923_LBT").listen_before_talk
    assert (lbt.rssi_target, lbt.rssi_offset, lbt.scan_time) == (-80, -4, 128000)
    au = store.get("AS_920_923_TTN_AU")
    assert subs(au) == [(915000000, 928000000, 1, None)]
    assert au.max_eirp == 30
    assert au.eirp_for(923200000) == 30
    assert (au.dwell_time.uplinks, au.dwell_time.downlinks) == (False, False)
    assert ups(au) == ups(plan)


def test_as_923_925(store: FrequencyPlanStore) -> None:
    plan = store.get("AS_923_925")
    assert ups(plan) == [
        (923200000, 0, 5, 0),
        (923400000, 0, 5, 0),
        (923600000, 0, 5, 0),
        (923800000, 0, 5, 0),
        (924000000, 0, 5, 0),
        (924200000, 0, 5, 1),
        (924400000, 0, 5, 1),
        (924600000, 0, 5, 1),
    ]
    assert downs(plan) == [(f, 0, 5) for f, *_ in ups(plan)]
    assert subs(plan) == [(923200000, 924600000, 1, None)]
    assert (plan.lora_standard_channel.frequency, plan.lora_standard_channel.radio) == (924500000, 1)
    assert (plan.fsk_channel.frequency, plan.fsk_channel.data_rate) == (924800000, 7)
    assert radios(plan) == [
        ("SX1257", 923600000, -166, (923200000, 925000000)),
        ("SX1257", 924500000, -166, None),
    ]
    assert plan.eirp_for(924600000) == 16  # outside the band sub-band: band default 16
    assert store.get("AS_923_925_LBT").listen_before_talk.scan_time == 128000
    assert store.get("AS_923_925_TTN_AU").eirp_for(924000000) == 30


# ---- IN, KR, CN, RU


def test_in_865_867(store: FrequencyPlanStore) -> None:
    plan = store.get("IN_865_867")
    assert ups(plan) == [
        (865062500, 0, 5, 0),
        (865402500, 0, 5, 0),
        (865985000, 0, 5, 1),
        (865232500, 0, 5, 0),
        (866185000, 0, 5, 1),
        (866385000, 0, 5, 1),
        (866585000, 0, 5, 1),
        (866785000, 0, 5, 1),
    ]
    assert downs(plan) == [(f, 0, 5) for f, *_ in ups(plan)]
    assert plan.lora_standard_channel is None and plan.fsk_channel is None
    assert subs(plan) == [(865000000, 867000000, 1, 16.15)]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (866550000, 2)
    assert plan.eirp_for(866550000) == 16.15  # band default 30, sub-band caps it
    assert plan.radios[0].tx.notch_frequency == 129000
    assert radios(plan) == [
        ("SX1257", 865200000, -166, (865000000, 867000000)),
        ("SX1257", 866385000, -166, None),
    ]


def test_kr_920_923_ttn(store: FrequencyPlanStore) -> None:
    plan = store.get("KR_920_923_TTN")
    assert ups(plan) == [
        (922100000, 0, 5, 0),
        (922300000, 0, 5, 0),
        (922500000, 0, 5, 0),
        (922700000, 0, 5, 0),
        (922900000, 0, 5, 1),
        (923100000, 0, 5, 1),
        (923300000, 0, 5, 1),
    ]
    assert downs(plan) == [(f, 0, 5) for f, *_ in ups(plan)]
    assert subs(plan) == [(920000000, 923000000, 1, 16.15)]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (921900000, 0)
    lbt = plan.listen_before_talk
    assert (lbt.rssi_target, lbt.rssi_offset, lbt.scan_time) == (-80, -4, 128000)
    assert radios(plan) == [
        ("SX1257", 922400000, -166, (920900000, 923300000)),
        ("SX1257", 923000000, -166, None),
    ]
    # Channels 5 and 6 are outside the only sub-band: RX1 there is refused; RX2 works.
    assert plan.find_sub_band(923100000) is None
    assert plan.find_sub_band(923300000) is None
    assert plan.find_sub_band(921900000) is not None
    assert plan.eirp_for(923100000) == 14
    assert plan.eirp_for(922100000) == 16.15


def test_cn_470_510_fsb_11(store: FrequencyPlanStore) -> None:
    plan = store.get("CN_470_510_FSB_11")
    assert ups(plan) == [(486300000 + 200000 * i, 0, 5, 0 if i < 4 else 1) for i in range(8)]
    assert plan.downlink_channels == ()
    assert [plan.rx1_frequency(f) for f, *_ in ups(plan)] == [506700000 + 200000 * i for i in range(8)]
    assert subs(plan) == [(470000000, 510000000, 1, 19.15)]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (505300000, 0)
    assert radios(plan) == [
        ("SX1255", 486600000, -176, (470000000, 510000000)),
        ("SX1255", 487400000, -176, None),
    ]
    assert plan.eirp_for(506700000) == 19.15
    fsb1 = store.get("CN_470_510_FSB_1")
    assert [fsb1.rx1_frequency(f) for f, *_ in ups(fsb1)] == [500300000 + 200000 * i for i in range(8)]


def test_ru_864_870_ttn(store: FrequencyPlanStore) -> None:
    plan = store.get("RU_864_870_TTN")
    assert ups(plan) == [
        (868900000, 0, 5, 1),
        (869100000, 0, 5, 1),
        (864100000, 0, 5, 0),
        (864300000, 0, 5, 0),
        (864500000, 0, 5, 0),
        (864700000, 0, 5, 0),
        (864900000, 0, 5, 0),
    ]
    assert downs(plan) == [(f, 0, 5) for f, *_ in ups(plan)]
    assert subs(plan) == [(864000000, 870000000, 0.01, 22.15)]
    assert (plan.rx2.frequency, plan.rx2.data_rate) == (869100000, 0)
    assert plan.eirp_for(869100000) == 22.15
    assert plan.ping_slot.frequencies == (868900000,)
    assert radios(plan) == [
        ("SX1257", 864500000, -166, (864000000, 870000000)),
        ("SX1257", 869000000, -166, None),
    ]


# ---- Japan, Singapore, Israel, Uzbekistan, roaming, 2.4 GHz


def test_jp_1_downlink_pairing_and_lbt(store: FrequencyPlanStore) -> None:
    plan = store.get("AS_920_923_TTN_JP_1")
    assert [f for f, *_ in ups(plan)] == [
        923200000, 923400000, 922800000, 923000000, 922600000, 922000000, 922200000, 922400000,
    ]
    assert [f for f, *_ in downs(plan)] == [
        923200000, 923400000, 922800000, 923000000, 922000000, 922200000, 922400000, 922600000,
    ]
    # RX1 pairs by list position, not by frequency.
    assert plan.rx1_frequency(922600000) == 922000000
    assert plan.rx1_frequency(922000000) == 922200000
    assert plan.rx1_frequency(923200000) == 923200000
    assert plan.rx1_frequency(921000000) == 921000000  # not a plan channel: band rule (same frequency)
    lbt = plan.listen_before_talk
    assert (lbt.rssi_target, lbt.rssi_offset, lbt.scan_time) == (-80, -4, 5_000_000)
    assert subs(plan) == [(922000000, 923400000, 1, 16)]
    assert plan.eirp_for(922000000) == 16
    land = store.get("AS_920_923_TTN_JP_1_LAND_MOBILE")
    assert subs(land) == [(922000000, 923400000, 1, 27)]
    assert land.eirp_for(922000000) == 27
    assert land.eirp_for(923200000) == 27  # plan sub-band beats the band sub-band's 16
    assert land.listen_before_talk == plan.listen_before_talk
    assert store.get("AS_920_923_TTN_JP_3_LAND_MOBILE").eirp_for(920600000) == 27


def test_jp_2_and_3(store: FrequencyPlanStore) -> None:
    jp2 = store.get("AS_920_923_TTN_JP_2")
    assert [r for *_, r in ups(jp2)] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert [r.frequency for r in jp2.radios] == [920900000, 923100000]
    assert jp2.fsk_channel is None
    jp3 = store.get("AS_920_923_TTN_JP_3")
    assert [f for f, *_ in ups(jp3)] == [920600000 + 200000 * i for i in range(8)]
    assert subs(jp3) == [(920600000, 922000000, 1, 16)]


def test_sg_il_uz(store: FrequencyPlanStore) -> None:
    sg = store.get("SG_920_923_TTN")
    assert subs(sg) == [(922000000, 923400000, 0.1, None)]
    assert ups(sg) == ups(store.get("AS_920_923"))
    il = store.get("IL_917_920_TTN")
    assert il.band_id == "AS_923_4"
    assert subs(il) == [(917300000, 919900000, 0.01, None)]
    assert (il.rx2.frequency, il.rx2.data_rate) == (917300000, 2)
    il2 = store.get("IL_917_920_TTN_2")
    assert [c.radio for c in il2.downlink_channels] == [0, 0, 0, 0, 1, 1, 1, 1]
    uz = store.get("UZ_923_1")
    assert (uz.rx2.frequency, uz.rx2.data_rate) == (926200000, 2)
    assert subs(uz) == [(926200000, 926800000, 1, 16)]
    assert uz.eirp_for(926400000) == 16


def test_roaming_and_ism_2400(store: FrequencyPlanStore) -> None:
    roaming = store.get("EU_863_870_ROAMING_DRAFT")
    assert [f for f, *_ in ups(roaming)] == [868100000, 868300000, 868500000, 867100000, 867300000, 867900000]
    ism = store.get("ISM_2400_3CH_DRAFT2")
    assert ups(ism) == [(2403000000, 0, 7, None), (2425000000, 0, 7, None), (2479000000, 0, 7, None)]
    assert ism.radios == ()
    assert (ism.rx2.frequency, ism.rx2.data_rate) == (2423000000, 0)
    assert ism.eirp_for(2425000000) == 10.15


# ---- properties over every plan

# Plan channels that knowingly lie outside every effective sub-band (see the KR plan file).
KNOWN_OUTSIDE = {
    ("KR_920_923_TTN", 923100000),
    ("KR_920_923_TTN", 923300000),
    # JP_3's LoRa standard channel is a receive-only IF just above its 920.6-922.0 MHz sub-band.
    ("AS_920_923_TTN_JP_3", 922100000),
    ("AS_920_923_TTN_JP_3_LAND_MOBILE", 922100000),
}

# JP_3's sub-band (920.6-922.0 MHz) does not contain the AS923 RX2 default (923.2 MHz) [derived from the
# facts]: with duty-cycle enforcement on, RX2 downlinks on those plans are refused.
KNOWN_RX2_OUTSIDE = {"AS_920_923_TTN_JP_3", "AS_920_923_TTN_JP_3_LAND_MOBILE"}


def test_every_channel_lies_in_a_sub_band(store: FrequencyPlanStore) -> None:
    for plan in store.plans():
        # The FSK IF is receive-only and may sit outside the duty-cycle sub-bands (AS_920_923: 921.8 MHz).
        fixed = [plan.lora_standard_channel] if plan.lora_standard_channel is not None else []
        for channel in [*plan.uplink_channels, *plan.downlink_channels, *fixed]:
            inside = plan.find_sub_band(channel.frequency) is not None
            assert inside != ((plan.id, channel.frequency) in KNOWN_OUTSIDE), (plan.id, channel.frequency)
        rx2_inside = plan.find_sub_band(plan.rx2.frequency) is not None
        assert rx2_inside != (plan.id in KNOWN_RX2_OUTSIDE), plan.id


def test_every_channel_data_rate_exists(store: FrequencyPlanStore) -> None:
    for plan in store.plans():
        for channel in plan.uplink_channels + plan.downlink_channels:
            assert channel.min_data_rate in plan.band.data_rates
            assert channel.max_data_rate in plan.band.data_rates
            if channel.radio is not None:
                assert channel.radio < len(plan.radios)


def test_json_round_trip_shape(store: FrequencyPlanStore) -> None:
    for plan in store.plans():
        data = to_json_dict(plan)
        assert set(data) == {
            "id",
            "name",
            "band_id",
            "uplink_channels",
            "downlink_channels",
            "sub_bands",
            "rx2",
            "max_eirp",
            "dwell_time",
            "lora_standard_channel",
            "fsk_channel",
            "radios",
            "listen_before_talk",
        }


@st.composite
def plan_and_frequency(draw: st.DrawFn, plans: list[FrequencyPlan]) -> tuple[FrequencyPlan, int]:
    plan = draw(st.sampled_from(plans))
    edges = [f for s in plan.sub_bands for f in (s.min_frequency, s.max_frequency)]
    near = st.sampled_from(edges).flatmap(lambda e: st.integers(e - 3, e + 3))
    frequency = draw(st.one_of(near, st.integers(400_000_000, 1_000_000_000)))
    return plan, frequency


_PLANS = FrequencyPlanStore().plans()


@given(plan_and_frequency(_PLANS))
def test_plan_find_sub_band_matches_brute_force(case: tuple[FrequencyPlan, int]) -> None:
    plan, frequency = case
    matches = [s for s in plan.sub_bands if s.min_frequency <= frequency <= s.max_frequency]
    assert plan.find_sub_band(frequency) is (matches[0] if matches else None)


@given(plan_and_frequency(_PLANS))
def test_eirp_rule(case: tuple[FrequencyPlan, int]) -> None:
    """Band default, then band sub-band, then plan max_eirp, then plan sub-band (a literal restatement)."""
    plan, frequency = case
    expected = plan.band.default_max_eirp
    band_matches = [s for s in plan.band.sub_bands if s.min_frequency <= frequency <= s.max_frequency]
    if band_matches and band_matches[0].max_eirp is not None:
        expected = band_matches[0].max_eirp
    if plan.max_eirp is not None:
        expected = plan.max_eirp
    plan_matches = [s for s in plan.plan_sub_bands if s.min_frequency <= frequency <= s.max_frequency]
    if plan_matches and plan_matches[0].max_eirp is not None:
        expected = plan_matches[0].max_eirp
    assert plan.eirp_for(frequency) == expected
