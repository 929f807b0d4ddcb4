"""Semtech UDP JSON <-> ttn.lorawan.v3 messages, sans-I/O.

Uplinks follow The Things Stack's mapping of `rxpk` (see docs), with these deliberate improvements:

- a top-level `rssis` becomes `signal_rssi` (the reference ignores it);
- an invalid `time` string is ignored instead of failing the whole PUSH_DATA;
- identical `data` reported twice in one PUSH_DATA is forwarded once, the copy with the strongest RSSI;
- a bad value in one rxpk drops only that rxpk, with a bounded reason for the metric;
- what one rxpk can make us do is bounded: `data` beyond LoRa's 255 bytes and `rsig` with more than `MAX_RSIG`
  entries drop the rxpk, over-long `time` and `etime` strings are ignored. (How many rxpk one PUSH_DATA may
  carry is the caller's bound: `max_rxpk_per_datagram`.)

The JSON body is decoded by the caller (orjson) so the PUSH_ACK can go out first. Correlation ids are left to
the caller (`gs:uplink:<ULID>` per message): generating ULIDs needs a clock and randomness, which this module
does not touch.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

import orjson
from google.protobuf.message import DecodeError

from gatewayserver.gpstime import gps_ms_to_unix_ns
from gatewayserver.lorawan.phypayload import PayloadError, parse_phypayload
from gatewayserver.tokens import UplinkTokens
from gatewayserver.ttnpb import enums_pb2, gateway_pb2, identifiers_pb2, messages_pb2, metadata_pb2

UplinkMessage = messages_pb2.UplinkMessage
GatewayStatus = gateway_pb2.GatewayStatus
GatewayIdentifiers = identifiers_pb2.GatewayIdentifiers
Location = metadata_pb2.Location

NS: Final = 1_000_000_000
_UINT32: Final = 1 << 32
# Bounds on what one rxpk may make us do. A LoRa PHYPayload is at most 255 bytes (340 base64 characters); the
# multi-antenna gateways that send `rsig` have 2 to 8 antennas, so 16 leaves room and caps the RxMetadata (and the
# signed uplink tokens) one rxpk can ask for; time strings are at most 35 characters in any form forwarders write.
MAX_PAYLOAD_BYTES: Final = 255
_MAX_PAYLOAD_BASE64: Final = 340
MAX_RSIG: Final = 16
_MAX_TIME_TEXT: Final = 64
_MAX_ETIME_BASE64: Final = 64  # an encrypted fine timestamp is one 16-byte AES block
_SOURCE_GPS: Final = metadata_pb2.SOURCE_GPS
_MICROSECOND: Final = timedelta(microseconds=1)


class TranslateError(ValueError):
    """The JSON body as a whole cannot be translated (for instance `rxpk` that is not a list)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(slots=True, frozen=True)
class DroppedUplink:
    """One rxpk that did not become an UplinkMessage.

    `reason` is bounded (metric label): `malformed` (not an object, or a value of an impossible type),
    `payload` (missing/bad base64 or not a LoRaWAN 1.x frame), `crc`, `frequency`, `data_rate`, `timestamp`,
    `duplicate` (same data as a stronger copy in the same PUSH_DATA).
    """

    index: int
    reason: str
    detail: str = ""


class _Drop(Exception):
    __slots__ = ("reason", "detail")

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail


# Concentrator clock hook: (tmst, server time ns, gateway time ns or None) -> unwrapped concentrator time ns.
ClockSync = Callable[[int, int, "int | None"], int]


# --- small parsers --------------------------------------------------------------------------------------------


def decode_base64(text: str) -> bytes:
    """Standard base64 with or without padding; anything else (stray characters, URL alphabet) is refused."""
    rem = len(text) & 3
    if rem:
        if rem == 1:
            raise ValueError("impossible base64 length")
        text += "==" if rem == 2 else "="
    return binascii.a2b_base64(text, strict_mode=True)


def frequency_hz(mhz: Any) -> int:
    """MHz as the forwarder writes it -> Hz, exactly: 868.1 -> 868100000 (int(868.1e6) could give ...99999)."""
    t = type(mhz)
    if t is float:
        if not 0.1 <= mhz <= 10_000.0:  # also false for NaN
            raise ValueError(f"frequency {mhz!r} MHz out of range")
        return round(mhz * 1e6)
    if t is int:
        if not 0 < mhz <= 10_000:
            raise ValueError(f"frequency {mhz!r} MHz out of range")
        return mhz * 1_000_000
    raise ValueError(f"frequency is a {t.__name__}")


def format_mhz(hz: int) -> float:
    """Hz -> MHz as a float whose shortest repr has the exact decimal digits (868100000 -> 868.1)."""
    q, r = divmod(hz, 1_000_000)
    return float(f"{q}.{r:06d}")


def _khz(hz: int) -> str:
    q, r = divmod(hz, 1000)
    return str(q) if r == 0 else f"{q}.{r:03d}".rstrip("0")


# Data rate kinds in the cache below.
_LORA: Final = 0
_FSK: Final = 1
_LRFHSS: Final = 2

_DR_CACHE: dict[tuple[type, Any, Any], tuple[int, int, int, str]] = {}
_DR_CACHE_MAX: Final = 512


def _reduce_fraction(codr: str) -> str:
    a, sep, b = codr.partition("/")
    if sep and a.isdigit() and b.isdigit() and int(b):
        x, y = int(a), int(b)
        g = math.gcd(x, y)
        return f"{x // g}/{y // g}"
    return codr


def parse_data_rate(datr: Any, codr: Any) -> tuple[int, int, int, str]:
    """`datr`/`codr` -> (kind, a, b, coding rate).

    LoRa: (_LORA, spreading factor, bandwidth Hz, codr as sent). FSK: (_FSK, bit rate, 0, ""). LR-FHSS:
    (_LRFHSS, modulation type, operating channel width Hz, reduced codr: "4/6" -> "2/3"). Raises ValueError.
    Results are cached: forwarders use a handful of distinct strings.
    """
    # The type is part of the key: True == 1 and 1.0 == 1 hash alike, and `datr: true` must not find the FSK
    # entry a `datr: 1` left behind (it did, whenever such a datagram came first).
    key = (type(datr), datr, codr)
    try:
        return _DR_CACHE[key]
    except (KeyError, TypeError):
        pass
    t = type(datr)
    if t is int or t is float:
        if not 0 < datr < _UINT32 or (t is float and not float(datr).is_integer()):
            raise ValueError(f"FSK bit rate {datr!r}")
        result = (_FSK, int(datr), 0, "")
    elif t is str:
        if datr[:2] == "SF":
            bw_at = datr.find("BW", 2)
            sf_text, bw_text = datr[2:bw_at], datr[bw_at + 2 :]
            if bw_at < 0 or not sf_text.isdigit() or not sf_text.isascii():
                raise ValueError(f"LoRa data rate {datr!r}")
            sf = int(sf_text)
            bw = _positive_khz(bw_text)
            if not 5 <= sf <= 12:
                raise ValueError(f"spreading factor {sf}")
            cr = codr if type(codr) is str else ""
            result = (_LORA, sf, bw, cr)
        elif datr[:1] == "M" and "CW" in datr:
            mod_text, _, cw_text = datr[1:].partition("CW")
            if not mod_text.isdigit() or not mod_text.isascii():
                raise ValueError(f"LR-FHSS data rate {datr!r}")
            mod = int(mod_text)
            if mod >= _UINT32:
                raise ValueError(f"LR-FHSS data rate {datr!r}")
            cr = _reduce_fraction(codr) if type(codr) is str else ""
            result = (_LRFHSS, mod, _positive_khz(cw_text), cr)
        elif datr.isdigit() and datr.isascii():
            bit_rate = int(datr)
            if not 0 < bit_rate < _UINT32:
                raise ValueError(f"FSK bit rate {datr!r}")
            result = (_FSK, bit_rate, 0, "")
        else:
            raise ValueError(f"data rate {datr!r}")
    else:
        raise ValueError(f"data rate is a {t.__name__}")
    if len(_DR_CACHE) < _DR_CACHE_MAX and type(codr) in (str, type(None)):
        _DR_CACHE[key] = result
    return result


def _positive_khz(text: str) -> int:
    # Digits with at most one dot, nothing else (float() would accept "inf", "1e3", " 125", "1_25").
    if not text or not text.replace(".", "", 1).isdigit() or not text.isascii():
        raise ValueError(f"bandwidth {text!r}")
    hz = round(float(text) * 1000)
    if not 0 < hz < _UINT32:
        raise ValueError(f"bandwidth {text!r}")
    return hz


_EPOCH_ORDINAL: Final = 719163  # date(1970, 1, 1).toordinal()


def parse_time_ns(text: Any) -> int | None:
    """UTC time string -> Unix ns, or None when it is not one.

    Accepts ISO 8601 / RFC 3339 as the forwarder writes `time` (`2026-11-22T03:09:23.528002Z`; `T` or space;
    fraction up to 9 digits kept to the ns; `Z`, an offset or nothing = UTC) and the stat form
    `2026-11-22 03:09:23 GMT`. `datetime.fromisoformat` (C) does the validation; a bare date is refused.
    """
    if type(text) is not str or not 19 <= len(text) <= _MAX_TIME_TEXT or not text.isascii():
        return None
    s = text
    if s[-4:] in (" GMT", " UTC"):
        s = s[:-4]
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        return None
    ns = (
        (d.toordinal() - _EPOCH_ORDINAL) * 86400 + d.hour * 3600 + d.minute * 60 + d.second
    ) * NS + d.microsecond * 1000
    if d.tzinfo is not None:
        offset = d.utcoffset()
        if offset:
            ns -= (offset // _MICROSECOND) * 1000
    # fromisoformat keeps µs; forwarders with fine timestamps may write ns.
    dot = s.find(".", 19)
    if dot > 0 and len(s) > dot + 7:
        extra = s[dot + 7 : dot + 10]
        k = 0
        while k < len(extra) and "0" <= extra[k] <= "9":
            k += 1
        if k:
            ns += int(extra[:k].ljust(3, "0"))
    return ns


def _as_int(v: Any) -> int | None:
    t = type(v)
    if t is int:
        return v
    if t is float and v.is_integer():
        return int(v)
    return None


def _as_num(v: Any) -> float | int | None:
    t = type(v)
    if t is float:
        return v if math.isfinite(v) else None
    if t is int and -(1 << 53) < v < (1 << 53):
        return v
    return None


# --- uplinks --------------------------------------------------------------------------------------------------
#
# Speed: with upb every sub-message access costs about as much as parsing a few bytes, so the parts of an
# UplinkMessage that are the same for every rxpk of a connection or a datagram (gateway ids, received_at, the
# data rate) are written once as protobuf wire bytes and parsed in one `FromString`; the rest is plain field
# assignment. Protobuf merges concatenated encodings of a message, which is what makes the templates composable.


def _varint(v: int) -> bytes:
    if v < 0x80:
        return bytes((v,))
    if v < 0x4000:
        return bytes((v & 0x7F | 0x80, v >> 7))
    if v < 0x200000:
        return bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14))
    if v < 0x10000000:
        return bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14 & 0x7F | 0x80, v >> 21))
    if v < 0x800000000:
        return bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14 & 0x7F | 0x80, v >> 21 & 0x7F | 0x80, v >> 28))
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _timestamp_bytes(ns: int) -> bytes:
    seconds, nanos = divmod(ns, NS)
    return (b"\x08" + _varint(seconds) if seconds else b"") + (b"\x10" + _varint(nanos) if nanos else b"")


_DR_WIRE: dict[tuple[int, int, int, str], bytes] = {}


def _data_rate_wire(dr: tuple[int, int, int, str]) -> bytes:
    """UplinkMessage wire bytes holding only settings.data_rate."""
    wire = _DR_WIRE.get(dr)
    if wire is None:
        kind, a, b, cr = dr
        up = UplinkMessage()
        rate = up.settings.data_rate
        if kind == _LORA:
            rate.lora.spreading_factor = a
            rate.lora.bandwidth = b
            rate.lora.coding_rate = cr
        elif kind == _FSK:
            rate.fsk.bit_rate = a
        else:
            rate.lrfhss.modulation_type = a
            rate.lrfhss.operating_channel_width = b
            rate.lrfhss.coding_rate = cr
            rate.lrfhss.SetInParent()
        wire = up.SerializeToString()
        if len(_DR_WIRE) < _DR_CACHE_MAX:
            _DR_WIRE[dr] = wire
    return wire


class UplinkTranslator:
    """Translates the `rxpk` arrays of one gateway connection; build one per connection and reuse it.

    - `tokens`: when given, every RxMetadata gets an authenticated `uplink_token` for its antenna.
      `clock_sync(tmst, received_at_ns, gateway_time_ns | None)` is called once per uplink to obtain the unwrapped
      concentrator time for the token (the connection's clock); without it, `tmst * 1000` is used.
    - `drop_crc_failed`: `stat: -1` frames are dropped (`crc`) unless False, in which case they are returned
      with `crc_status` false for the caller to decide (`forward_crc_failed`).
    - `antenna_locations[i]`: registry location injected into RxMetadata of antenna i (pass only public ones).
    - `downlink_path_constraint`: copied into every RxMetadata (the registry's setting).
    """

    __slots__ = (
        "gateway_ids",
        "tokens",
        "clock_sync",
        "drop_crc_failed",
        "antenna_locations",
        "downlink_path_constraint",
        "_gateway_id",
        "_eui",
        "_md_static",
    )

    def __init__(
        self,
        gateway_ids: GatewayIdentifiers,
        *,
        tokens: UplinkTokens | None = None,
        clock_sync: ClockSync | None = None,
        drop_crc_failed: bool = True,
        antenna_locations: Sequence[Location | None] = (),
        downlink_path_constraint: int = 0,
    ) -> None:
        self.gateway_ids = gateway_ids
        self.tokens = tokens
        self.clock_sync = clock_sync
        self.drop_crc_failed = drop_crc_failed
        self.antenna_locations = tuple(antenna_locations)
        self.downlink_path_constraint = downlink_path_constraint
        self._gateway_id = gateway_ids.gateway_id
        self._eui = gateway_ids.eui
        # RxMetadata fields shared by every antenna: gateway ids and the path constraint.
        md = metadata_pb2.RxMetadata()
        md.gateway_ids.CopyFrom(gateway_ids)
        md.gateway_ids.SetInParent()
        if downlink_path_constraint:
            # A registry number, validated there as a DownlinkPathConstraint value.
            md.downlink_path_constraint = cast(enums_pb2.DownlinkPathConstraint, downlink_path_constraint)
        self._md_static = md.SerializeToString()

    def translate(
        self, rxpks: Any, received_at_ns: int, drops: list[DroppedUplink] | None = None
    ) -> list[UplinkMessage]:
        """Translate one PUSH_DATA's `rxpk` array received (socket read) at `received_at_ns` (Unix ns).

        Every rxpk that is not returned is appended to `drops` (when given) with a bounded reason. Raises
        `TranslateError` only when `rxpks` is not a list.
        """
        if type(rxpks) is not list:
            raise TranslateError("malformed", "rxpk is not an array")
        out: list[UplinkMessage] = []
        rssis: list[float] = []
        index_by_raw: dict[bytes, int] = {}
        received_at = _timestamp_bytes(received_at_ns)
        received_at_field = b"\x32" + _varint(len(received_at)) + received_at  # UplinkMessage.received_at (6)
        md = self._md_static + b"\xb2\x01" + _varint(len(received_at)) + received_at  # RxMetadata.received_at (22)
        md_field = b"\x2a" + _varint(len(md)) + md  # UplinkMessage.rx_metadata (5)
        prefix = received_at_field + md_field
        for i, rx in enumerate(rxpks):
            try:
                up, raw, best_rssi = self._uplink(rx, received_at_ns, prefix, md)
            except _Drop as d:
                if drops is not None:
                    drops.append(DroppedUplink(i, d.reason, d.detail))
                continue
            except (ValueError, TypeError, OverflowError, AttributeError, DecodeError) as exc:
                # A field of an impossible type or range that the explicit checks let through.
                if drops is not None:
                    drops.append(DroppedUplink(i, "malformed", str(exc)[:200]))
                continue
            j = index_by_raw.get(raw)
            if j is None:
                index_by_raw[raw] = len(out)
                out.append(up)
                rssis.append(best_rssi)
            elif best_rssi > rssis[j]:
                out[j] = up
                rssis[j] = best_rssi
                if drops is not None:
                    drops.append(DroppedUplink(i, "duplicate", "weaker copy replaced"))
            elif drops is not None:
                drops.append(DroppedUplink(i, "duplicate"))
        return out

    def _uplink(
        self, rx: Any, received_at_ns: int, prefix: bytes, md_wire: bytes
    ) -> tuple[UplinkMessage, bytes, float]:
        if type(rx) is not dict:
            raise _Drop("malformed", "rxpk entry is not an object")
        get = rx.get

        stat = get("stat")
        if stat == -1 and self.drop_crc_failed:
            raise _Drop("crc")

        data = get("data")
        if type(data) is not str:
            raise _Drop("payload", "no data")
        if len(data) > _MAX_PAYLOAD_BASE64:
            raise _Drop("payload", f"data longer than {MAX_PAYLOAD_BYTES} bytes")
        try:
            raw = decode_base64(data)
        except (ValueError, binascii.Error) as exc:
            raise _Drop("payload", "data is not base64") from exc

        try:
            hz = frequency_hz(get("freq"))
        except ValueError as exc:
            raise _Drop("frequency", str(exc)) from exc

        try:
            dr = parse_data_rate(get("datr"), get("codr"))
        except ValueError as exc:
            raise _Drop("data_rate", str(exc)) from exc

        tmst = get("tmst", 0)
        if type(tmst) is not int:
            tmst = _as_int(tmst)
            if tmst is None:
                raise _Drop("timestamp", "tmst is not an integer")
        if not 0 <= tmst < _UINT32:
            raise _Drop("timestamp", "tmst out of uint32 range")

        rsig = get("rsig")
        entries: list[dict[str, Any]]
        if type(rsig) is list and rsig:
            if len(rsig) > MAX_RSIG:
                raise _Drop("malformed", f"rsig has {len(rsig)} entries, more than {MAX_RSIG}")
            entries = [s for s in rsig if type(s) is dict]
            if not entries:
                raise _Drop("malformed", "rsig has no objects")
            signal_key = "rssic"
        else:
            entries = [rx]
            signal_key = "rssi"

        up = UplinkMessage.FromString(prefix + _data_rate_wire(dr))
        try:
            parse_phypayload(raw, up.payload)
        except PayloadError as exc:
            raise _Drop("payload", str(exc)) from exc
        up.raw_payload = raw

        # Gateway time: GPS (tmms, with leap seconds) wins over the forwarder's `time`.
        gps = False
        time_ns: int | None = None
        tmms = get("tmms")
        if tmms is not None:
            tmms = _as_int(tmms)
            if tmms is not None and 0 < tmms < (1 << 53):
                time_ns = gps_ms_to_unix_ns(tmms)
                gps = True
        if time_ns is None:
            t = get("time")
            if t is not None:
                time_ns = parse_time_ns(t)

        settings = up.settings
        settings.frequency = hz
        settings.timestamp = tmst
        if time_ns is not None:
            time_s, time_frac = divmod(time_ns, NS)
            st = settings.time
            st.seconds = time_s
            st.nanos = time_frac
        if stat == 1:
            up.crc_status.value = True
        elif stat == -1:
            up.crc_status.SetInParent()

        tokens = self.tokens
        concentrator_ns = 0
        if tokens is not None:
            sync = self.clock_sync
            # Only GPS time (tmms) is an absolute gateway clock; a forwarder's `time` may be its unsynchronised
            # system clock and must not make the gateway look GPS-capable for class B.
            gps_ns = time_ns if gps else None
            concentrator_ns = sync(tmst, received_at_ns, gps_ns) if sync is not None else tmst * 1000

        # Fields of the rxpk itself that belong in every antenna's metadata: the LR-FHSS hopping width, and the key
        # id of the encrypted fine timestamps (one key per rxpk, not per `rsig` entry).
        hopping_width = _as_int(get("hpw"))
        if hopping_width is not None and not 0 <= hopping_width < _UINT32:
            hopping_width = None
        key_id = _as_int(get("aesk"))

        mds = up.rx_metadata
        best_rssi = -math.inf
        locations = self.antenna_locations
        for n, sig in enumerate(entries):
            sget = sig.get
            if n == 0:
                md = mds[0]
            else:
                md = mds.add()
                md.MergeFromString(md_wire)
            antenna = 0
            if sig is not rx:
                antenna = sget("ant", 0)
                if type(antenna) is not int:
                    antenna = _as_int(antenna) or 0
                if antenna:
                    md.antenna_index = antenna
            md.timestamp = tmst
            if time_ns is not None:
                mt = md.time
                mt.seconds = time_s
                mt.nanos = time_frac
                if gps:
                    mg = md.gps_time
                    mg.seconds = time_s
                    mg.nanos = time_frac

            v = sget("chan")
            if v is not None:
                v = _as_int(v)
                if v is not None and 0 <= v < _UINT32:
                    md.channel_index = v
            v = _as_num(sget(signal_key))
            if v is not None:
                md.rssi = v
                md.channel_rssi = v
                if v > best_rssi:
                    best_rssi = v
            v = _as_num(sget("rssis"))
            if v is not None:
                md.signal_rssi.value = v
            v = _as_num(sget("lsnr"))
            if v is not None:
                md.snr = v
            v = sget("foff")
            if v is not None:
                v = _as_int(v)
                if v is not None and -(1 << 63) <= v < (1 << 63):
                    md.frequency_offset = v
            v = sget("ftime")
            if v is not None:
                v = _as_int(v)
                if v is not None and 0 <= v < NS:
                    md.fine_timestamp = v
            if hopping_width:
                md.hopping_width = hopping_width
            if sig is not rx:
                v = _as_num(sget("rssisd"))
                if v is not None:
                    md.rssi_standard_deviation = v
                v = sget("fdri")
                if v is not None:
                    v = _as_int(v)
                    if v is not None and -(1 << 31) <= v < (1 << 31):
                        md.frequency_drift = v
                v = sget("etime")
                if type(v) is str and 0 < len(v) <= _MAX_ETIME_BASE64:
                    try:
                        md.encrypted_fine_timestamp = decode_base64(v)
                    except (ValueError, binascii.Error):
                        pass
                    else:
                        if key_id is not None:
                            md.encrypted_fine_timestamp_key_id = str(key_id)
            if locations and 0 <= antenna < len(locations):
                loc = locations[antenna]
                if loc is not None:
                    md.location.CopyFrom(loc)
            if tokens is not None:
                md.uplink_token = tokens.issue(
                    self._gateway_id,
                    self._eui,
                    antenna,
                    tmst,
                    received_at_ns,
                    concentrator_ns,
                    time_ns if gps else None,
                )
        return up, raw, best_rssi


def uplinks_from_rxpk(
    rxpks: Any,
    gateway_ids: GatewayIdentifiers,
    received_at_ns: int,
    *,
    drops: list[DroppedUplink] | None = None,
    drop_crc_failed: bool = True,
    tokens: UplinkTokens | None = None,
    clock_sync: ClockSync | None = None,
    antenna_locations: Sequence[Location | None] = (),
    downlink_path_constraint: int = 0,
) -> list[UplinkMessage]:
    """One-shot form of `UplinkTranslator(...).translate(rxpks, received_at_ns, drops)`.

    `received_at_ns` is when the datagram was read from the socket (Unix ns); it is set on the message and on every
    RxMetadata and is the tokens' server time. Connections should keep an `UplinkTranslator` instead, which
    prepares the per-gateway parts once.
    """
    translator = UplinkTranslator(
        gateway_ids,
        tokens=tokens,
        clock_sync=clock_sync,
        drop_crc_failed=drop_crc_failed,
        antenna_locations=antenna_locations,
        downlink_path_constraint=downlink_path_constraint,
    )
    return translator.translate(rxpks, received_at_ns, drops)


# --- status ---------------------------------------------------------------------------------------------------

# stat key -> metric key: the reference names first, then the optional extras under their own names.
_METRICS: Final = (
    ("rxnb", "rxin"),
    ("rxok", "rxok"),
    ("rxfw", "rxfw"),
    ("ackr", "ackr"),
    ("dwnb", "txin"),
    ("txnb", "txok"),
    ("temp", "temp"),
    ("lpps", "lpps"),
    ("lmnw", "lmnw"),
    ("lmst", "lmst"),
    ("lmok", "lmok"),
)
# Version-like stat keys kept under their own names (all match the GatewayStatus key pattern).
_VERSION_KEYS: Final = ("fpga", "dsp", "hal", "hver", "pfrm", "firmware")

# Positions forwarders report when they have no fix: (0, 0) and sample-configuration defaults such as (10, 20).
FAKE_LOCATIONS: Final = frozenset({(0.0, 0.0), (10.0, 20.0)})


def status_from_stat(stat: Any, received_at_ns: int, ip: str | None = None) -> GatewayStatus:
    """Translate a `stat` object.

    - `time` (`2026-11-22 03:09:23 GMT` or ISO 8601) -> `time`; unparseable -> unset. `boot` likewise -> boot_time.
    - `fpga dsp hal hver pfrm firmware` -> `versions` (numbers rendered as decimal, values cut to 128 chars).
    - `rxnb rxok rxfw ackr dwnb txnb` -> metrics `rxin rxok rxfw ackr txin txok`; extras `temp lpps lmnw lmst lmok`
      under their own names. Only keys present as numbers are set.
    - `lati long [alti]` -> one antenna location (source GPS) unless missing, out of range, or a known fake:
      (0, 0) within 1e-6 degrees and the sample-configuration default (10, 20); a forwarder without a GPS fix
      reports one of these, and a wrong location is worse than none.
    - `ip` -> `ip` (the datagram's source address, supplied by the shell).
    Raises `TranslateError` when `stat` is not an object.
    """
    if type(stat) is not dict:
        raise TranslateError("malformed", "stat is not an object")
    status = GatewayStatus()
    t = parse_time_ns(stat.get("time"))
    if t is not None:
        status.time.seconds, status.time.nanos = divmod(t, NS)
    boot = parse_time_ns(stat.get("boot"))
    if boot is not None:
        status.boot_time.seconds, status.boot_time.nanos = divmod(boot, NS)

    versions = status.versions
    for key in _VERSION_KEYS:
        v = stat.get(key)
        if type(v) is str:
            if v:
                versions[key] = v[:128]
        elif type(v) is int or type(v) is float:
            versions[key] = str(v)

    metrics = status.metrics
    for src, dst in _METRICS:
        v = _as_num(stat.get(src))
        if v is not None:
            metrics[dst] = v

    lat = _as_num(stat.get("lati"))
    lon = _as_num(stat.get("long"))
    if lat is not None and lon is not None and _plausible_location(float(lat), float(lon)):
        loc = status.antenna_locations.add()
        loc.latitude = lat
        loc.longitude = lon
        alt = _as_num(stat.get("alti"))
        if alt is not None and -(1 << 31) <= alt < (1 << 31):
            loc.altitude = int(round(alt))
        loc.source = _SOURCE_GPS

    if ip:
        status.ip.append(ip)
    return status


def _plausible_location(lat: float, lon: float) -> bool:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return False
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        return False
    return (lat, lon) not in FAKE_LOCATIONS


# --- downlink -------------------------------------------------------------------------------------------------


def tx_power_dbm(eirp_dbm: float) -> int:
    """txpk `powe` from EIRP: EIRP - 2.15 dB, truncated toward zero (16.15 -> 14, 29.15 -> 27).

    Computed in hundredths of a dB so that binary floating point cannot turn 14.0 into 13.999...
    """
    centi = round(eirp_dbm * 100) - 215
    return centi // 100 if centi >= 0 else -((-centi) // 100)


def txpk_from_downlink(
    payload: bytes,
    *,
    frequency_hz: int,
    eirp_dbm: float,
    spreading_factor: int = 0,
    bandwidth_hz: int = 0,
    coding_rate: str = "4/5",
    bit_rate: int = 0,
    frequency_deviation_hz: int | None = None,
    timestamp: int | None = None,
    gps_time_ms: int | None = None,
    immediate: bool = False,
    invert_polarization: bool = True,
    rf_chain: int = 0,
) -> bytes:
    """A PULL_RESP body `{"txpk": {...}}` as the reference Gateway Server writes it.

    When: `timestamp` (concentrator µs, uint32) wins over `gps_time_ms` (tmms) over `immediate`; one is required.
    LoRa when `spreading_factor` is set (`datr` "SF9BW125", `codr`, `ipol`), FSK when `bit_rate` is set (`datr`
    as a number, `fdev` defaulting to half the bit rate, as LoRaWAN's 50 kbit/s with 25 kHz). `eirp_dbm` must
    already have the antenna gain removed; `powe` is derived with `tx_power_dbm`. `ncrc` is always true (LoRaWAN
    downlinks carry no PHY CRC).
    """
    txpk: dict[str, Any] = {}
    if timestamp is not None:
        txpk["tmst"] = timestamp % _UINT32
    elif gps_time_ms is not None:
        txpk["tmms"] = gps_time_ms
    elif immediate:
        txpk["imme"] = True
    else:
        raise ValueError("one of timestamp, gps_time_ms or immediate is required")
    txpk["freq"] = format_mhz(frequency_hz)
    txpk["rfch"] = rf_chain
    txpk["powe"] = tx_power_dbm(eirp_dbm)
    if spreading_factor:
        if not bandwidth_hz:
            raise ValueError("LoRa needs bandwidth_hz")
        txpk["modu"] = "LORA"
        txpk["datr"] = f"SF{spreading_factor}BW{_khz(bandwidth_hz)}"
        txpk["codr"] = coding_rate
        txpk["ipol"] = invert_polarization
    elif bit_rate:
        txpk["modu"] = "FSK"
        txpk["datr"] = bit_rate
        txpk["fdev"] = frequency_deviation_hz if frequency_deviation_hz is not None else bit_rate // 2
    else:
        raise ValueError("spreading_factor (LoRa) or bit_rate (FSK) is required")
    txpk["size"] = len(payload)
    txpk["ncrc"] = True
    txpk["data"] = binascii.b2a_base64(payload, newline=False).decode("ascii")
    return orjson.dumps({"txpk": txpk})


def txpk_from_scheduled(
    message: messages_pb2.DownlinkMessage, tx_power: float, *, immediate: bool, gps_time_ms: int | None
) -> bytes:
    """The PULL_RESP body for a downlink the core scheduled (`message.scheduled`), timed as the core said:
    `imme` when the gateway's clock is unknown, `tmms` by its GPS clock, else `tmst`."""
    settings = message.scheduled
    data_rate = settings.data_rate
    timestamp = None if immediate or gps_time_ms is not None else settings.timestamp
    if data_rate.WhichOneof("modulation") == "fsk":
        return txpk_from_downlink(
            message.raw_payload, frequency_hz=settings.frequency, eirp_dbm=tx_power, bit_rate=data_rate.fsk.bit_rate,
            timestamp=timestamp, gps_time_ms=gps_time_ms, immediate=immediate,
        )
    lora = data_rate.lora
    return txpk_from_downlink(
        message.raw_payload, frequency_hz=settings.frequency, eirp_dbm=tx_power,
        spreading_factor=lora.spreading_factor, bandwidth_hz=lora.bandwidth, coding_rate=lora.coding_rate or "4/5",
        timestamp=timestamp, gps_time_ms=gps_time_ms, immediate=immediate,
    )
