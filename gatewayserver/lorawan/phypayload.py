"""LoRaWAN 1.x PHYPayload -> `ttn.lorawan.v3.Message`, sans-I/O.

The Gateway Server parses frames only to route them (DevAddr prefix, join vs. data) and to give the Network
Server the structured form it expects; nothing is decrypted or MIC-checked here. EUIs, DevAddr and NetID travel
little-endian on air and are stored big-endian, as the reference does. The join-accept is encrypted end to end
(MIC included), so it is kept whole in `join_accept_payload.encrypted`.

Fields are assigned one by one on the message (much faster than keyword constructors with upb).
"""

from __future__ import annotations

from typing import Final, cast

from gatewayserver.ttnpb import lorawan_pb2

Message = lorawan_pb2.Message

JOIN_REQUEST: Final = 0
JOIN_ACCEPT: Final = 1
UNCONFIRMED_UP: Final = 2
UNCONFIRMED_DOWN: Final = 3
CONFIRMED_UP: Final = 4
CONFIRMED_DOWN: Final = 5
REJOIN_REQUEST: Final = 6
PROPRIETARY: Final = 7

_MIC = 4
_JOIN_REQUEST_LEN = 23  # MHDR JoinEUI(8) DevEUI(8) DevNonce(2) MIC
_REJOIN_0_2_LEN = 19  # MHDR type NetID(3) DevEUI(8) RJcount0(2) MIC
_REJOIN_1_LEN = 24  # MHDR type JoinEUI(8) DevEUI(8) RJcount1(2) MIC
_DATA_MIN_LEN = 12  # MHDR DevAddr(4) FCtrl FCnt(2) MIC


class PayloadError(ValueError):
    """Not a LoRaWAN 1.x frame the Gateway Server can forward. `reason` is a short fixed string."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def parse_phypayload(data: bytes, msg: Message | None = None) -> Message:
    """Parse `data` into `msg` (a fresh Message when None) and return it.

    Raises `PayloadError` for an empty frame, a major version other than LoRaWAN R1, a length that does not fit
    the message type, an FOptsLen running into the MIC, or an unknown rejoin type. On error `msg` may have been
    partly filled; pass a scratch message or discard it.
    """
    n = len(data)
    if n == 0:
        raise PayloadError("too_short", "empty frame")
    mhdr = data[0]
    major = mhdr & 0x03
    if major != 0:
        raise PayloadError("major", str(major))
    m_type = mhdr >> 5
    if msg is None:
        msg = Message()
    hdr = msg.m_hdr
    hdr.SetInParent()
    # The stubs type enum fields as the enum's class; the 3 MType bits are always one of its values.
    hdr.m_type = cast(lorawan_pb2.MType, m_type)

    if m_type == UNCONFIRMED_UP or m_type == CONFIRMED_UP or m_type == UNCONFIRMED_DOWN or m_type == CONFIRMED_DOWN:
        if n < _DATA_MIN_LEN:
            raise PayloadError("too_short", f"{n} bytes for a data frame")
        f_ctrl_byte = data[5]
        f_opts_end = 8 + (f_ctrl_byte & 0x0F)
        mic_at = n - _MIC
        if f_opts_end > mic_at:
            raise PayloadError("f_opts_len", f"FOptsLen {f_ctrl_byte & 0x0F} exceeds the frame")
        mac = msg.mac_payload
        f_hdr = mac.f_hdr
        f_hdr.dev_addr = data[4:0:-1]
        f_ctrl = f_hdr.f_ctrl
        f_ctrl.SetInParent()
        if f_ctrl_byte & 0x80:
            f_ctrl.adr = True
        if f_ctrl_byte & 0x20:
            f_ctrl.ack = True
        if m_type == UNCONFIRMED_UP or m_type == CONFIRMED_UP:
            if f_ctrl_byte & 0x40:
                f_ctrl.adr_ack_req = True
            if f_ctrl_byte & 0x10:
                f_ctrl.class_b = True
        elif f_ctrl_byte & 0x10:
            f_ctrl.f_pending = True
        f_hdr.f_cnt = data[6] | (data[7] << 8)
        if f_opts_end > 8:
            f_hdr.f_opts = data[8:f_opts_end]
        if mic_at > f_opts_end:
            mac.f_port = data[f_opts_end]
            if mic_at > f_opts_end + 1:
                mac.frm_payload = data[f_opts_end + 1 : mic_at]
        msg.mic = data[mic_at:]
        return msg

    if m_type == JOIN_REQUEST:
        if n != _JOIN_REQUEST_LEN:
            raise PayloadError("length", f"{n} bytes for a join-request")
        jr = msg.join_request_payload
        jr.join_eui = data[8:0:-1]
        jr.dev_eui = data[16:8:-1]
        jr.dev_nonce = data[18:16:-1]
        msg.mic = data[19:]
        return msg

    if m_type == REJOIN_REQUEST:
        if n < 2:
            raise PayloadError("too_short", "rejoin-request without type")
        rejoin_type = data[1]
        rj = msg.rejoin_request_payload
        if rejoin_type == 0 or rejoin_type == 2:
            if n != _REJOIN_0_2_LEN:
                raise PayloadError("length", f"{n} bytes for a rejoin-request type {rejoin_type}")
            rj.rejoin_type = cast(lorawan_pb2.RejoinRequestType, rejoin_type)  # 0 or 2, checked above
            rj.net_id = data[4:1:-1]
            rj.dev_eui = data[12:4:-1]
            rj.rejoin_cnt = data[13] | (data[14] << 8)
            msg.mic = data[15:]
            return msg
        if rejoin_type == 1:
            if n != _REJOIN_1_LEN:
                raise PayloadError("length", f"{n} bytes for a rejoin-request type 1")
            rj.rejoin_type = lorawan_pb2.SESSION  # type 1
            rj.join_eui = data[9:1:-1]
            rj.dev_eui = data[17:9:-1]
            rj.rejoin_cnt = data[18] | (data[19] << 8)
            msg.mic = data[20:]
            return msg
        raise PayloadError("rejoin_type", str(rejoin_type))

    if m_type == JOIN_ACCEPT:
        if n != 17 and n != 33:
            raise PayloadError("length", f"{n} bytes for a join-accept")
        ja = msg.join_accept_payload
        ja.encrypted = data[1:]
        ja.dl_settings.SetInParent()
        return msg

    # PROPRIETARY: the contents are vendor-defined; only the MHDR is meaningful to us.
    return msg
