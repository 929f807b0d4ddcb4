"""Wire compatibility of gatewayserver.ttnpb with The Things Stack's ttn.lorawan.v3.

Every golden byte string below is derived by hand from the field numbers and
wire types of the upstream API, never from our own encoder, so a wrong field
number, a wrong scalar type (int64 vs sint64, float vs double, uint32 vs
fixed32) or a wrong nesting shows up as a byte mismatch.

Reminders used in the derivations:
  tag = (field_number << 3) | wire_type, itself a varint
  wire types: 0 varint, 1 fixed64, 2 length-delimited (LEN), 5 fixed32
  varints are little-endian groups of 7 bits, high bit set on all but the last
  float fields are fixed32 little-endian IEEE-754 single precision
  proto3 repeated scalars (and enums) are packed into one LEN field
  encoders write fields in field-number order (not declaration order)
"""

from __future__ import annotations

from typing import TypeVar

import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.message import Message

from gatewayserver.ttnpb import (
    error_pb2,
    events_pb2,
    gateway_configuration_pb2,
    gateway_pb2,
    gatewayserver_pb2,
    identifiers_pb2,
    lorawan_pb2,
    messages_pb2,
    metadata_pb2,
    networkserver_pb2,
    networkserver_pb2_grpc,
    rights_pb2,
)

M = TypeVar("M", bound=Message)


def h(*parts: str | bytes) -> bytes:
    """Join hex fragments (whitespace ignored) and already-built goldens, so each piece can carry a comment."""
    return b"".join(p if isinstance(p, bytes) else bytes.fromhex("".join(p.split())) for p in parts)


# ---------------------------------------------------------------------------
# Reused fragments

GATEWAY_EUI = bytes.fromhex("58A0CBFFFE800001")

# GatewayIdentifiers{gateway_id: "my-gw", eui: 58A0CBFFFE800001}   (17 bytes)
GATEWAY_IDS = h(
    "0a 05 6d792d6777",  # 1 gateway_id string: tag 1<<3|2 = 0x0a, len 5, "my-gw"
    "12 08 58a0cbfffe800001",  # 2 eui bytes: tag 2<<3|2 = 0x12, len 8
)

# google.protobuf.Timestamp{seconds: 1700000000, nanos: 250000000}   (11 bytes)
#   1700000000 = 13281250*128 + 0   -> 0x80
#   13281250   = 103759*128 + 98    -> 0x80|0x62 = 0xe2
#   103759     = 810*128 + 79       -> 0x80|0x4f = 0xcf
#   810        = 6*128 + 42         -> 0x80|0x2a = 0xaa, then 0x06
#   250000000  = 1953125*128 + 0    -> 0x80
#   1953125    = 15258*128 + 101    -> 0x80|0x65 = 0xe5
#   15258      = 119*128 + 26       -> 0x80|0x1a = 0x9a, then 119 = 0x77
TIMESTAMP = h(
    "08 80e2cfaa06",  # 1 seconds int64: tag 0x08
    "10 80e59a77",  # 2 nanos int32: tag 0x10
)


def _timestamp() -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=250_000_000)


def _gateway_ids() -> identifiers_pb2.GatewayIdentifiers:
    return identifiers_pb2.GatewayIdentifiers(gateway_id="my-gw", eui=GATEWAY_EUI)


def assert_golden(message: M, golden: bytes) -> M:
    """Encoding gives exactly `golden`, and decoding `golden` gives back `message`."""
    assert message.SerializeToString(deterministic=True) == golden
    assert message.SerializeToString() == golden
    parsed = type(message).FromString(golden)
    assert parsed == message
    return parsed


# ---------------------------------------------------------------------------
# Identifiers


def test_gateway_identifiers() -> None:
    parsed = assert_golden(_gateway_ids(), GATEWAY_IDS)
    assert parsed.gateway_id == "my-gw"
    assert parsed.eui == GATEWAY_EUI
    assert len(GATEWAY_IDS) == 17


def test_entity_identifiers_gateway_member() -> None:
    golden = h("22 11", GATEWAY_IDS)  # 4 gateway_ids (oneof ids): tag 4<<3|2 = 0x22, len 17
    parsed = assert_golden(identifiers_pb2.EntityIdentifiers(gateway_ids=_gateway_ids()), golden)
    assert parsed.WhichOneof("ids") == "gateway_ids"


def test_end_device_identifiers_skip_field_3() -> None:
    # Field 3 does not exist upstream; dev_eui is 4, join_eui 5, dev_addr 6.
    golden = h(
        "0a 03 646576",  # 1 device_id "dev"
        "12 05 0a03617070",  # 2 application_ids LEN 5 { 1 application_id "app" }
        "22 08 0004a30b001c0530",  # 4 dev_eui: tag 4<<3|2 = 0x22
        "32 04 260b1234",  # 6 dev_addr: tag 6<<3|2 = 0x32
    )
    msg = identifiers_pb2.EndDeviceIdentifiers(
        device_id="dev",
        application_ids=identifiers_pb2.ApplicationIdentifiers(application_id="app"),
        dev_eui=bytes.fromhex("0004A30B001C0530"),
        dev_addr=bytes.fromhex("260B1234"),
    )
    assert_golden(msg, golden)


# ---------------------------------------------------------------------------
# Uplink

# LoRaDataRate{bandwidth: 125000, spreading_factor: 7, coding_rate: "4/5"}   (11 bytes)
#   125000 = 976*128 + 72 -> 0xc8;  976 = 7*128 + 80 -> 0xd0;  then 0x07
LORA_SF7BW125 = h(
    "08 c8d007",  # 1 bandwidth uint32
    "10 07",  # 2 spreading_factor uint32
    "1a 03 342f35",  # 3 coding_rate string "4/5"
)
# DataRate{lora: ...}   (13 bytes)
DATA_RATE = h("0a 0b", LORA_SF7BW125)  # 1 lora (oneof modulation), len 11

# 868100000 as varint:
#   868100000 = 6782031*128 + 32 -> 0xa0;  6782031 = 52984*128 + 79 -> 0xcf
#   52984 = 413*128 + 120 -> 0xf8;  413 = 3*128 + 29 -> 0x9d;  then 0x03
FREQ_868_1 = "a0cff89d03"
# 1000000 = 7812*128 + 64 -> 0xc0;  7812 = 61*128 + 4 -> 0x84;  then 61 = 0x3d
TIMESTAMP_1S_US = "c0843d"

# TxSettings   (25 bytes)
TX_SETTINGS = h(
    "0a 0d",
    DATA_RATE,  # 1 data_rate, len 13
    "20",
    FREQ_868_1,  # 4 frequency uint64: tag 4<<3|0 = 0x20 (fields 2, 3 are reserved)
    "30",
    TIMESTAMP_1S_US,  # 6 timestamp uint32: tag 6<<3|0 = 0x30
)

# RxMetadata   (55 bytes)
RX_METADATA = h(
    "0a 11",
    GATEWAY_IDS,  # 1 gateway_ids, len 17
    "20",
    TIMESTAMP_1S_US,  # 4 timestamp uint32: tag 0x20
    "45 00 00 28 c2",  # 8 rssi float: tag 8<<3|5 = 0x45; -42.0f = 0xc2280000 LE
    "5d 00 00 18 41",  # 11 snr float: tag 11<<3|5 = 0x5d; 9.5f = 0x41180000 LE
    "7a 03 010203",  # 15 uplink_token bytes: tag 15<<3|2 = 0x7a
    "88 01 02",  # 17 channel_index uint32: tag 17<<3|0 = 136 -> varint 0x88 0x01
    "b2 01 0b",
    TIMESTAMP,  # 22 received_at: tag 22<<3|2 = 178 -> varint 0xb2 0x01, len 11
)

CORRELATION_ID = "gs:uplink:abc"  # 13 bytes
CORRELATION_ID_HEX = "67733a75706c696e6b3a616263"

UPLINK = h(
    "0a 05 4078563412",  # 1 raw_payload bytes
    "22 19",
    TX_SETTINGS,  # 4 settings: tag 0x22, len 25 (field 3 is reserved)
    "2a 37",
    RX_METADATA,  # 5 rx_metadata (repeated message): tag 0x2a, len 55
    "32 0b",
    TIMESTAMP,  # 6 received_at: tag 0x32, len 11
    "3a 0d",
    CORRELATION_ID_HEX,  # 7 correlation_ids: tag 0x3a, len 13
    "5a 02 0801",  # 11 crc_status BoolValue: tag 11<<3|2 = 0x5a { 1 value: true }
)


def _uplink() -> messages_pb2.UplinkMessage:
    return messages_pb2.UplinkMessage(
        raw_payload=bytes.fromhex("4078563412"),
        settings=lorawan_pb2.TxSettings(
            data_rate=lorawan_pb2.DataRate(
                lora=lorawan_pb2.LoRaDataRate(bandwidth=125_000, spreading_factor=7, coding_rate="4/5")
            ),
            frequency=868_100_000,
            timestamp=1_000_000,
        ),
        rx_metadata=[
            metadata_pb2.RxMetadata(
                gateway_ids=_gateway_ids(),
                timestamp=1_000_000,
                rssi=-42.0,
                snr=9.5,
                uplink_token=b"\x01\x02\x03",
                channel_index=2,
                received_at=_timestamp(),
            )
        ],
        received_at=_timestamp(),
        correlation_ids=[CORRELATION_ID],
        crc_status=wrappers_pb2.BoolValue(value=True),
    )


def test_tx_settings() -> None:
    assert len(TX_SETTINGS) == 25
    assert_golden(_uplink().settings, TX_SETTINGS)


def test_rx_metadata() -> None:
    assert len(RX_METADATA) == 55
    parsed = assert_golden(_uplink().rx_metadata[0], RX_METADATA)
    assert parsed.rssi == -42.0
    assert parsed.snr == 9.5
    assert parsed.channel_index == 2
    assert parsed.uplink_token == b"\x01\x02\x03"


def test_uplink_message() -> None:
    parsed = assert_golden(_uplink(), UPLINK)
    assert parsed.raw_payload == bytes.fromhex("4078563412")
    assert parsed.settings.data_rate.WhichOneof("modulation") == "lora"
    assert parsed.settings.data_rate.lora.bandwidth == 125_000
    assert parsed.settings.data_rate.lora.spreading_factor == 7
    assert parsed.settings.data_rate.lora.coding_rate == "4/5"
    assert parsed.settings.frequency == 868_100_000
    assert parsed.settings.timestamp == 1_000_000
    md = parsed.rx_metadata[0]
    assert md.gateway_ids.gateway_id == "my-gw"
    assert md.received_at.seconds == 1_700_000_000 and md.received_at.nanos == 250_000_000
    assert list(parsed.correlation_ids) == [CORRELATION_ID]
    assert parsed.HasField("crc_status") and parsed.crc_status.value is True


def test_crc_status_false_is_present_but_empty() -> None:
    # A BoolValue holding false encodes as an empty sub-message: present, unlike an unset field.
    golden = h("5a 00")  # 11 crc_status, len 0
    parsed = assert_golden(messages_pb2.UplinkMessage(crc_status=wrappers_pb2.BoolValue(value=False)), golden)
    assert parsed.HasField("crc_status") and parsed.crc_status.value is False
    assert messages_pb2.UplinkMessage().SerializeToString() == b""


def test_signal_rssi_is_float_value_wrapper() -> None:
    # 16 signal_rssi: tag 16<<3|2 = 130 -> 0x82 0x01; FloatValue{1 value: -40.5f = 0xc2220000}
    golden = h("82 01 05 0d 000022c2")
    msg = metadata_pb2.RxMetadata(signal_rssi=wrappers_pb2.FloatValue(value=-40.5))
    assert_golden(msg, golden)


def test_gateway_uplink_message() -> None:
    golden = h(
        "0a 00",  # 1 message: empty UplinkMessage is still present
        "12 0a 45555f3836335f383730",  # 2 band_id "EU_863_870" (10 bytes)
    )
    msg = messages_pb2.GatewayUplinkMessage(message=messages_pb2.UplinkMessage(), band_id="EU_863_870")
    assert_golden(msg, golden)


# ---------------------------------------------------------------------------
# Downlink

TX_REQUEST = h(
    "08 02",  # 1 class: CLASS_C = 2
    "12 05 0a 03 010203",  # 2 downlink_paths: DownlinkPath{1 uplink_token (oneof path), len 3}
    "18 01",  # 3 rx1_delay: RX_DELAY_1 = 1
    "28",
    FREQ_868_1,  # 5 rx1_frequency uint64: tag 5<<3|0 = 0x28
    "40 06",  # 8 priority: HIGHEST = 6 (tag 8<<3|0 = 0x40)
)
DOWNLINK = h(
    "0a 04 60010203",  # 1 raw_payload
    "22 13",
    TX_REQUEST,  # 4 request (oneof settings): tag 0x22, len 19
    "32 07 6e733a646c3a31",  # 6 correlation_ids "ns:dl:1": tag 0x32
)


def _downlink() -> messages_pb2.DownlinkMessage:
    return messages_pb2.DownlinkMessage(
        raw_payload=bytes.fromhex("60010203"),
        request=lorawan_pb2.TxRequest(
            downlink_paths=[lorawan_pb2.DownlinkPath(uplink_token=b"\x01\x02\x03")],
            rx1_delay=lorawan_pb2.RX_DELAY_1,
            rx1_frequency=868_100_000,
            priority=lorawan_pb2.HIGHEST,
            **{"class": lorawan_pb2.CLASS_C},
        ),
        correlation_ids=["ns:dl:1"],
    )


def test_downlink_message_with_request() -> None:
    assert len(TX_REQUEST) == 19
    parsed = assert_golden(_downlink(), DOWNLINK)
    assert parsed.WhichOneof("settings") == "request"
    req = parsed.request
    assert getattr(req, "class") == lorawan_pb2.CLASS_C
    assert req.downlink_paths[0].WhichOneof("path") == "uplink_token"
    assert req.downlink_paths[0].uplink_token == b"\x01\x02\x03"
    assert req.rx1_delay == lorawan_pb2.RX_DELAY_1
    assert req.rx1_frequency == 868_100_000
    assert req.priority == lorawan_pb2.HIGHEST


def test_tx_request_renumbered_data_rates() -> None:
    # rx1_data_rate is 12 and rx2_data_rate 13 (4, 6 and 11 are reserved upstream).
    golden = h(
        "38",
        "88 cc cf 9e 03",  # 7 rx2_frequency uint64 869525000: tag 7<<3|0 = 0x38
        #   869525000 = 6793164*128 + 8 -> 0x88;  6793164 = 53071*128 + 76 -> 0xcc
        #   53071 = 414*128 + 79 -> 0xcf;  414 = 3*128 + 30 -> 0x9e;  then 0x03
        "62 0d",
        DATA_RATE,  # 12 rx1_data_rate: tag 12<<3|2 = 0x62
        "6a 0d",
        DATA_RATE,  # 13 rx2_data_rate: tag 13<<3|2 = 0x6a
    )
    dr = lorawan_pb2.DataRate(lora=lorawan_pb2.LoRaDataRate(bandwidth=125_000, spreading_factor=7, coding_rate="4/5"))
    msg = lorawan_pb2.TxRequest(rx1_data_rate=dr, rx2_data_rate=dr, rx2_frequency=869_525_000)
    assert_golden(msg, golden)


def test_tx_acknowledgment_result() -> None:
    tx_ack = h(
        "0a 07 6e733a646c3a31",  # 1 correlation_ids "ns:dl:1"
        "10 02",  # 2 result: TOO_LATE = 2
    )
    parsed = assert_golden(
        messages_pb2.TxAcknowledgment(correlation_ids=["ns:dl:1"], result=messages_pb2.TxAcknowledgment.TOO_LATE),
        tx_ack,
    )
    assert parsed.result == messages_pb2.TxAcknowledgment.Result.Value("TOO_LATE")

    gateway_tx_ack = h(
        "0a 11",
        GATEWAY_IDS,  # 1 gateway_ids
        "12 0b",
        tx_ack,  # 2 tx_ack, len 11
    )
    msg = messages_pb2.GatewayTxAcknowledgment(
        gateway_ids=_gateway_ids(),
        tx_ack=messages_pb2.TxAcknowledgment(
            correlation_ids=["ns:dl:1"], result=messages_pb2.TxAcknowledgment.TOO_LATE
        ),
    )
    assert_golden(msg, gateway_tx_ack)


def test_schedule_downlink_response() -> None:
    # 500000000 = 3906250*128 + 0 -> 0x80;  3906250 = 30517*128 + 74 -> 0xca
    # 30517 = 238*128 + 53 -> 0xb5;  238 = 1*128 + 110 -> 0xee;  then 0x01
    golden = h(
        "0a 08",  # 1 delay Duration, len 8
        "08 01",  # Duration.seconds = 1
        "10 80cab5ee01",  # Duration.nanos = 500000000
        "18 01",  # 3 rx1 bool: tag 3<<3|0 = 0x18
    )
    msg = gatewayserver_pb2.ScheduleDownlinkResponse(
        delay=duration_pb2.Duration(seconds=1, nanos=500_000_000), rx1=True
    )
    parsed = assert_golden(msg, golden)
    assert parsed.delay.ToNanoseconds() == 1_500_000_000
    assert parsed.rx1 and not parsed.rx2


# ---------------------------------------------------------------------------
# Events, errors, stats

EVENT = h(
    "0a 0d 67732e75702e72656365697665",  # 1 name "gs.up.receive"
    "12 0b",
    TIMESTAMP,  # 2 time
    "1a 13 22 11",
    GATEWAY_IDS,  # 3 identifiers: EntityIdentifiers{4 gateway_ids, len 17}, len 19
    "2a 0d",
    CORRELATION_ID_HEX,  # 5 correlation_ids
    "42 03 0a 01 23",  # 8 visibility: Rights{1 rights packed, len 1, RIGHT_GATEWAY_TRAFFIC_READ = 35 = 0x23}
)


def test_event() -> None:
    msg = events_pb2.Event(
        name="gs.up.receive",
        time=_timestamp(),
        identifiers=[identifiers_pb2.EntityIdentifiers(gateway_ids=_gateway_ids())],
        correlation_ids=[CORRELATION_ID],
        visibility=rights_pb2.Rights(rights=[rights_pb2.RIGHT_GATEWAY_TRAFFIC_READ]),
    )
    parsed = assert_golden(msg, EVENT)
    assert parsed.name == "gs.up.receive"
    assert parsed.identifiers[0].gateway_ids.gateway_id == "my-gw"
    assert list(parsed.visibility.rights) == [rights_pb2.RIGHT_GATEWAY_TRAFFIC_READ]


def test_rights_unpacked_input_is_accepted() -> None:
    # A sender may also write repeated enums unpacked (one tag per value); parsers accept both.
    unpacked = h("08 23", "08 1e")  # 1 rights varint 35, 1 rights varint 30
    parsed = rights_pb2.Rights.FromString(unpacked)
    assert list(parsed.rights) == [rights_pb2.RIGHT_GATEWAY_TRAFFIC_READ, rights_pb2.RIGHT_GATEWAY_INFO]
    assert parsed.SerializeToString() == h("0a 02 23 1e")  # written back packed


def test_stream_events_request() -> None:
    golden = h(
        "0a 13 22 11",
        GATEWAY_IDS,  # 1 identifiers
        "10 0a",  # 2 tail = 10
        "22 06 2f67732e2a2f",  # 4 names "/gs.*/": tag 4<<3|2 = 0x22
    )
    msg = events_pb2.StreamEventsRequest(
        identifiers=[identifiers_pb2.EntityIdentifiers(gateway_ids=_gateway_ids())], tail=10, names=["/gs.*/"]
    )
    assert_golden(msg, golden)


RX_EMPTY = h(
    "0a 14 706b672f6761746577617973657276" "65722f696f",  # 1 namespace "pkg/gatewayserver/io" (20)
    "12 08 72785f656d707479",  # 2 name "rx_empty"
    "38 09",  # 7 code: FailedPrecondition = 9 (tag 7<<3|0 = 0x38)
)


def test_error_details() -> None:
    assert len(RX_EMPTY) == 34
    golden = h(
        "0a 11 706b672f676174657761797365727665 72",  # 1 namespace "pkg/gatewayserver" (17)
        "12 0d 7363686564756c655f70617468",  # 2 name "schedule_path" (13)
        # 4 attributes Struct (tag 0x22, len 24) {
        #   1 fields map entry (tag 0x0a, len 22) {
        #     1 key "gateway_uid" (0x0a, len 11), 2 value Value (0x12, len 7) { 3 string_value "my-gw" (0x1a) } } }
        "22 18 0a 16 0a 0b 676174657761795f756964 12 07 1a 05 6d792d6777",
        "32 22",
        RX_EMPTY,  # 6 cause ErrorDetails, len 34
        "38 09",  # 7 code: reported from the cause
    )
    attributes = struct_pb2.Struct()
    attributes["gateway_uid"] = "my-gw"
    cause = error_pb2.ErrorDetails(namespace="pkg/gatewayserver/io", name="rx_empty", code=9)
    msg = error_pb2.ErrorDetails(
        namespace="pkg/gatewayserver", name="schedule_path", attributes=attributes, cause=cause, code=9
    )
    parsed = assert_golden(msg, golden)
    assert parsed.cause.name == "rx_empty"
    assert parsed.attributes["gateway_uid"] == "my-gw"
    assert parsed.code == 9

    # ScheduleDownlinkErrorDetails{1 path_errors: [rx_empty]}
    assert_golden(
        gatewayserver_pb2.ScheduleDownlinkErrorDetails(path_errors=[cause]), h("0a 22", RX_EMPTY)
    )


def test_gateway_connection_stats() -> None:
    # 20000000 = 156250*128 + 0 -> 0x80;  156250 = 1220*128 + 90 -> 0xda
    # 1220 = 9*128 + 68 -> 0xc4;  then 0x09
    # 863000000 -> c0 ab c1 9b 03;  870000000 -> 80 cb ec 9e 03 (same 7-bit split as above)
    # 0.01f = 0x3c23d70a -> LE 0a d7 23 3c
    golden = h(
        "0a 0b",
        TIMESTAMP,  # 1 connected_at
        "12 03 756470",  # 2 protocol "udp"
        "30 ac02",  # 6 uplink_count uint64 300: 300 = 2*128 + 44 -> 0xac 0x02
        "40 01",  # 8 downlink_count uint64 1
        "4a 09",  # 9 round_trip_times, len 9 {
        "0a 05 10 80dac409",  #   1 min Duration{2 nanos 20000000}
        "20 03",  #   4 count 3 }
        "52 11",  # 10 sub_bands, len 17 {
        "08 c0abc19b03",  #   1 min_frequency 863000000
        "10 80cbec9e03",  #   2 max_frequency 870000000
        "1d 0ad7233c",  #   3 downlink_utilization_limit float 0.01 (tag 3<<3|5 = 0x1d) }
        "62 03 0a 01 31",  # 12 gateway_remote_address {1 ip "1"} (tag 12<<3|2 = 0x62)
        "6a 0b",
        TIMESTAMP,  # 13 last_tx_acknowledgment_received_at (tag 13<<3|2 = 0x6a)
        "70 05",  # 14 tx_acknowledgment_count 5 (tag 14<<3|0 = 0x70)
    )
    Stats = gateway_pb2.GatewayConnectionStats
    msg = Stats(
        connected_at=_timestamp(),
        protocol="udp",
        uplink_count=300,
        downlink_count=1,
        round_trip_times=Stats.RoundTripTimes(min=duration_pb2.Duration(nanos=20_000_000), count=3),
        sub_bands=[
            Stats.SubBand(min_frequency=863_000_000, max_frequency=870_000_000, downlink_utilization_limit=0.01)
        ],
        gateway_remote_address=gateway_pb2.GatewayRemoteAddress(ip="1"),
        last_tx_acknowledgment_received_at=_timestamp(),
        tx_acknowledgment_count=5,
    )
    parsed = assert_golden(msg, golden)
    assert parsed.protocol == "udp"
    assert parsed.uplink_count == 300
    assert parsed.round_trip_times.min.ToNanoseconds() == 20_000_000
    assert parsed.sub_bands[0].downlink_utilization_limit == pytest.approx(0.01)
    assert parsed.tx_acknowledgment_count == 5


def test_batch_connection_stats_response_map() -> None:
    # map<string, GatewayConnectionStats> entries = 1: each entry is a LEN message {1 key, 2 value}
    golden = h("0a 0c", "0a 05 6d792d6777", "12 03 12 01 78")  # key "my-gw", value {2 protocol "x"}
    msg = gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse(
        entries={"my-gw": gateway_pb2.GatewayConnectionStats(protocol="x")}
    )
    assert_golden(msg, golden)


def test_uplink_token() -> None:
    # 1000000000 = 7812500*128 + 0 -> 0x80;  7812500 = 61035*128 + 20 -> 0x94
    # 61035 = 476*128 + 107 -> 0xeb;  476 = 3*128 + 92 -> 0xdc;  then 0x03
    golden = h(
        "0a 13 0a 11",
        GATEWAY_IDS,  # 1 ids: GatewayAntennaIdentifiers{1 gateway_ids}, antenna_index 0 omitted
        "10",
        TIMESTAMP_1S_US,  # 2 timestamp uint32 1000000
        "1a 0b",
        TIMESTAMP,  # 3 server_time
        "20 8094ebdc03",  # 4 concentrator_time int64 1000000000
    )
    msg = lorawan_pb2.UplinkToken(
        ids=lorawan_pb2.GatewayAntennaIdentifiers(gateway_ids=_gateway_ids()),
        timestamp=1_000_000,
        server_time=_timestamp(),
        concentrator_time=1_000_000_000,
    )
    parsed = assert_golden(msg, golden)
    assert parsed.ids.gateway_ids.eui == GATEWAY_EUI
    assert parsed.concentrator_time == 1_000_000_000


def test_int64_is_not_zigzag() -> None:
    # concentrator_time is int64 (not sint64): -1 is ten bytes of two's complement varint.
    golden = h("20 ffffffffffffffffff01")
    assert_golden(lorawan_pb2.UplinkToken(concentrator_time=-1), golden)


def test_gateway_configuration_request() -> None:
    golden = h(
        "0a 11",
        GATEWAY_IDS,  # 1 gateway_ids
        "12 0a 73656d746563687564 70",  # 2 format "semtechudp" (10)
        "22 10 676c6f62616c5f636f6e662e6a736f6e",  # 4 filename "global_conf.json" (16)
    )
    msg = gateway_configuration_pb2.GetGatewayConfigurationRequest(
        gateway_ids=_gateway_ids(), format="semtechudp", filename="global_conf.json"
    )
    assert_golden(msg, golden)


# ---------------------------------------------------------------------------
# Services and descriptors

EXPECTED_METHODS = {
    # full method name: (request, response, client streaming, server streaming)
    "/ttn.lorawan.v3.GsNs/HandleUplink": ("UplinkMessage", "google.protobuf.Empty", False, False),
    "/ttn.lorawan.v3.GsNs/ReportTxAcknowledgment": ("GatewayTxAcknowledgment", "google.protobuf.Empty", False, False),
    "/ttn.lorawan.v3.NsGs/ScheduleDownlink": ("DownlinkMessage", "ScheduleDownlinkResponse", False, False),
    "/ttn.lorawan.v3.Gs/GetGatewayConnectionStats": ("GatewayIdentifiers", "GatewayConnectionStats", False, False),
    "/ttn.lorawan.v3.Gs/BatchGetGatewayConnectionStats": (
        "BatchGetGatewayConnectionStatsRequest",
        "BatchGetGatewayConnectionStatsResponse",
        False,
        False,
    ),
    "/ttn.lorawan.v3.GtwGs/LinkGateway": ("GatewayUp", "GatewayDown", True, True),
    "/ttn.lorawan.v3.GtwGs/GetConcentratorConfig": ("google.protobuf.Empty", "ConcentratorConfig", False, False),
    "/ttn.lorawan.v3.GtwGs/GetMQTTConnectionInfo": ("GatewayIdentifiers", "MQTTConnectionInfo", False, False),
    "/ttn.lorawan.v3.GtwGs/GetMQTTV2ConnectionInfo": ("GatewayIdentifiers", "MQTTConnectionInfo", False, False),
    "/ttn.lorawan.v3.Events/Stream": ("StreamEventsRequest", "Event", False, True),
    "/ttn.lorawan.v3.Events/FindRelated": ("FindRelatedEventsRequest", "FindRelatedEventsResponse", False, False),
    "/ttn.lorawan.v3.GatewayConfigurationService/GetGatewayConfiguration": (
        "GetGatewayConfigurationRequest",
        "GetGatewayConfigurationResponse",
        False,
        False,
    ),
}


def _qualify(name: str) -> str:
    return name if name.startswith("google.") else f"ttn.lorawan.v3.{name}"


def _all_methods() -> dict[str, object]:
    methods = {}
    for module in (gatewayserver_pb2, networkserver_pb2, events_pb2, gateway_configuration_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[f"/{service.full_name}/{method.name}"] = method
    return methods


@pytest.mark.parametrize("full_name", sorted(EXPECTED_METHODS))
def test_service_method(full_name: str) -> None:
    method = _all_methods().get(full_name)
    assert method is not None, f"{full_name} is not declared"
    request, response, client_streaming, server_streaming = EXPECTED_METHODS[full_name]
    assert method.input_type.full_name == _qualify(request)
    assert method.output_type.full_name == _qualify(response)
    assert method.client_streaming is client_streaming
    assert method.server_streaming is server_streaming


def test_generated_stub_uses_full_method_paths() -> None:
    class RecordingChannel:
        def __init__(self) -> None:
            self.paths: list[str] = []

        def unary_unary(self, path: str, *args: object, **kwargs: object) -> object:
            self.paths.append(path)
            return object()

    channel = RecordingChannel()
    networkserver_pb2_grpc.GsNsStub(channel)
    assert channel.paths == ["/ttn.lorawan.v3.GsNs/HandleUplink", "/ttn.lorawan.v3.GsNs/ReportTxAcknowledgment"]


def test_descriptor_names_match_upstream_layout() -> None:
    assert messages_pb2.DESCRIPTOR.name == "ttn/lorawan/v3/messages.proto"
    assert messages_pb2.DESCRIPTOR.package == "ttn.lorawan.v3"
    assert messages_pb2.UplinkMessage.DESCRIPTOR.full_name == "ttn.lorawan.v3.UplinkMessage"
    assert messages_pb2.UplinkMessage.__module__ == "gatewayserver.ttnpb.messages_pb2"


def test_phy_version_aliases() -> None:
    assert lorawan_pb2.TS001_V1_0 == lorawan_pb2.PHY_V1_0 == 1
    assert lorawan_pb2.RP001_V1_0_3_REV_A == lorawan_pb2.PHY_V1_0_3_REV_A == 7
    assert lorawan_pb2.PHYVersion.Name(7) == "PHY_V1_0_3_REV_A"
    assert lorawan_pb2.RP002_V1_0_4 == 12
