"""rxpk -> UplinkMessage, field by field, from whole datagrams as forwarders send them.

The datagrams are written here by hand in the shape of the protocol's examples; expected values are read off
them by hand (frequencies in Hz, EUIs and DevAddr big-endian, GPS ms shifted by epoch and 18 leap seconds).
"""

from __future__ import annotations

import base64
import math

import orjson
import pytest

from gatewayserver.io.udp.packets import PUSH_DATA, parse_datagram
from gatewayserver.io.udp.translate import (
    MAX_RSIG,
    DroppedUplink,
    TranslateError,
    UplinkTranslator,
    decode_base64,
    frequency_hz,
    parse_data_rate,
    parse_time_ns,
    uplinks_from_rxpk,
)
from gatewayserver.tokens import UplinkTokens
from gatewayserver.ttnpb import identifiers_pb2, lorawan_pb2, metadata_pb2

EUI = bytes.fromhex("AA555A0000000101")
RECEIVED_AT = 1_795_316_963_600_000_123  # 2026-11-22T03:09:23.600000123Z
NS = 1_000_000_000

# 40 | DevAddr DA1B0126 | FCtrl 80 (ADR) | FCnt 2A00 | FPort 0A | 0102030405 | MIC A1B2C3D4
FRAME = bytes.fromhex("40DA1B0126802A000A0102030405A1B2C3D4")
FRAME_B64 = "QNobASaAKgAKAQIDBAWhssPU"  # 18 bytes -> 24 chars, no padding needed
# 00 | JoinEUI 0807060504030201 | DevEUI 1817161514131211 | DevNonce 3412 | MIC 0A0B0C0D
JOIN = bytes.fromhex("0008070605040302011817161514131211" + "3412" + "0A0B0C0D")
JOIN_B64_UNPADDED = base64.b64encode(JOIN).decode().rstrip("=")


def ids() -> identifiers_pb2.GatewayIdentifiers:
    g = identifiers_pb2.GatewayIdentifiers()
    g.gateway_id = "eui-aa555a0000000101"
    g.eui = EUI
    return g


def push(version: int, body: bytes) -> bytes:
    return bytes([version, 0x3A, 0x7F, PUSH_DATA]) + EUI + body


V1_DATAGRAM = push(
    1,
    b'{"rxpk":[{"time":"2026-11-22T03:09:23.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,'
    b'"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":18,'
    b'"data":"' + FRAME_B64.encode() + b'"}]}',
)

V2_DATAGRAM = push(
    2,
    b'{"rxpk":[{"jver":1,"tmst":4294967295,"tmms":1479352181528,"time":"2001-01-01T00:00:00Z","chan":0,"rfch":1,'
    b'"freq":868.1,"mid":8,"stat":1,"modu":"LORA","datr":"SF12BW125","codr":"4/5","rssis":-112,"lsnr":-14.2,'
    b'"foff":-3712,"rssi":-106,"ftime":528002111,"size":23,"brd":0,"data":"' + JOIN_B64_UNPADDED.encode() + b'"}],'
    b'"stat":{"time":"2026-11-22 03:09:23 GMT","rxnb":2,"rxok":1,"rxfw":1,"ackr":100.0,"dwnb":0,"txnb":0}}',
)


def translate(datagram: bytes, **kwargs):  # type: ignore[no-untyped-def]
    d = parse_datagram(datagram)
    body = orjson.loads(d.body)
    drops: list[DroppedUplink] = []
    ups = uplinks_from_rxpk(body["rxpk"], ids(), RECEIVED_AT, drops=drops, **kwargs)
    return ups, drops


def assert_ts(ts, ns: int) -> None:  # type: ignore[no-untyped-def]
    assert ts.seconds * NS + ts.nanos == ns


def test_protocol_v1_example_every_field() -> None:
    ups, drops = translate(V1_DATAGRAM)
    assert drops == []
    (up,) = ups
    assert up.raw_payload == FRAME
    assert up.payload.m_hdr.m_type == lorawan_pb2.UNCONFIRMED_UP
    assert up.payload.mac_payload.f_hdr.dev_addr == bytes.fromhex("26011BDA")
    assert up.payload.mac_payload.f_hdr.f_cnt == 42
    assert up.payload.mac_payload.f_port == 10
    s = up.settings
    assert s.frequency == 866_349_812
    assert s.data_rate.WhichOneof("modulation") == "lora"
    assert (s.data_rate.lora.spreading_factor, s.data_rate.lora.bandwidth, s.data_rate.lora.coding_rate) == (
        7,
        125_000,
        "4/6",
    )
    assert s.timestamp == 3_512_348_611
    assert_ts(s.time, 1_795_316_963_528_002_000)
    assert_ts(up.received_at, RECEIVED_AT)
    assert up.HasField("crc_status") and up.crc_status.value is True
    assert list(up.correlation_ids) == []
    (md,) = up.rx_metadata
    assert md.gateway_ids.gateway_id == "eui-aa555a0000000101" and md.gateway_ids.eui == EUI
    assert md.antenna_index == 0 and md.channel_index == 2
    assert md.timestamp == 3_512_348_611
    assert_ts(md.time, 1_795_316_963_528_002_000)
    assert not md.HasField("gps_time")
    assert_ts(md.received_at, RECEIVED_AT)
    assert md.rssi == -35 and md.channel_rssi == -35
    assert not md.HasField("signal_rssi")
    assert md.snr == pytest.approx(5.1, abs=1e-6)
    assert md.uplink_token == b""


def test_protocol_v2_example_every_field() -> None:
    ups, drops = translate(V2_DATAGRAM)
    assert drops == []
    (up,) = ups
    assert up.raw_payload == JOIN
    jr = up.payload.join_request_payload
    assert jr.join_eui == bytes.fromhex("0102030405060708")
    assert jr.dev_eui == bytes.fromhex("1112131415161718")
    assert jr.dev_nonce == bytes.fromhex("1234")
    s = up.settings
    assert s.frequency == 868_100_000
    assert (s.data_rate.lora.spreading_factor, s.data_rate.lora.bandwidth, s.data_rate.lora.coding_rate) == (
        12,
        125_000,
        "4/5",
    )
    assert s.timestamp == 4_294_967_295
    # tmms 1479352181528 ms GPS = 2026-11-22T03:09:23.528Z (18 leap seconds); it wins over `time`.
    assert_ts(s.time, 1_795_316_963_528_000_000)
    (md,) = up.rx_metadata
    assert md.timestamp == 4_294_967_295
    assert_ts(md.time, 1_795_316_963_528_000_000)
    assert_ts(md.gps_time, 1_795_316_963_528_000_000)
    assert md.rssi == -106 and md.channel_rssi == -106
    assert md.HasField("signal_rssi") and md.signal_rssi.value == -112
    assert md.snr == pytest.approx(-14.2, abs=1e-5)
    assert md.frequency_offset == -3712
    assert md.fine_timestamp == 528_002_111
    assert md.channel_index == 0


def test_rsig_one_metadata_per_antenna() -> None:
    rxpk = {
        "tmst": 1000,
        "freq": 902.3,
        "stat": 1,
        "modu": "LORA",
        "datr": "SF10BW125",
        "codr": "4/5",
        "chan": 7,
        "rssi": -1,
        "lsnr": 99,
        "data": FRAME_B64,
        "aesk": 2,
        "rsig": [
            {"ant": 0, "chan": 0, "rssic": -97, "rssis": -99, "rssisd": 0, "lsnr": 7.5, "foff": -125, "fdri": 3,
             "ftime": 12_345, "etime": "AAECAwQFBgcICQoLDA0ODw=="},
            {"ant": 1, "chan": 8, "rssic": -88, "rssisd": 2.5, "lsnr": 9.0, "foff": 130,
             "etime": "EBESExQVFhcYGRobHB0eHw=="},
        ],
    }
    (up,) = uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT)
    assert up.settings.frequency == 902_300_000
    a, b = up.rx_metadata
    assert (a.antenna_index, a.channel_index, a.rssi, a.channel_rssi, a.signal_rssi.value) == (0, 0, -97, -97, -99)
    assert (a.rssi_standard_deviation, a.snr, a.frequency_offset, a.frequency_drift) == (0, 7.5, -125, 3)
    assert a.fine_timestamp == 12_345
    assert a.encrypted_fine_timestamp == bytes(range(16)) and a.encrypted_fine_timestamp_key_id == "2"
    assert b.encrypted_fine_timestamp == bytes(range(16, 32)) and b.encrypted_fine_timestamp_key_id == "2"
    assert (b.antenna_index, b.channel_index, b.rssi, b.channel_rssi) == (1, 8, -88, -88)
    assert not b.HasField("signal_rssi")
    assert (b.rssi_standard_deviation, b.snr, b.frequency_offset) == (2.5, 9.0, 130)
    for md in (a, b):
        assert md.timestamp == 1000
        assert md.gateway_ids.eui == EUI
        assert_ts(md.received_at, RECEIVED_AT)


def test_aesk_is_read_from_the_rxpk_not_from_rsig_entries() -> None:
    """`aesk` is a field of the rxpk; an `aesk` inside an rsig entry is not one the forwarders write."""
    etime = "AAECAwQFBgcICQoLDA0ODw=="
    rxpk = {"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125", "codr": "4/5",
            "data": FRAME_B64, "rsig": [{"ant": 0, "rssic": -90, "etime": etime, "aesk": 7}]}
    (up,) = uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT)
    md = up.rx_metadata[0]
    assert md.encrypted_fine_timestamp == bytes(range(16))
    assert md.encrypted_fine_timestamp_key_id == ""
    (up,) = uplinks_from_rxpk([dict(rxpk, aesk=0)], ids(), RECEIVED_AT)
    assert up.rx_metadata[0].encrypted_fine_timestamp_key_id == "0"


def test_hopping_width_is_set_on_every_antenna() -> None:
    rxpk = {"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LR-FHSS", "datr": "M0CW137", "codr": "4/6", "hpw": 8,
            "data": FRAME_B64, "rsig": [{"ant": 0, "rssic": -120}, {"ant": 1, "rssic": -118}]}
    (up,) = uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT)
    assert [(md.antenna_index, md.hopping_width) for md in up.rx_metadata] == [(0, 8), (1, 8)]
    for bad in (-1, 1 << 32, "8", 8.5):
        (up,) = uplinks_from_rxpk([dict(rxpk, hpw=bad)], ids(), RECEIVED_AT)
        assert [md.hopping_width for md in up.rx_metadata] == [0, 0]


def test_oversized_fields_are_bounded() -> None:
    big = base64.b64encode(b"\x40" + bytes(255)).decode()  # 256 bytes: one more than LoRa can carry
    drops: list[DroppedUplink] = []
    assert uplinks_from_rxpk([{"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "data": big}], ids(), RECEIVED_AT,
                             drops=drops) == []
    assert [(d.reason, d.detail) for d in drops] == [("payload", "data longer than 255 bytes")]

    drops = []
    rsig = [{"ant": i, "rssic": -90} for i in range(MAX_RSIG + 1)]
    rxpk = {"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "data": FRAME_B64, "rsig": rsig}
    assert uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT, drops=drops) == []
    assert [d.reason for d in drops] == ["malformed"]
    (up,) = uplinks_from_rxpk([dict(rxpk, rsig=rsig[:MAX_RSIG])], ids(), RECEIVED_AT)
    assert len(up.rx_metadata) == MAX_RSIG

    long_etime = base64.b64encode(bytes(48)).decode()  # 64 characters is the most an etime may have
    rxpk = {"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "data": FRAME_B64, "time": "2026-11-22T03:09:23." + "1" * 60,
            "rsig": [{"ant": 0, "etime": long_etime + "AAAA"}, {"ant": 1, "etime": long_etime}]}
    (up,) = uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT)
    assert not up.settings.HasField("time")  # 80 characters: Python would parse it, a forwarder never writes it
    assert [md.encrypted_fine_timestamp for md in up.rx_metadata] == [b"", bytes(48)]


def test_fsk() -> None:
    rxpk = {"tmst": 1, "freq": 868.8, "stat": 1, "modu": "FSK", "datr": 50000, "rssi": -75, "size": 18,
            "data": FRAME_B64}
    (up,) = uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT)
    assert up.settings.data_rate.WhichOneof("modulation") == "fsk"
    assert up.settings.data_rate.fsk.bit_rate == 50_000
    assert up.settings.frequency == 868_800_000


@pytest.mark.parametrize(
    ("codr", "reduced"), [("4/6", "2/3"), ("4/8", "1/2"), ("2/6", "1/3"), ("1/3", "1/3"), ("5/6", "5/6")]
)
def test_lr_fhss(codr: str, reduced: str) -> None:
    rxpk = {"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LR-FHSS", "datr": "M0CW137", "codr": codr, "hpw": 52,
            "rssi": -120, "data": FRAME_B64}
    (up,) = uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT)
    lr = up.settings.data_rate.lrfhss
    assert up.settings.data_rate.WhichOneof("modulation") == "lrfhss"
    assert (lr.modulation_type, lr.operating_channel_width, lr.coding_rate) == (0, 137_000, reduced)
    assert up.rx_metadata[0].hopping_width == 52


def test_2g4_lora() -> None:
    rxpk = {"tmst": 1, "freq": 2403.0, "stat": 1, "modu": "LORA", "datr": "SF12BW812.5", "codr": "4/8LI",
            "rssi": -90, "data": FRAME_B64}
    (up,) = uplinks_from_rxpk([rxpk], ids(), RECEIVED_AT)
    lora = up.settings.data_rate.lora
    assert (lora.spreading_factor, lora.bandwidth, lora.coding_rate) == (12, 812_500, "4/8LI")
    assert up.settings.frequency == 2_403_000_000


@pytest.mark.parametrize(
    ("mhz", "hz"),
    [
        (868.1, 868_100_000),
        (866.349812, 866_349_812),
        (902.3, 902_300_000),
        (923.3, 923_300_000),
        (868.099975, 868_099_975),
        (869.525, 869_525_000),
        (867.1, 867_100_000),
        (433.175, 433_175_000),
        (915, 915_000_000),
        (2425.999999, 2_425_999_999),
    ],
)
def test_exact_frequencies(mhz: float, hz: int) -> None:
    assert frequency_hz(mhz) == hz
    # Through orjson too, which is what the daemon sees.
    assert frequency_hz(orjson.loads(orjson.dumps(mhz))) == hz


def test_every_6_decimal_frequency_in_a_band_is_exact() -> None:
    for khz in range(863_000, 870_000, 7):
        for hz_part in (0, 1, 12, 999, 975, 500):
            hz = khz * 1000 + hz_part
            text = f"{hz // 1_000_000}.{hz % 1_000_000:06d}"
            assert frequency_hz(orjson.loads(text)) == hz


def test_crc_status() -> None:
    base = {"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "rssi": -50}
    ok = dict(base, stat=1, data=FRAME_B64)
    no_crc = dict(base, stat=0, data=FRAME_B64)
    absent = dict(base, data=FRAME_B64)
    ups = uplinks_from_rxpk([ok], ids(), RECEIVED_AT)
    assert ups[0].crc_status.value is True
    for rx in (no_crc, absent):
        (up,) = uplinks_from_rxpk([rx], ids(), RECEIVED_AT)
        assert not up.HasField("crc_status")
    drops: list[DroppedUplink] = []
    bad = dict(base, stat=-1, data="AAAA")
    assert uplinks_from_rxpk([bad], ids(), RECEIVED_AT, drops=drops) == []
    assert drops == [DroppedUplink(0, "crc")]
    bad = dict(base, stat=-1, data=FRAME_B64)
    (up,) = uplinks_from_rxpk([bad], ids(), RECEIVED_AT, drop_crc_failed=False)
    assert up.HasField("crc_status") and up.crc_status.value is False


def test_tmst_near_wrap_and_out_of_range() -> None:
    base = {"freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "data": FRAME_B64, "stat": 1}
    for tmst in (0, 4_294_967_295, 4_294_967_294, 2_147_483_648):
        (up,) = uplinks_from_rxpk([dict(base, tmst=tmst)], ids(), RECEIVED_AT)
        assert up.settings.timestamp == tmst and up.rx_metadata[0].timestamp == tmst
    for tmst in (4_294_967_296, -1, "5", 1.5):
        drops: list[DroppedUplink] = []
        assert uplinks_from_rxpk([dict(base, tmst=tmst)], ids(), RECEIVED_AT, drops=drops) == []
        assert drops[0].reason == "timestamp"


def test_time_without_tmms_and_neither() -> None:
    base = {"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "data": FRAME_B64}
    (up,) = uplinks_from_rxpk([dict(base, time="2026-11-22T03:09:23.528002123Z")], ids(), RECEIVED_AT)
    assert_ts(up.settings.time, 1_795_316_963_528_002_123)
    assert_ts(up.rx_metadata[0].time, 1_795_316_963_528_002_123)
    assert not up.rx_metadata[0].HasField("gps_time")
    (up,) = uplinks_from_rxpk([base], ids(), RECEIVED_AT)
    assert not up.settings.HasField("time") and not up.rx_metadata[0].HasField("time")
    # A broken time string is ignored, not a reason to drop.
    (up,) = uplinks_from_rxpk([dict(base, time="yesterday")], ids(), RECEIVED_AT)
    assert not up.settings.HasField("time")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-11-22T03:09:23.528002Z", 1_795_316_963_528_002_000),
        ("2026-11-22T03:09:23Z", 1_795_316_963_000_000_000),
        ("2026-11-22T03:09:23.5Z", 1_795_316_963_500_000_000),
        ("2026-11-22T03:09:23.000000001Z", 1_795_316_963_000_000_001),
        ("2026-11-22 03:09:23 GMT", 1_795_316_963_000_000_000),
        ("2026-11-22 03:09:23 UTC", 1_795_316_963_000_000_000),
        ("2026-11-22T04:09:23+01:00", 1_795_316_963_000_000_000),
        ("2026-11-22T03:09:23", 1_795_316_963_000_000_000),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000_000_000),
    ],
)
def test_parse_time(text: str, ns: int) -> None:
    assert parse_time_ns(text) == ns


@pytest.mark.parametrize(
    "text", ["", "2026-11-22", "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-22T25:00:00Z", 5, None,
             "2026-11-22T03:09:23 PST", "２０２６-11-22T03:09:23Z"]
)
def test_parse_time_rejects(text: object) -> None:
    assert parse_time_ns(text) is None


def test_base64_with_and_without_padding() -> None:
    assert decode_base64(base64.b64encode(JOIN).decode()) == JOIN
    assert decode_base64(JOIN_B64_UNPADDED) == JOIN
    assert decode_base64("QQ") == b"A" and decode_base64("QUI") == b"AB"
    for bad in ("Q", "QQ!=", "Q Q=", "-_-_"):
        with pytest.raises(ValueError):
            decode_base64(bad)


def test_duplicates_keep_best_rssi() -> None:
    base = {"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "stat": 1, "data": FRAME_B64}
    other = dict(base, data=JOIN_B64_UNPADDED, rssi=-50)
    drops: list[DroppedUplink] = []
    ups = uplinks_from_rxpk(
        [dict(base, rssi=-80, chan=1), other, dict(base, rssi=-60, chan=5), dict(base, rssi=-70, chan=6)],
        ids(),
        RECEIVED_AT,
        drops=drops,
    )
    assert [u.raw_payload for u in ups] == [FRAME, JOIN]
    assert ups[0].rx_metadata[0].rssi == -60 and ups[0].rx_metadata[0].channel_index == 5
    assert sorted((d.index, d.reason) for d in drops) == [(2, "duplicate"), (3, "duplicate")]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"data": None}, "payload"),
        ({"data": "not base64!"}, "payload"),
        ({"data": ""}, "payload"),
        ({"data": base64.b64encode(b"\x41" + FRAME[1:]).decode()}, "payload"),  # major 1
        ({"data": "QA"}, "payload"),  # too short
        ({"freq": None}, "frequency"),
        ({"freq": "868.1"}, "frequency"),
        ({"freq": -868.1}, "frequency"),
        ({"freq": math.nan}, "frequency"),
        ({"datr": None}, "data_rate"),
        ({"datr": "SF7"}, "data_rate"),
        ({"datr": "SF13BW125"}, "data_rate"),
        ({"datr": "SF7BWinf"}, "data_rate"),
        ({"datr": "SF 7BW125"}, "data_rate"),
        ({"datr": -5}, "data_rate"),
        ({"datr": True}, "data_rate"),
    ],
)
def test_drop_reasons(change: dict, reason: str) -> None:
    rx = {"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "stat": 1, "data": FRAME_B64}
    rx.update(change)
    if change.get("data", 0) is None:
        del rx["data"]
    drops: list[DroppedUplink] = []
    good = dict(rx, freq=868.3, datr="SF9BW125", data=FRAME_B64, tmst=7)
    ups = uplinks_from_rxpk([rx, good], ids(), RECEIVED_AT, drops=drops)
    assert [d.reason for d in drops] == [reason] and drops[0].index == 0
    assert len(ups) == 1 and ups[0].settings.timestamp == 7  # the others in the same PUSH_DATA survive


def test_ignored_fields_never_drop() -> None:
    rx = {"tmst": 1, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "data": FRAME_B64, "size": 9999,
          "modu": "WHATEVER", "rfch": "x", "brd": [], "unknown": {"a": 1}}
    assert len(uplinks_from_rxpk([rx], ids(), RECEIVED_AT)) == 1


def test_not_a_list_or_object() -> None:
    with pytest.raises(TranslateError):
        uplinks_from_rxpk({"tmst": 1}, ids(), RECEIVED_AT)
    drops: list[DroppedUplink] = []
    assert uplinks_from_rxpk([1, "x", None], ids(), RECEIVED_AT, drops=drops) == []
    assert [d.reason for d in drops] == ["malformed"] * 3


def test_tokens_clock_sync_locations_and_constraint() -> None:
    tokens = UplinkTokens(b"k" * 32)
    calls = []

    def sync(tmst: int, at: int, gateway_ns: int | None) -> int:
        calls.append((tmst, at, gateway_ns))
        return 5 * (1 << 32) * 1000 + tmst * 1000

    loc = metadata_pb2.Location()
    loc.latitude, loc.longitude, loc.altitude, loc.source = 52.37, 4.89, 12, metadata_pb2.SOURCE_REGISTRY
    translator = UplinkTranslator(
        ids(), tokens=tokens, clock_sync=sync, antenna_locations=[None, loc], downlink_path_constraint=2
    )
    rx = {"tmst": 4_294_967_295, "tmms": 1479352181528, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5",
          "data": FRAME_B64, "rsig": [{"ant": 0, "rssic": -90}, {"ant": 1, "rssic": -80}]}
    (up,) = translator.translate([rx], RECEIVED_AT)
    assert calls == [(4_294_967_295, RECEIVED_AT, 1_795_316_963_528_000_000)]
    a, b = up.rx_metadata
    assert not a.HasField("location") and b.location == loc
    assert a.downlink_path_constraint == b.downlink_path_constraint == 2
    for md, antenna in ((a, 0), (b, 1)):
        tok = tokens.decode(md.uplink_token)
        assert tok.ids.antenna_index == antenna
        assert tok.ids.gateway_ids.gateway_id == "eui-aa555a0000000101" and tok.ids.gateway_ids.eui == EUI
        assert tok.timestamp == 4_294_967_295
        assert tok.concentrator_time == 5 * (1 << 32) * 1000 + 4_294_967_295_000
        assert tok.server_time.seconds * NS + tok.server_time.nanos == RECEIVED_AT
        assert tok.gateway_time.seconds * NS + tok.gateway_time.nanos == 1_795_316_963_528_000_000
    # Without clock_sync the concentrator time is the raw counter in ns.
    (up,) = uplinks_from_rxpk([dict(rx, rsig=None, tmms=None)], ids(), RECEIVED_AT, tokens=tokens)
    tok = tokens.decode(up.rx_metadata[0].uplink_token)
    assert tok.concentrator_time == 4_294_967_295_000 and not tok.HasField("gateway_time")


def test_translator_reuse_matches_one_shot() -> None:
    translator = UplinkTranslator(ids())
    body = orjson.loads(parse_datagram(V1_DATAGRAM).body)
    first = translator.translate(body["rxpk"], RECEIVED_AT)
    second = translator.translate(body["rxpk"], RECEIVED_AT + 1)
    assert first == uplinks_from_rxpk(body["rxpk"], ids(), RECEIVED_AT)
    assert second[0].received_at.nanos == first[0].received_at.nanos + 1


def test_parse_data_rate_table() -> None:
    assert parse_data_rate("SF7BW125", "4/5") == (0, 7, 125_000, "4/5")
    assert parse_data_rate("SF5BW1625", "4/7LI") == (0, 5, 1_625_000, "4/7LI")
    assert parse_data_rate("SF9BW500", None) == (0, 9, 500_000, "")
    assert parse_data_rate(50000, None) == (1, 50_000, 0, "")
    assert parse_data_rate("M1CW336", "4/6") == (2, 1, 336_000, "2/3")


def test_data_rate_cache_tells_true_from_one() -> None:
    """`datr: true` was taken for FSK at 1 bit/s whenever a `datr: 1` had been parsed first (True == 1)."""
    assert parse_data_rate(1, "4/5")[1] == 1
    with pytest.raises(ValueError):
        parse_data_rate(True, "4/5")
