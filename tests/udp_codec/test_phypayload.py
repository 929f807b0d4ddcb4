"""PHYPayload parsing; frames written byte by byte, expected values read off by hand (wire is little-endian)."""

from __future__ import annotations

import pytest

from gatewayserver.lorawan import PayloadError, parse_phypayload
from gatewayserver.ttnpb import lorawan_pb2


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_unconfirmed_up() -> None:
    m = parse_phypayload(h("40 DA1B0126 80 2A00 0A 0102030405 A1B2C3D4"))
    assert m.m_hdr.m_type == lorawan_pb2.UNCONFIRMED_UP and m.m_hdr.major == lorawan_pb2.LORAWAN_R1
    assert m.mic == h("A1B2C3D4")
    fhdr = m.mac_payload.f_hdr
    assert fhdr.dev_addr == h("26011BDA")
    assert (fhdr.f_ctrl.adr, fhdr.f_ctrl.adr_ack_req, fhdr.f_ctrl.ack, fhdr.f_ctrl.class_b) == (
        True,
        False,
        False,
        False,
    )
    assert not fhdr.f_ctrl.f_pending
    assert fhdr.f_cnt == 42 and fhdr.f_opts == b""
    assert m.mac_payload.f_port == 10 and m.mac_payload.frm_payload == h("0102030405")
    assert m.WhichOneof("Payload") == "mac_payload"


def test_confirmed_up_all_fctrl_bits_and_fopts() -> None:
    m = parse_phypayload(h("80 04030201 F3 FFFF 020304 11223344"))
    assert m.m_hdr.m_type == lorawan_pb2.CONFIRMED_UP
    fhdr = m.mac_payload.f_hdr
    assert fhdr.dev_addr == h("01020304")
    f = fhdr.f_ctrl
    assert (f.adr, f.adr_ack_req, f.ack, f.class_b, f.f_pending) == (True, True, True, True, False)
    assert fhdr.f_cnt == 65535 and fhdr.f_opts == h("020304")
    assert m.mac_payload.f_port == 0 and m.mac_payload.frm_payload == b""
    assert m.mic == h("11223344")


def test_fport_without_frmpayload() -> None:
    m = parse_phypayload(h("40 04030201 00 0100 07 11223344"))
    assert m.mac_payload.f_port == 7 and m.mac_payload.frm_payload == b""


def test_downlink_fpending() -> None:
    m = parse_phypayload(h("60 04030201 B0 0500 11223344"))
    assert m.m_hdr.m_type == lorawan_pb2.UNCONFIRMED_DOWN
    f = m.mac_payload.f_hdr.f_ctrl
    assert (f.adr, f.ack, f.f_pending, f.class_b, f.adr_ack_req) == (True, True, True, False, False)


def test_join_request() -> None:
    m = parse_phypayload(h("00 0807060504030201 1817161514131211 3412 0A0B0C0D"))
    assert m.m_hdr.m_type == lorawan_pb2.JOIN_REQUEST
    assert m.HasField("m_hdr")
    jr = m.join_request_payload
    assert jr.join_eui == h("0102030405060708")
    assert jr.dev_eui == h("1112131415161718")
    assert jr.dev_nonce == h("1234")
    assert m.mic == h("0A0B0C0D")


@pytest.mark.parametrize("rejoin_type", [0, 2])
def test_rejoin_request_type_0_2(rejoin_type: int) -> None:
    m = parse_phypayload(h(f"C0 0{rejoin_type} 030201 1817161514131211 0500 0A0B0C0D"))
    assert m.m_hdr.m_type == lorawan_pb2.REJOIN_REQUEST
    rj = m.rejoin_request_payload
    assert rj.rejoin_type == rejoin_type
    assert rj.net_id == h("010203") and rj.dev_eui == h("1112131415161718") and rj.rejoin_cnt == 5
    assert rj.join_eui == b""
    assert m.mic == h("0A0B0C0D")


def test_rejoin_request_type_1() -> None:
    m = parse_phypayload(h("C0 01 0807060504030201 1817161514131211 0201 0A0B0C0D"))
    rj = m.rejoin_request_payload
    assert rj.rejoin_type == lorawan_pb2.SESSION
    assert rj.join_eui == h("0102030405060708") and rj.dev_eui == h("1112131415161718")
    assert rj.rejoin_cnt == 0x0102 and rj.net_id == b""


def test_join_accept_kept_encrypted() -> None:
    body = h("00112233445566778899AABBCCDDEEFF")
    m = parse_phypayload(h("20") + body)
    assert m.m_hdr.m_type == lorawan_pb2.JOIN_ACCEPT
    assert m.join_accept_payload.encrypted == body


def test_proprietary_mhdr_only() -> None:
    m = parse_phypayload(h("E0 DEADBEEF"))
    assert m.m_hdr.m_type == lorawan_pb2.PROPRIETARY
    assert m.WhichOneof("Payload") is None and m.mic == b""


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("", "too_short"),
        ("41 04030201 00 0100 11223344", "major"),
        ("43 04030201 00 0100 11223344", "major"),
        ("40 04030201 00 0100 112233", "too_short"),
        ("40 04030201", "too_short"),
        ("40 04030201 0F 0100 11223344", "f_opts_len"),
        ("40 04030201 03 0100 0102 11223344", "f_opts_len"),
        ("00 0807060504030201 1817161514131211 3412 0A0B0C", "length"),
        ("00 0807060504030201 1817161514131211 3412 0A0B0C0D EE", "length"),
        ("C0", "too_short"),
        ("C0 03 030201 1817161514131211 0500 0A0B0C0D", "rejoin_type"),
        ("C0 00 030201 1817161514131211 0500 0A0B0C", "length"),
        ("C0 01 030201 1817161514131211 0500 0A0B0C0D", "length"),
        ("20 0011", "length"),
    ],
)
def test_rejected(frame: str, reason: str) -> None:
    with pytest.raises(PayloadError) as exc:
        parse_phypayload(h(frame))
    assert exc.value.reason == reason


def test_fills_given_message() -> None:
    target = lorawan_pb2.Message()
    assert parse_phypayload(h("40 04030201 00 0100 11223344"), target) is target
    assert target.mac_payload.f_hdr.f_cnt == 1
