"""Semtech datagram framing and TX_ACK bodies, with hand-written bytes."""

from __future__ import annotations

import pytest

from gatewayserver.io.udp import packets as p

EUI = bytes.fromhex("AA555A0000000101")


@pytest.mark.parametrize("version", [1, 2])
def test_push_data_both_versions(version: int) -> None:
    body = b'{"stat":{"rxnb":1}}'
    raw = bytes([version, 0x9A, 0x7E, 0x00]) + EUI + body
    d = p.parse_datagram(raw)
    assert d == p.Datagram(version, b"\x9a\x7e", p.PUSH_DATA, EUI, body)
    assert p.encode_push_data(version, b"\x9a\x7e", EUI, body) == raw


@pytest.mark.parametrize("version", [1, 2])
def test_pull_data_both_versions(version: int) -> None:
    raw = bytes([version, 0x01, 0x02, 0x02]) + EUI
    d = p.parse_datagram(raw)
    assert (d.version, d.token, d.type, d.eui, d.body) == (version, b"\x01\x02", p.PULL_DATA, EUI, b"")
    assert p.encode_pull_data(version, b"\x01\x02", EUI) == raw


def test_pull_data_trailing_bytes_tolerated() -> None:
    d = p.parse_datagram(b"\x02\x01\x02\x02" + EUI + b"\x00")
    assert d.type == p.PULL_DATA and d.body == b"\x00"


def test_acks_echo_version_and_token() -> None:
    assert p.encode_ack(1, b"\xbe\xef", p.PUSH_ACK) == b"\x01\xbe\xef\x01"
    assert p.encode_ack(2, b"\x00\x00", p.PULL_ACK) == b"\x02\x00\x00\x04"
    with pytest.raises(ValueError):
        p.encode_ack(2, b"\x00\x00", p.PULL_RESP)
    with pytest.raises(ValueError):
        p.encode_ack(3, b"\x00\x00", p.PUSH_ACK)
    with pytest.raises(ValueError):
        p.encode_ack(2, b"\x00", p.PUSH_ACK)


def test_pull_resp() -> None:
    assert p.encode_pull_resp(2, b"\x12\x34", b'{"txpk":{}}') == b'\x02\x12\x34\x03{"txpk":{}}'
    d = p.parse_server_datagram(b'\x02\x12\x34\x03{"txpk":{}}')
    assert (d.type, d.token, d.eui, d.body) == (p.PULL_RESP, b"\x12\x34", None, b'{"txpk":{}}')
    assert p.parse_server_datagram(b"\x01\x00\x07\x01").type == p.PUSH_ACK
    assert p.parse_server_datagram(b"\x02\x00\x07\x04").type == p.PULL_ACK


def test_tx_ack_datagram_v2_only() -> None:
    raw = b"\x02\x55\x66\x05" + EUI
    d = p.parse_datagram(raw)
    assert (d.type, d.token, d.eui, d.body) == (p.TX_ACK, b"\x55\x66", EUI, b"")
    assert p.encode_tx_ack(2, b"\x55\x66", EUI) == raw
    with pytest.raises(p.PacketError) as exc:
        p.parse_datagram(b"\x01\x55\x66\x05" + EUI)
    assert exc.value.reason == "unknown_type"
    with pytest.raises(ValueError):
        p.encode_tx_ack(1, b"\x55\x66", EUI)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "too_short"),
        (b"\x02", "too_short"),
        (b"\x02\x00\x00", "too_short"),
        (b"\x00\x00\x00\x00" + EUI + b"{}", "unknown_version"),
        (b"\x03\x00\x00\x00" + EUI + b"{}", "unknown_version"),
        (b"\xff\x00\x00\x02" + EUI, "unknown_version"),
        (b"\x02\x00\x00\x06" + EUI, "unknown_type"),
        (b"\x02\x00\x00\xff" + EUI, "unknown_type"),
        (b"\x02\x00\x00\x01", "wrong_direction"),
        (b'\x02\x00\x00\x03{"txpk":{}}', "wrong_direction"),
        (b"\x02\x00\x00\x04", "wrong_direction"),
        (b"\x02\x00\x00\x02", "no_eui"),
        (b"\x02\x00\x00\x02\x01\x02\x03\x04\x05\x06\x07", "no_eui"),
        (b"\x02\x00\x00\x00\x01\x02", "no_eui"),
        (b"\x02\x00\x00\x05\x01", "no_eui"),
        (b"\x02\x00\x00\x00" + EUI, "no_body"),
    ],
)
def test_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(p.PacketError) as exc:
        p.parse_datagram(raw)
    assert exc.value.reason == reason


def test_server_datagram_rejects_gateway_types() -> None:
    with pytest.raises(p.PacketError) as exc:
        p.parse_server_datagram(b"\x02\x00\x00\x00" + EUI + b"{}")
    assert exc.value.reason == "wrong_direction"
    with pytest.raises(p.PacketError) as exc:
        p.parse_server_datagram(b"\x02\x00\x00\x03")
    assert exc.value.reason == "no_body"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00",
        b" \r\n\t",
        b'{"txpk_ack":{"error":"NONE"}}',
        b'{"txpk_ack":{"error":"NONE"}}\x00',
        b'{"txpk_ack":{"error":"NONE"}}\n',
        b'{"txpk_ack":{"error":""}}',
        b'{"txpk_ack":{}}',
        b"{}",
    ],
)
def test_tx_ack_success(body: bytes) -> None:
    r = p.parse_tx_ack(body)
    assert r.result == p.SUCCESS and r.ok
    assert r.error is None and r.warning is None


@pytest.mark.parametrize(
    ("name", "result"),
    [
        ("TOO_LATE", 2),
        ("TOO_EARLY", 3),
        ("COLLISION_PACKET", 4),
        ("COLLISION_BEACON", 5),
        ("TX_FREQ", 6),
        ("TX_POWER", 7),
        ("GPS_UNLOCKED", 8),
    ],
)
def test_tx_ack_errors(name: str, result: int) -> None:
    r = p.parse_tx_ack(b'{"txpk_ack":{"error":"' + name.encode() + b'"}}\x00')
    assert (r.result, r.error, r.ok) == (result, name, False)


def test_tx_ack_unknown_error() -> None:
    r = p.parse_tx_ack(b'{"txpk_ack":{"error":"HALF_DUPLEX"}}')
    assert (r.result, r.error) == (p.UNKNOWN_ERROR, "HALF_DUPLEX")
    r = p.parse_tx_ack(b'{"txpk_ack":{"error":42}}')
    assert (r.result, r.error) == (p.UNKNOWN_ERROR, "42")


def test_tx_ack_warning_accepted() -> None:
    r = p.parse_tx_ack(b'{"txpk_ack":{"warn":"TX_POWER","value":14}}')
    assert (r.result, r.ok, r.error, r.warning, r.value) == (p.SUCCESS, True, None, "TX_POWER", 14)


@pytest.mark.parametrize("body", [b"{", b"txpk_ack", b"[]", b'{"txpk_ack":"TOO_LATE"}', b"\xff\xfe"])
def test_tx_ack_malformed(body: bytes) -> None:
    with pytest.raises(p.PacketError) as exc:
        p.parse_tx_ack(body)
    assert exc.value.reason == "bad_json"


def test_tx_ack_body_encoder_round_trips() -> None:
    assert p.encode_tx_ack_body() == b""
    assert p.encode_tx_ack_body("TOO_LATE") == b'{"txpk_ack":{"error":"TOO_LATE"}}'
    assert p.encode_tx_ack_body(warning="TX_POWER", value=14) == b'{"txpk_ack":{"warn":"TX_POWER","value":14}}'
    assert p.parse_tx_ack(p.encode_tx_ack_body("COLLISION_PACKET")).result == p.COLLISION_PACKET
