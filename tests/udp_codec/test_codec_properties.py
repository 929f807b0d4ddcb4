"""Property tests: nothing a gateway sends makes the codec raise anything but its own error types."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayserver.io.udp import packets as p
from gatewayserver.io.udp.translate import (
    DroppedUplink,
    TranslateError,
    parse_time_ns,
    status_from_stat,
    uplinks_from_rxpk,
)
from gatewayserver.lorawan import PayloadError, parse_phypayload
from gatewayserver.tokens import TokenError, UplinkTokens
from gatewayserver.ttnpb import identifiers_pb2

IDS = identifiers_pb2.GatewayIdentifiers(gateway_id="eui-0102030405060708", eui=bytes(range(1, 9)))
TOKENS = UplinkTokens(b"p" * 32)

RXPK_KEYS = ["time", "tmms", "tmst", "ftime", "freq", "chan", "rfch", "mid", "stat", "modu", "datr", "codr",
             "rssi", "rssis", "lsnr", "foff", "hpw", "size", "data", "rsig", "ant", "rssic", "rssisd", "fdri",
             "etime", "aesk", "x"]
STAT_KEYS = ["time", "boot", "lati", "long", "alti", "rxnb", "rxok", "rxfw", "ackr", "dwnb", "txnb", "temp", "lpps",
             "lmnw", "lmst", "lmok", "pfrm", "fpga", "dsp", "hal", "hver", "firmware", "mail", "desc"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["SF7BW125", "SF12BW812.5", "M0CW137", "4/5", "4/6", "LORA", "FSK", "QNobASaAKgAKAQIDBAWhssPU",
                     "AAAA", "2026-11-22T03:09:23.528002Z", "2026-11-22 03:09:23 GMT", "50000", "SFBW", "M1CW"]),
    st.sampled_from([868.1, 866.349812, 4294967295, 4294967296, -1, 0, 1, 50000, 1479352181528]),
)


def objects(keys: list[str]) -> st.SearchStrategy:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(keys), children, max_size=len(keys)),
        ),
        max_leaves=12,
    )


VALID = {"tmst": 1, "freq": 868.1, "stat": 1, "datr": "SF7BW125", "codr": "4/5", "rssi": -50, "lsnr": 5.5,
         "data": "QNobASaAKgAKAQIDBAWhssPU"}
overrides = st.dictionaries(st.sampled_from(RXPK_KEYS), objects(RXPK_KEYS), max_size=6)
# Half start from a valid rxpk with a few fields replaced, so that the deep paths (rsig, tokens) get exercised.
rxpk_like = overrides | st.builds(lambda o: {**VALID, **o}, overrides)
stat_like = st.dictionaries(st.sampled_from(STAT_KEYS), objects(STAT_KEYS), max_size=8)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64) | st.builds(lambda head, tail: head + tail,
                                          st.sampled_from([b"\x01", b"\x02"]), st.binary(max_size=40)))
def test_parse_datagram_only_raises_packet_error(data: bytes) -> None:
    for parse in (p.parse_datagram, p.parse_server_datagram):
        try:
            d = parse(data)
        except p.PacketError as exc:
            assert exc.reason in {"too_short", "unknown_version", "unknown_type", "wrong_direction", "no_eui",
                                  "no_body"}
        else:
            assert d.version in (1, 2) and len(d.token) == 2


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["NONE", "TOO_LATE", "TX_POWER", "GPS_UNLOCKED", ""]),
)
json_ack = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["error", "warn", "value"]), c, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300)
@given(st.binary(max_size=80) | st.builds(lambda d: orjson.dumps({"txpk_ack": d}), json_ack))
def test_parse_tx_ack_only_raises_packet_error(body: bytes) -> None:
    try:
        r = p.parse_tx_ack(body)
    except p.PacketError as exc:
        assert exc.reason == "bad_json"
    else:
        assert 0 <= r.result <= 8


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rxpk_like | objects(RXPK_KEYS), max_size=4), st.booleans(), st.booleans())
def test_translation_never_raises(rxpks: list, with_tokens: bool, drop_crc: bool) -> None:
    drops: list[DroppedUplink] = []
    ups = uplinks_from_rxpk(
        rxpks, IDS, 1_795_316_963_600_000_123, drops=drops, drop_crc_failed=drop_crc,
        tokens=TOKENS if with_tokens else None,
    )
    assert len(ups) + len(drops) == len(rxpks)
    assert {d.reason for d in drops} <= {"malformed", "payload", "crc", "frequency", "data_rate", "timestamp",
                                         "duplicate"}
    for up in ups:
        up.SerializeToString()
        assert up.rx_metadata


@settings(max_examples=300)
@given(objects(RXPK_KEYS))
def test_translation_of_non_list_raises_own_error(value: object) -> None:
    try:
        uplinks_from_rxpk(value, IDS, 0)
    except TranslateError:
        pass


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(stat_like | objects(STAT_KEYS), st.one_of(st.none(), st.just("192.0.2.1")))
def test_status_never_raises(stat: object, ip: str | None) -> None:
    try:
        status = status_from_stat(stat, 0, ip)
    except TranslateError:
        assert not isinstance(stat, dict)
    else:
        status.SerializeToString()


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_phypayload_only_raises_payload_error(frame: bytes) -> None:
    try:
        parse_phypayload(frame).SerializeToString()
    except PayloadError:
        pass


@settings(max_examples=300)
@given(st.text(max_size=40) | st.sampled_from(["2026-11-22T03:09:23.5+25:00", "2026-11-22T03:09:23.Z"]))
def test_parse_time_never_raises(text: str) -> None:
    parse_time_ns(text)


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_token_decode_only_raises_token_error(data: bytes) -> None:
    try:
        TOKENS.decode(data)
    except TokenError as exc:
        assert exc.code == 15
