"""stat -> GatewayStatus and downlink parameters -> txpk JSON."""

from __future__ import annotations

import base64

import orjson
import pytest

from gatewayserver.io.udp.translate import (
    TranslateError,
    format_mhz,
    status_from_stat,
    tx_power_dbm,
    txpk_from_downlink,
)
from gatewayserver.ttnpb import metadata_pb2

NS = 1_000_000_000

STAT = {
    "time": "2026-11-22 03:09:23 GMT",
    "lati": 46.24000,
    "long": 3.25230,
    "alti": 145,
    "rxnb": 2,
    "rxok": 2,
    "rxfw": 2,
    "ackr": 100.0,
    "dwnb": 2,
    "txnb": 1,
    "temp": 42.5,
    "lpps": 3,
    "lmnw": 1,
    "lmst": 0,
    "lmok": 4,
    "pfrm": "IMST + Rpi",
    "mail": "ops@example.com",
    "desc": "roof",
    "fpga": 31,
    "dsp": 31,
    "hal": "5.1.0",
    "boot": "2026-11-20T11:00:00Z",
}


def test_stat_every_field() -> None:
    s = status_from_stat(STAT, 0, "192.0.2.7")
    assert s.time.seconds == 1_795_316_963 and s.time.nanos == 0
    assert s.boot_time.seconds == 1_795_172_400
    assert dict(s.metrics) == {
        "rxin": 2,
        "rxok": 2,
        "rxfw": 2,
        "ackr": 100,
        "txin": 2,
        "txok": 1,
        "temp": 42.5,
        "lpps": 3,
        "lmnw": 1,
        "lmst": 0,
        "lmok": 4,
    }
    assert dict(s.versions) == {"fpga": "31", "dsp": "31", "hal": "5.1.0", "pfrm": "IMST + Rpi"}
    (loc,) = s.antenna_locations
    assert (loc.latitude, loc.longitude, loc.altitude, loc.source) == (46.24, 3.2523, 145, metadata_pb2.SOURCE_GPS)
    assert list(s.ip) == ["192.0.2.7"]


def test_stat_iso_time_and_minimal() -> None:
    s = status_from_stat({"time": "2026-11-22T03:09:23.5Z"}, 0)
    assert s.time.seconds == 1_795_316_963 and s.time.nanos == 500_000_000
    assert not s.HasField("boot_time") and len(s.metrics) == 0 and len(s.antenna_locations) == 0
    assert list(s.ip) == []
    s = status_from_stat({"time": "garbage"}, 0)
    assert not s.HasField("time")


@pytest.mark.parametrize(
    "where",
    [
        {"lati": 0, "long": 0, "alti": 0},
        {"lati": 0.0, "long": 0.0},
        {"lati": 1e-9, "long": -1e-9},
        {"lati": 10, "long": 20},
        {"lati": 10.0, "long": 20.0, "alti": 0},
        {"lati": 91.0, "long": 3.0},
        {"lati": 45.0, "long": 181.0},
        {"lati": 45.0},
        {"long": 3.0},
        {"lati": "45", "long": "3"},
    ],
)
def test_untrusted_locations_ignored(where: dict) -> None:
    assert len(status_from_stat(where, 0).antenna_locations) == 0


def test_location_without_altitude() -> None:
    (loc,) = status_from_stat({"lati": -33.86, "long": 151.21}, 0).antenna_locations
    assert (loc.latitude, loc.longitude, loc.altitude) == (-33.86, 151.21, 0)


def test_stat_not_object() -> None:
    with pytest.raises(TranslateError):
        status_from_stat([1], 0)


def test_status_keys_match_pattern() -> None:
    import re

    s = status_from_stat(STAT, 0)
    pattern = re.compile(r"^[a-z0-9](?:[_-]?[a-z0-9]){2,}$")
    assert all(pattern.match(k) for k in [*s.versions, *s.metrics])


@pytest.mark.parametrize(("eirp", "powe"), [(16.15, 14), (29.15, 27), (14.0, 11), (16.14, 13), (2.15, 0),
                                             (27.0, 24), (36.0, 33), (1.0, -1)])
def test_tx_power(eirp: float, powe: int) -> None:
    assert tx_power_dbm(eirp) == powe


@pytest.mark.parametrize(
    ("hz", "text"),
    [(868_100_000, b"868.1"), (869_525_000, b"869.525"), (866_349_812, b"866.349812"), (923_300_000, b"923.3"),
     (915_000_000, b"915.0"), (2_403_000_000, b"2403.0")],
)
def test_exact_mhz(hz: int, text: bytes) -> None:
    assert orjson.dumps(format_mhz(hz)) == text


def test_txpk_lora_class_a() -> None:
    body = txpk_from_downlink(
        b"\x60\x01\x02\x03\x04\x00\x00\x00\x01\x02\x03\x04",
        frequency_hz=868_100_000,
        eirp_dbm=16.15,
        spreading_factor=9,
        bandwidth_hz=125_000,
        coding_rate="4/5",
        timestamp=4_294_967_295 + 1_000_001,
    )
    assert body == (
        b'{"txpk":{"tmst":1000000,"freq":868.1,"rfch":0,"powe":14,"modu":"LORA","datr":"SF9BW125","codr":"4/5",'
        b'"ipol":true,"size":12,"ncrc":true,"data":"YAECAwQAAAABAgME"}}'
    )
    assert base64.b64decode(orjson.loads(body)["txpk"]["data"]) == b"\x60\x01\x02\x03\x04\x00\x00\x00\x01\x02\x03\x04"


def test_txpk_us915_tmms() -> None:
    body = orjson.loads(
        txpk_from_downlink(
            b"\x20" * 17,
            frequency_hz=923_300_000,
            eirp_dbm=29.15,
            spreading_factor=12,
            bandwidth_hz=500_000,
            gps_time_ms=1_479_352_181_528,
        )
    )["txpk"]
    assert body["tmms"] == 1_479_352_181_528 and "tmst" not in body and "imme" not in body
    assert (body["freq"], body["powe"], body["datr"], body["size"]) == (923.3, 27, "SF12BW500", 17)


def test_txpk_fsk_and_immediate() -> None:
    body = txpk_from_downlink(
        b"\x01\x02", frequency_hz=868_800_000, eirp_dbm=16.15, bit_rate=50_000, immediate=True
    )
    assert body == (
        b'{"txpk":{"imme":true,"freq":868.8,"rfch":0,"powe":14,"modu":"FSK","datr":50000,"fdev":25000,'
        b'"size":2,"ncrc":true,"data":"AQI="}}'
    )


def test_txpk_2g4_bandwidth() -> None:
    body = orjson.loads(
        txpk_from_downlink(b"x", frequency_hz=2_403_000_000, eirp_dbm=10, spreading_factor=12,
                           bandwidth_hz=812_500, coding_rate="4/8LI", timestamp=5)
    )["txpk"]
    assert (body["datr"], body["codr"], body["freq"]) == ("SF12BW812.5", "4/8LI", 2403.0)


def test_txpk_requires_time_and_modulation() -> None:
    with pytest.raises(ValueError):
        txpk_from_downlink(b"x", frequency_hz=868_100_000, eirp_dbm=14, spreading_factor=7, bandwidth_hz=125_000)
    with pytest.raises(ValueError):
        txpk_from_downlink(b"x", frequency_hz=868_100_000, eirp_dbm=14, timestamp=1)


def test_txpk_frequency_survives_forwarder_arithmetic() -> None:
    # lora_pkt_fwd computes (uint32_t)(1e6 * freq) from the parsed double: truncation must not lose a Hz.
    for hz in (868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000, 867_700_000,
               867_900_000, 869_525_000, 923_300_000, 923_900_000, 927_500_000, 866_349_812):
        mhz = orjson.loads(txpk_from_downlink(b"x", frequency_hz=hz, eirp_dbm=14, spreading_factor=7,
                                              bandwidth_hz=125_000, timestamp=1))["txpk"]["freq"]
        assert int(1e6 * mhz) == hz
