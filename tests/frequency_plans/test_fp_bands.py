"""Band tables against the regional parameters (latest revision), values written out here on purpose."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frequency_plans.bands import (
    BANDS,
    FSKModulation,
    LoRaModulation,
    LRFHSSModulation,
    SubBand,
    get_band,
)

ALL_BANDS = [
    "EU_863_870",
    "US_902_928",
    "AU_915_928",
    "AS_923",
    "AS_923_2",
    "AS_923_3",
    "AS_923_4",
    "IN_865_867",
    "KR_920_923",
    "CN_470_510",
    "RU_864_870",
    "EU_433",
    "ISM_2400",
]


def test_all_bands_present() -> None:
    assert sorted(BANDS) == sorted(ALL_BANDS)
    with pytest.raises(KeyError, match="NOPE"):
        get_band("NOPE")


# ---- summary table


@pytest.mark.parametrize(
    "band_id, eirp, offsets, max_adr, up, down, cflist, txparam",
    [
        ("EU_863_870", 16, 8, 5, 16, 16, "frequencies", False),
        ("US_902_928", 30, 15, 3, 72, 8, "channel_masks", False),
        ("AU_915_928", 30, 15, 5, 72, 8, "channel_masks", True),
        ("AS_923", 16, 8, 5, 16, 16, "frequencies", True),
        ("AS_923_2", 16, 8, 5, 16, 16, "frequencies", True),
        ("AS_923_3", 16, 8, 5, 16, 16, "frequencies", True),
        ("AS_923_4", 16, 8, 5, 16, 16, "frequencies", True),
        ("IN_865_867", 30, 11, 5, 16, 16, "frequencies", False),
        ("KR_920_923", 14, 8, 5, 16, 16, "frequencies", False),
        ("CN_470_510", 19.15, 8, 5, 96, 48, "channel_masks", False),
        ("EU_433", 12.15, 6, 5, 16, 16, "frequencies", False),
        ("RU_864_870", 16, 8, 5, 16, 16, "frequencies", False),
        ("ISM_2400", 10, 8, 0, 16, 16, "frequencies", False),
    ],
)
def test_band_summary(band_id, eirp, offsets, max_adr, up, down, cflist, txparam) -> None:
    band = BANDS[band_id]
    assert band.default_max_eirp == eirp
    assert band.tx_power_offsets == tuple(-2.0 * i for i in range(offsets))
    assert band.max_adr_data_rate == max_adr
    assert band.max_uplink_channels == up
    assert band.max_downlink_channels == down
    assert band.cflist == cflist
    assert band.tx_param_setup_req is txparam
    assert band.strict_coding_rate


def test_boot_dwell_time() -> None:
    for band_id in ALL_BANDS:
        dwell = BANDS[band_id].boot_dwell_time
        if band_id in ("US_902_928", "AU_915_928"):
            assert (dwell.uplinks, dwell.downlinks) == (True, False)
        else:
            assert (dwell.uplinks, dwell.downlinks) == (None, None)
        assert dwell.duration is None  # the duration lives only in plans


def test_tx_power_index() -> None:
    assert BANDS["EU_863_870"].tx_power(0) == 16
    assert BANDS["EU_863_870"].tx_power(7) == 2
    assert BANDS["US_902_928"].tx_power(14) == 2
    assert BANDS["KR_920_923"].tx_power(1, max_eirp=20) == 18


def test_cflist_unit() -> None:
    assert BANDS["ISM_2400"].cflist_frequency_unit == 200
    assert BANDS["EU_863_870"].cflist_frequency_unit == 100


# ---- sub-bands


SUB_BANDS = {
    "EU_863_870": [
        (863000000, 865000000, 0.001, 16.15),
        (865000000, 868000000, 0.01, 16.15),
        (868000000, 868600000, 0.01, 16.15),
        (868700000, 869200000, 0.001, 16.15),
        (869400000, 869650000, 0.1, 29.15),
        (869700000, 870000000, 0.01, 16.15),
    ],
    "US_902_928": [(902300000, 914900000, 1, 23.15), (923300000, 927500000, 1, 28.15)],
    "AU_915_928": [(915000000, 928000000, 1, 30)],
    "AS_923": [(923000000, 923500000, 0.01, 16)],
    "AS_923_2": [(921400000, 922000000, 0.01, 16)],
    "AS_923_3": [(916500000, 917000000, 0.01, 16)],
    "AS_923_4": [(917300000, 917500000, 0.01, 16)],
    "IN_865_867": [(865000000, 867000000, 1, 16.15)],
    "KR_920_923": [(920000000, 923000000, 1, 16.15)],
    "CN_470_510": [(470000000, 510000000, 1, 19.15)],
    "EU_433": [(433175000, 434665000, 0.1, 12.15)],
    "RU_864_870": [(864000000, 870000000, 0.01, 22.15)],
    "ISM_2400": [(2400000000, 2500000000, 1, 10.15)],
}


@pytest.mark.parametrize("band_id", ALL_BANDS)
def test_sub_bands(band_id: str) -> None:
    assert [
        (s.min_frequency, s.max_frequency, s.duty_cycle, s.max_eirp) for s in BANDS[band_id].sub_bands
    ] == SUB_BANDS[band_id]


@pytest.mark.parametrize(
    "frequency, expected",
    [
        (863000000, 0),
        (865000000, 0),  # shared end point: K comes first
        (865000001, 1),
        (868000000, 1),  # shared with M: L comes first
        (868000001, 2),
        (868100000, 2),
        (868600000, 2),
        (868600001, None),  # gap
        (868650000, None),
        (868699999, None),
        (868700000, 3),
        (868800000, 3),  # FSK channel
        (869200000, 3),
        (869200001, None),  # band "O" left out
        (869300000, None),
        (869399999, None),
        (869400000, 4),
        (869525000, 4),  # RX2
        (869650000, 4),
        (869650001, None),
        (869699999, None),
        (869700000, 5),
        (870000000, 5),
        (870000001, None),
        (862999999, None),
    ],
)
def test_eu_find_sub_band(frequency: int, expected: int | None) -> None:
    band = BANDS["EU_863_870"]
    found = band.find_sub_band(frequency)
    assert found is (None if expected is None else band.sub_bands[expected])


def test_kr_plan_channels_outside_band_sub_band() -> None:
    band = BANDS["KR_920_923"]
    assert band.find_sub_band(923000000) is band.sub_bands[0]
    assert band.find_sub_band(923100000) is None
    assert band.find_sub_band(923300000) is None
    # Outside every sub-band the band default applies.
    assert band.max_eirp_for(923100000) == 14
    assert band.max_eirp_for(922100000) == 16.15


def test_band_eirp() -> None:
    assert BANDS["EU_863_870"].max_eirp_for(869525000) == 29.15
    assert BANDS["EU_863_870"].max_eirp_for(868100000) == 16.15
    assert BANDS["EU_863_870"].max_eirp_for(868650000) == 16  # gap -> default
    assert BANDS["US_902_928"].max_eirp_for(923300000) == 28.15
    assert BANDS["US_902_928"].max_eirp_for(903900000) == 23.15
    assert BANDS["US_902_928"].max_eirp_for(920000000) == 30
    assert BANDS["RU_864_870"].max_eirp_for(869100000) == 22.15
    assert BANDS["IN_865_867"].max_eirp_for(866550000) == 16.15


def _brute_force(sub_bands: tuple[SubBand, ...], frequency: int) -> SubBand | None:
    matches = [s for s in sub_bands if s.min_frequency <= frequency <= s.max_frequency]
    return matches[0] if matches else None


@given(st.sampled_from(ALL_BANDS), st.integers(min_value=400_000_000, max_value=2_600_000_000))
def test_find_sub_band_matches_brute_force(band_id: str, frequency: int) -> None:
    band = BANDS[band_id]
    assert band.find_sub_band(frequency) is _brute_force(band.sub_bands, frequency)


@given(st.sampled_from(ALL_BANDS), st.data())
def test_find_sub_band_near_edges(band_id: str, data: st.DataObject) -> None:
    band = BANDS[band_id]
    edges = [f for s in band.sub_bands for f in (s.min_frequency, s.max_frequency)]
    frequency = data.draw(st.sampled_from(edges)) + data.draw(st.integers(-2, 2))
    assert band.find_sub_band(frequency) is _brute_force(band.sub_bands, frequency)


# ---- data rates and payload sizes


def lora(sf: int, bw_khz: int, cr: str = "4/5") -> LoRaModulation:
    return LoRaModulation(sf, bw_khz * 1000, cr)


FSK = FSKModulation(50000)

EU_RATES = {
    0: (lora(12, 125), 59, 59),
    1: (lora(11, 125), 59, 59),
    2: (lora(10, 125), 59, 59),
    3: (lora(9, 125), 123, 123),
    4: (lora(8, 125), 250, 250),
    5: (lora(7, 125), 250, 250),
    6: (lora(7, 250), 250, 250),
    7: (FSK, 250, 250),
}

DATA_RATES = {
    "EU_863_870": {
        **EU_RATES,
        8: (LRFHSSModulation(0, 137000, "1/3"), 58, 58),
        9: (LRFHSSModulation(0, 137000, "2/3"), 123, 123),
        10: (LRFHSSModulation(0, 336000, "1/3"), 58, 58),
        11: (LRFHSSModulation(0, 336000, "2/3"), 123, 123),
    },
    "EU_433": EU_RATES,
    "RU_864_870": EU_RATES,
    "IN_865_867": {k: v for k, v in EU_RATES.items() if k != 6},
    "KR_920_923": {k: v for k, v in EU_RATES.items() if k <= 5},
    "CN_470_510": {k: v for k, v in EU_RATES.items() if k <= 5},
    "US_902_928": {
        0: (lora(10, 125), 19, 19),
        1: (lora(9, 125), 61, 61),
        2: (lora(8, 125), 133, 133),
        3: (lora(7, 125), 250, 250),
        4: (lora(8, 500), 250, 250),
        5: (LRFHSSModulation(0, 1523000, "1/3"), 58, 58),
        6: (LRFHSSModulation(0, 1523000, "2/3"), 133, 133),
        8: (lora(12, 500), 61, 61),
        9: (lora(11, 500), 137, 137),
        10: (lora(10, 500), 250, 250),
        11: (lora(9, 500), 250, 250),
        12: (lora(8, 500), 250, 250),
        13: (lora(7, 500), 250, 250),
    },
    "AU_915_928": {
        0: (lora(12, 125), 59, 0),
        1: (lora(11, 125), 59, 0),
        2: (lora(10, 125), 59, 19),
        3: (lora(9, 125), 123, 61),
        4: (lora(8, 125), 250, 133),
        5: (lora(7, 125), 250, 250),
        6: (lora(8, 500), 250, 250),
        7: (LRFHSSModulation(0, 1523000, "1/3"), 58, 58),
        8: (lora(12, 500), 61, 61),
        9: (lora(11, 500), 137, 137),
        10: (lora(10, 500), 250, 250),
        11: (lora(9, 500), 250, 250),
        12: (lora(8, 500), 250, 250),
        13: (lora(7, 500), 250, 250),
    },
    "ISM_2400": {
        i: (LoRaModulation(12 - i, 812000, "4/8LI"), size, size)
        for i, size in enumerate((59, 123, 250, 250, 250, 250, 250, 250))
    },
}
AS923_RATES = {
    0: (lora(12, 125), 59, 0),
    1: (lora(11, 125), 59, 0),
    2: (lora(10, 125), 123, 19),
    3: (lora(9, 125), 123, 61),
    4: (lora(8, 125), 250, 133),
    5: (lora(7, 125), 250, 250),
    6: (lora(7, 250), 250, 250),
    7: (FSK, 250, 250),
}
for _group in ("AS_923", "AS_923_2", "AS_923_3", "AS_923_4"):
    DATA_RATES[_group] = AS923_RATES


@pytest.mark.parametrize("band_id", ALL_BANDS)
def test_data_rates_and_payload_sizes(band_id: str) -> None:
    band = BANDS[band_id]
    expected = DATA_RATES[band_id]
    assert sorted(band.data_rates) == sorted(expected)
    for index, (modulation, plain, dwell) in expected.items():
        assert band.data_rate(index).modulation == modulation, index
        assert band.max_mac_payload(index) == plain, index
        assert band.max_mac_payload(index, dwell_time=True) == dwell, index


@pytest.mark.parametrize("band_id", ALL_BANDS)
def test_data_rate_lookup_round_trip(band_id: str) -> None:
    band = BANDS[band_id]
    for index, rate in band.data_rates.items():
        up = band.find_data_rate(rate.modulation)
        down = band.find_data_rate(rate.modulation, downlink=True)
        assert up is not None and down is not None
        assert up <= index <= down


def test_data_rate_lookup_duplicates_and_misses() -> None:
    us, au, eu = BANDS["US_902_928"], BANDS["AU_915_928"], BANDS["EU_863_870"]
    assert us.find_lora_data_rate(8, 500000) == 4
    assert us.find_lora_data_rate(8, 500000, downlink=True) == 12
    assert au.find_lora_data_rate(8, 500000) == 6
    assert au.find_lora_data_rate(8, 500000, downlink=True) == 12
    assert eu.find_lora_data_rate(7, 125000) == 5
    assert eu.find_lora_data_rate(12, 125000) == 0
    assert eu.find_lora_data_rate(7, 250000) == 6
    assert eu.find_lora_data_rate(7, 125000, "4/6") is None  # strict: coding rate compared
    assert eu.find_lora_data_rate(12, 500000) is None
    assert eu.find_data_rate(FSKModulation(50000)) == 7
    assert eu.find_data_rate(FSKModulation(25000)) is None
    assert eu.find_data_rate(LRFHSSModulation(0, 336000, "2/3")) == 11
    assert us.find_data_rate(LRFHSSModulation(0, 1523000, "1/3")) == 5
    assert BANDS["KR_920_923"].find_data_rate(FSKModulation(50000)) is None
    assert BANDS["ISM_2400"].find_lora_data_rate(5, 812000, "4/8LI") == 7
    assert BANDS["IN_865_867"].find_lora_data_rate(7, 250000) is None
    assert eu.find_lora_data_rate(7, 125000, "4/6") is None
    assert BANDS["ISM_2400"].find_lora_data_rate(5, 812000) is None  # 2.4 GHz rates use 4/8LI


def test_unknown_data_rate() -> None:
    with pytest.raises(KeyError):
        BANDS["US_902_928"].data_rate(7)
    with pytest.raises(KeyError):
        BANDS["IN_865_867"].max_mac_payload(6)


# ---- RX1 data rate


def _subtract(rows: range, offsets: int = 6) -> dict[int, list[int]]:
    return {dr: [max(dr - o, 0) for o in range(offsets)] for dr in rows}


EU_RX1 = {
    0: [0, 0, 0, 0, 0, 0],
    1: [1, 0, 0, 0, 0, 0],
    2: [2, 1, 0, 0, 0, 0],
    3: [3, 2, 1, 0, 0, 0],
    4: [4, 3, 2, 1, 0, 0],
    5: [5, 4, 3, 2, 1, 0],
    6: [6, 5, 4, 3, 2, 1],
    7: [7, 6, 5, 4, 3, 2],
}
EU_LR_FHSS_RX1 = {
    8: [1, 0, 0, 0, 0, 0],
    9: [2, 1, 0, 0, 0, 0],
    10: [1, 0, 0, 0, 0, 0],
    11: [2, 1, 0, 0, 0, 0],
}
US_RX1 = {
    0: [10, 9, 8, 8],
    1: [11, 10, 9, 8],
    2: [12, 11, 10, 9],
    3: [13, 12, 11, 10],
    4: [13, 13, 12, 11],
    5: [10, 9, 8, 8],
    6: [11, 10, 9, 8],
}
AU_RX1 = {
    0: [8, 8, 8, 8, 8, 8],
    1: [9, 8, 8, 8, 8, 8],
    2: [10, 9, 8, 8, 8, 8],
    3: [11, 10, 9, 8, 8, 8],
    4: [12, 11, 10, 9, 8, 8],
    5: [13, 12, 11, 10, 9, 8],
    6: [13, 13, 12, 11, 10, 9],
    7: [9, 8, 8, 8, 8, 8],
}
AS_RX1 = {
    0: [0, 0, 0, 0, 0, 0, 1, 2],
    1: [1, 0, 0, 0, 0, 0, 2, 3],
    2: [2, 1, 0, 0, 0, 0, 3, 4],
    3: [3, 2, 1, 0, 0, 0, 4, 5],
    4: [4, 3, 2, 1, 0, 0, 5, 6],
    5: [5, 4, 3, 2, 1, 0, 6, 7],
    6: [6, 5, 4, 3, 2, 1, 7, 7],
    7: [7, 6, 5, 4, 3, 2, 7, 7],
}
AS_RX1_DWELL = {
    0: [2, 2, 2, 2, 2, 2, 2, 2],
    1: [2, 2, 2, 2, 2, 2, 2, 3],
    2: [2, 2, 2, 2, 2, 2, 3, 4],
    3: [3, 2, 2, 2, 2, 2, 4, 5],
    4: [4, 3, 2, 2, 2, 2, 5, 6],
    5: [5, 4, 3, 2, 2, 2, 6, 7],
    6: [6, 5, 4, 3, 2, 2, 7, 7],
    7: [7, 6, 5, 4, 3, 2, 7, 7],
}
RX1 = {
    "EU_863_870": ({**EU_RX1, **EU_LR_FHSS_RX1}, None),
    "EU_433": (EU_RX1, None),
    "RU_864_870": (EU_RX1, None),
    "ISM_2400": (EU_RX1, None),
    "KR_920_923": ({k: v for k, v in EU_RX1.items() if k <= 5}, None),
    "CN_470_510": ({k: v for k, v in EU_RX1.items() if k <= 5}, None),
    "US_902_928": (US_RX1, None),
    "AU_915_928": (AU_RX1, None),
    "AS_923": (AS_RX1, AS_RX1_DWELL),
    "AS_923_2": (AS_RX1, AS_RX1_DWELL),
    "AS_923_3": (AS_RX1, AS_RX1_DWELL),
    "AS_923_4": (AS_RX1, AS_RX1_DWELL),
    "IN_865_867": (AS_RX1, AS_RX1),  # IN ignores dwell time
}


@pytest.mark.parametrize("band_id", ALL_BANDS)
def test_rx1_data_rate_tables(band_id: str) -> None:
    band = BANDS[band_id]
    plain, dwell = RX1[band_id]
    dwell = plain if dwell is None else dwell
    assert sorted(band.rx1_data_rate_table) == sorted(plain)
    for dr, row in plain.items():
        assert [band.rx1_data_rate(dr, o) for o in range(len(row))] == row, dr
        assert [band.rx1_data_rate(dr, o, dwell_time=True) for o in range(len(row))] == dwell[dr], dr
    assert _subtract(range(8)) == EU_RX1  # the tables above follow the subtract rule


def test_rx1_data_rate_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        BANDS["US_902_928"].rx1_data_rate(0, 4)
    with pytest.raises(ValueError):
        BANDS["US_902_928"].rx1_data_rate(7, 0)
    with pytest.raises(ValueError):
        BANDS["EU_863_870"].rx1_data_rate(0, 6)


# ---- channels, RX1 frequency, RX2, beacon, ping slot


DEFAULT_CHANNELS = {
    "EU_863_870": ([868100000, 868300000, 868500000], 0, 5),
    "EU_433": ([433175000, 433375000, 433575000], 0, 5),
    "RU_864_870": ([868900000, 869100000], 0, 5),
    "IN_865_867": ([865062500, 865402500, 865985000], 0, 5),
    "KR_920_923": ([922100000, 922300000, 922500000], 0, 5),
    "AS_923": ([923200000, 923400000], 0, 5),
    "AS_923_2": ([921400000, 921600000], 0, 5),
    "AS_923_3": ([916600000, 916800000], 0, 5),
    "AS_923_4": ([917300000, 917500000], 0, 5),
    "ISM_2400": ([2403000000, 2425000000, 2479000000], 0, 7),
}


@pytest.mark.parametrize("band_id", sorted(DEFAULT_CHANNELS))
def test_default_channels(band_id: str) -> None:
    band = BANDS[band_id]
    frequencies, lo, hi = DEFAULT_CHANNELS[band_id]
    for channels in (band.uplink_channels, band.downlink_channels):
        assert [c.frequency for c in channels] == frequencies
        assert {(c.min_data_rate, c.max_data_rate) for c in channels} == {(lo, hi)}
    for f in frequencies:
        assert band.rx1_frequency(f) == f
        assert band.uplink_channel_index(f) is None


def test_grid_channels() -> None:
    us = BANDS["US_902_928"]
    assert len(us.uplink_channels) == 72
    assert us.uplink_channels[0].frequency == 902300000
    assert us.uplink_channels[63].frequency == 914900000
    assert (us.uplink_channels[63].min_data_rate, us.uplink_channels[63].max_data_rate) == (0, 3)
    assert us.uplink_channels[64].frequency == 903000000
    assert us.uplink_channels[71].frequency == 914200000
    assert (us.uplink_channels[71].min_data_rate, us.uplink_channels[71].max_data_rate) == (4, 6)
    assert [c.frequency for c in us.downlink_channels] == [923300000 + 600000 * m for m in range(8)]
    assert {(c.min_data_rate, c.max_data_rate) for c in us.downlink_channels} == {(8, 13)}

    au = BANDS["AU_915_928"]
    assert au.uplink_channels[0].frequency == 915200000
    assert au.uplink_channels[63].frequency == 927800000
    assert (au.uplink_channels[0].min_data_rate, au.uplink_channels[0].max_data_rate) == (0, 5)
    assert au.uplink_channels[64].frequency == 915900000
    assert (au.uplink_channels[64].min_data_rate, au.uplink_channels[64].max_data_rate) == (6, 7)
    assert [c.frequency for c in au.downlink_channels] == [923300000 + 600000 * m for m in range(8)]

    cn = BANDS["CN_470_510"]
    assert len(cn.uplink_channels) == 96
    assert cn.uplink_channels[95].frequency == 489300000
    assert len(cn.downlink_channels) == 48
    assert cn.downlink_channels[0].frequency == 500300000
    assert cn.downlink_channels[47].frequency == 509700000


@pytest.mark.parametrize(
    "band_id, uplink, index, rx1",
    [
        ("US_902_928", 902300000, 0, 923300000),
        ("US_902_928", 903900000, 8, 923300000),
        ("US_902_928", 904100000, 9, 923900000),
        ("US_902_928", 905300000, 15, 927500000),
        ("US_902_928", 914900000, 63, 927500000),
        ("US_902_928", 903000000, 64, 923300000),
        ("US_902_928", 904600000, 65, 923900000),
        ("US_902_928", 914200000, 71, 927500000),
        ("AU_915_928", 915200000, 0, 923300000),
        ("AU_915_928", 916800000, 8, 923300000),
        ("AU_915_928", 917500000, 65, 923900000),
        ("CN_470_510", 470300000, 0, 500300000),
        ("CN_470_510", 486300000, 80, 506700000),
        ("CN_470_510", 487700000, 87, 508100000),
        ("CN_470_510", 479900000, 48, 500300000),
    ],
)
def test_grid_rx1_frequency(band_id: str, uplink: int, index: int, rx1: int) -> None:
    band = BANDS[band_id]
    assert band.uplink_channel_index(uplink) == index
    assert band.rx1_frequency(uplink) == rx1


def test_off_grid_uplink_has_no_rx1() -> None:
    assert BANDS["US_902_928"].rx1_frequency(902400000) is None
    assert BANDS["US_902_928"].rx1_frequency(915100000) is None
    assert BANDS["CN_470_510"].rx1_frequency(470000000) is None


@pytest.mark.parametrize(
    "band_id, rx2, beacon, beacon_dr, beacon_cr, ping",
    [
        ("EU_863_870", (869525000, 0), [869525000], 3, "4/5", [869525000]),
        (
            "US_902_928",
            (923300000, 8),
            [923300000 + 600000 * k for k in range(8)],
            8,
            "4/5",
            [923300000 + 600000 * k for k in range(8)],
        ),
        (
            "AU_915_928",
            (923300000, 8),
            [923300000 + 600000 * k for k in range(8)],
            8,
            "4/5",
            [923300000 + 600000 * k for k in range(8)],
        ),
        ("AS_923", (923200000, 2), [923400000], 3, "4/5", [923400000]),
        ("AS_923_2", (921400000, 2), [921600000], 3, "4/5", [921600000]),
        ("AS_923_3", (916600000, 2), [916800000], 3, "4/5", [916800000]),
        ("AS_923_4", (917300000, 2), [917500000], 3, "4/5", [917500000]),
        ("IN_865_867", (866550000, 2), [866500000], 4, "4/5", [866500000]),
        ("KR_920_923", (921900000, 0), [923100000], 3, "4/5", [923100000]),
        (
            "CN_470_510",
            (505300000, 0),
            [508300000 + 200000 * k for k in range(8)],
            2,
            "4/5",
            [508300000 + 200000 * k for k in range(8)],
        ),
        ("EU_433", (434665000, 0), [434655000], 3, "4/5", [434655000]),
        ("RU_864_870", (869100000, 0), [869100000], 3, "4/5", [868900000]),
        ("ISM_2400", (2423000000, 0), [2424000000], 3, "4/8LI", [2424000000]),
    ],
)
def test_rx2_beacon_ping(band_id, rx2, beacon, beacon_dr, beacon_cr, ping) -> None:
    band = BANDS[band_id]
    assert (band.default_rx2.frequency, band.default_rx2.data_rate) == rx2
    assert list(band.beacon.frequencies) == beacon
    assert band.beacon.data_rate == beacon_dr
    assert band.beacon.coding_rate == beacon_cr
    assert list(band.ping_slot_frequencies) == ping


@pytest.mark.parametrize("band_id", ALL_BANDS)
def test_internal_consistency(band_id: str) -> None:
    """Every DR a band refers to (channels, RX2, beacon, RX1 tables) exists in its data-rate table."""
    band = BANDS[band_id]
    rates = set(band.data_rates)
    for channel in band.uplink_channels + band.downlink_channels:
        assert {channel.min_data_rate, channel.max_data_rate} <= rates
    assert band.default_rx2.data_rate in rates
    assert band.beacon.data_rate in rates
    for table in (band.rx1_data_rate_table, band.rx1_data_rate_table_dwell or {}):
        for _dr, row in table.items():
            if band_id != "IN_865_867":  # IN's rule can name the reserved DR6
                assert set(row) <= rates
