"""The Things Stack's JSON shape, checked against JSON written by hand from the documentation's examples.

The expected strings below are typed from the reference docs (events guide, data formats, events API), with
values changed where our messages differ; they are compared byte for byte, so field order, omitted zero
values, hex/base64, 64-bit strings and timestamp digits all count.
"""

from __future__ import annotations

import math

import orjson
import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2, wrappers_pb2

from gatewayserver import jsonpb
from gatewayserver.jsonpb import JsonError
from gatewayserver.ttnpb import (
    error_pb2,
    events_pb2,
    gateway_pb2,
    gatewayserver_pb2,
    identifiers_pb2,
    lorawan_pb2,
    messages_pb2,
    metadata_pb2,
)


def compact(text: str) -> bytes:
    """Golden JSON is written readable; compare it in orjson's compact form (order preserved)."""
    return orjson.dumps(orjson.loads(text))


def ts(text: str) -> timestamp_pb2.Timestamp:
    seconds, nanos = jsonpb.parse_timestamp(text)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


GW2 = identifiers_pb2.GatewayIdentifiers(gateway_id="gw2", eui=bytes.fromhex("B827EBFFFE8DB887"))
CIDS = ["gs:conn:01G76RS17HGZZXV740X0N2XDV8", "gs:uplink:01G76SF01BNW5SKRAND31Z0MGB"]


def test_gateway_uplink_message_of_the_join_flow_example() -> None:
    msg = messages_pb2.GatewayUplinkMessage()
    up = msg.message
    jr = up.payload.join_request_payload
    jr.join_eui = bytes(8)
    jr.dev_eui = bytes.fromhex("70B3D57ED0050EAD")
    jr.dev_nonce = bytes.fromhex("AF7C")
    up.rx_metadata.add().gateway_ids.CopyFrom(GW2)
    up.correlation_ids.extend(CIDS)
    assert jsonpb.any_to_dict(msg) == orjson.loads(
        """{
          "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayUplinkMessage",
          "message": {
            "payload": {
              "join_request_payload": {
                "join_eui": "0000000000000000",
                "dev_eui": "70B3D57ED0050EAD",
                "dev_nonce": "AF7C"
              }
            },
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw2", "eui": "B827EBFFFE8DB887"}}],
            "correlation_ids": [
              "gs:conn:01G76RS17HGZZXV740X0N2XDV8",
              "gs:uplink:01G76SF01BNW5SKRAND31Z0MGB"
            ]
          }
        }"""
    )
    assert orjson.dumps(jsonpb.any_to_dict(msg)).startswith(
        b'{"@type":"type.googleapis.com/ttn.lorawan.v3.GatewayUplinkMessage","message":{"payload":'
    )


def test_uplink_message_like_the_data_formats_example() -> None:
    up = messages_pb2.UplinkMessage()
    up.raw_payload = bytes.fromhex("40AABBCCDD")
    md = up.rx_metadata.add()
    md.gateway_ids.gateway_id = "gtw1"
    md.gateway_ids.eui = bytes.fromhex("9C5C8E00001A05C4")
    md.time.CopyFrom(ts("2020-02-12T15:15:45.787Z"))
    md.timestamp = 2463457000
    md.rssi = -35
    md.channel_rssi = -35
    md.snr = 5.2
    md.uplink_token = b"\x0a\x12\x0a\x10"
    md.channel_index = 2
    md.location.latitude = 37.97155556731436
    md.location.longitude = 23.72678801175413
    md.location.altitude = 2
    md.location.source = metadata_pb2.SOURCE_REGISTRY
    md.frequency_offset = -1234
    md.signal_rssi.value = -36.5
    up.settings.data_rate.lora.bandwidth = 125000
    up.settings.data_rate.lora.spreading_factor = 7
    up.settings.data_rate.lora.coding_rate = "4/5"
    up.settings.frequency = 868300000
    up.settings.timestamp = 2463457000
    up.received_at.CopyFrom(ts("2020-02-12T15:15:45.935284891Z"))
    up.consumed_airtime.CopyFrom(duration_pb2.Duration(nanos=56_576_000))
    up.crc_status.value = True
    expected = """{
      "raw_payload": "QKq7zN0=",
      "settings": {
        "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7, "coding_rate": "4/5"}},
        "frequency": "868300000",
        "timestamp": 2463457000
      },
      "rx_metadata": [{
        "gateway_ids": {"gateway_id": "gtw1", "eui": "9C5C8E00001A05C4"},
        "time": "2020-02-12T15:15:45.787Z",
        "timestamp": 2463457000,
        "rssi": -35,
        "signal_rssi": -36.5,
        "channel_rssi": -35,
        "snr": 5.2,
        "frequency_offset": "-1234",
        "location": {
          "latitude": 37.97155556731436,
          "longitude": 23.72678801175413,
          "altitude": 2,
          "source": "SOURCE_REGISTRY"
        },
        "uplink_token": "ChIKEA==",
        "channel_index": 2
      }],
      "received_at": "2020-02-12T15:15:45.935284891Z",
      "consumed_airtime": "0.056576s",
      "crc_status": true
    }"""
    assert jsonpb.to_json(up) == compact(expected)


def test_join_accept_downlink_of_the_join_flow_example() -> None:
    down = messages_pb2.DownlinkMessage()
    down.payload.m_hdr.m_type = lorawan_pb2.JOIN_ACCEPT
    ja = down.payload.join_accept_payload
    ja.join_nonce = bytes(3)
    ja.net_id = bytes(3)
    ja.dev_addr = bytes.fromhex("00FF52E3")
    ja.dl_settings.rx2_dr = 3
    ja.rx_delay = 5
    ja.cf_list.freq.extend([8671000, 8673000, 8675000, 8677000, 8679000])
    req = down.request
    req.downlink_paths.add().uplink_token = bytes.fromhex("0a110a0f0a03677732")
    req.rx1_delay = 5
    req.rx1_data_rate.lora.bandwidth = 125000
    req.rx1_data_rate.lora.spreading_factor = 12
    req.rx1_frequency = 868300000
    req.rx2_data_rate.lora.bandwidth = 125000
    req.rx2_data_rate.lora.spreading_factor = 12
    req.rx2_frequency = 869525000
    req.priority = lorawan_pb2.HIGHEST
    req.frequency_plan_id = "EU_863_870_TTN"
    down.correlation_ids.extend(CIDS)
    expected = """{
      "payload": {
        "m_hdr": {"m_type": "JOIN_ACCEPT"},
        "join_accept_payload": {
          "join_nonce": "000000",
          "net_id": "000000",
          "dev_addr": "00FF52E3",
          "dl_settings": {"rx2_dr": 3},
          "rx_delay": 5,
          "cf_list": {"freq": [8671000, 8673000, 8675000, 8677000, 8679000]}
        }
      },
      "request": {
        "downlink_paths": [{"uplink_token": "ChEKDwoDZ3cy"}],
        "rx1_delay": 5,
        "rx1_data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 12}},
        "rx1_frequency": "868300000",
        "rx2_data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 12}},
        "rx2_frequency": "869525000",
        "priority": "HIGHEST",
        "frequency_plan_id": "EU_863_870_TTN"
      },
      "correlation_ids": [
        "gs:conn:01G76RS17HGZZXV740X0N2XDV8",
        "gs:uplink:01G76SF01BNW5SKRAND31Z0MGB"
      ]
    }"""
    assert jsonpb.to_json(down) == compact(expected)


def test_schedule_downlink_response_and_durations() -> None:
    res = gatewayserver_pb2.ScheduleDownlinkResponse(rx1=True)
    res.delay.FromNanoseconds(1_500_000_000)
    res.downlink_path.fixed.gateway_ids.CopyFrom(GW2)
    expected = """{
      "delay": "1.500s",
      "downlink_path": {"fixed": {"gateway_ids": {"gateway_id": "gw2", "eui": "B827EBFFFE8DB887"}}},
      "rx1": true
    }"""
    assert jsonpb.to_json(res) == compact(expected)


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (2_000_000_000, "2s"),
        (1_500_000_000, "1.500s"),
        (130_000_000, "0.130s"),
        (1_000, "0.000001s"),
        (1, "0.000000001s"),
        (-1_500_000_000, "-1.500s"),
        (0, "0s"),
    ],
)
def test_duration_text(nanos: int, text: str) -> None:
    assert jsonpb.format_duration_ns(nanos) == text
    assert jsonpb.parse_duration_ns(text) == nanos


@pytest.mark.parametrize(
    ("seconds", "nanos", "text"),
    [
        (1656997266, 987556027, "2022-07-05T05:01:06.987556027Z"),
        (1656997266, 120_000_000, "2022-07-05T05:01:06.120Z"),
        (1656997266, 786_220_000, "2022-07-05T05:01:06.786220Z"),
        (1656997266, 0, "2022-07-05T05:01:06Z"),
        (0, 0, "1970-01-01T00:00:00Z"),
    ],
)
def test_timestamp_text(seconds: int, nanos: int, text: str) -> None:
    assert jsonpb.format_timestamp(seconds, nanos) == text
    assert jsonpb.parse_timestamp(text) == (seconds, nanos)


def test_timestamp_input_with_offset() -> None:
    assert jsonpb.parse_timestamp("2022-07-05T07:01:06.5+02:00") == (1656997266, 500_000_000)


def test_connection_stats_shape() -> None:
    stats = gateway_pb2.GatewayConnectionStats()
    stats.connected_at.CopyFrom(ts("2024-01-02T03:04:05.120Z"))
    stats.protocol = "udp"
    stats.last_status_received_at.CopyFrom(ts("2024-01-02T03:05:00Z"))
    stats.last_status.time.CopyFrom(ts("2024-01-02T03:04:59Z"))
    stats.last_status.versions["firmware"] = "2.0.0"
    stats.last_status.metrics["rxok"] = 12
    stats.last_status.metrics["ackr"] = 100.0
    stats.last_status.ip.append("10.0.0.2")
    stats.uplink_count = 2**40
    stats.downlink_count = 3
    stats.round_trip_times.min.FromNanoseconds(45_000_000)
    stats.round_trip_times.max.FromNanoseconds(1_200_000_000)
    stats.round_trip_times.median.FromNanoseconds(61_500_000)
    stats.round_trip_times.count = 20
    sb = stats.sub_bands.add(min_frequency=863000000, max_frequency=865000000)
    sb.downlink_utilization_limit = 0.001
    sb.downlink_utilization = 0.0002
    stats.gateway_remote_address.ip = "192.0.2.10"
    expected = """{
      "connected_at": "2024-01-02T03:04:05.120Z",
      "protocol": "udp",
      "last_status_received_at": "2024-01-02T03:05:00Z",
      "last_status": {
        "time": "2024-01-02T03:04:59Z",
        "versions": {"firmware": "2.0.0"},
        "ip": ["10.0.0.2"],
        "metrics": {"rxok": 12, "ackr": 100}
      },
      "uplink_count": "1099511627776",
      "downlink_count": "3",
      "round_trip_times": {"min": "0.045s", "max": "1.200s", "median": "0.061500s", "count": 20},
      "sub_bands": [{
        "min_frequency": "863000000",
        "max_frequency": "865000000",
        "downlink_utilization_limit": 0.001,
        "downlink_utilization": 0.0002
      }],
      "gateway_remote_address": {"ip": "192.0.2.10"}
    }"""
    assert orjson.loads(jsonpb.to_json(stats)) == orjson.loads(expected)  # map key order is unspecified
    text = jsonpb.to_json(stats).decode()
    assert text.index('"protocol"') < text.index('"last_status_received_at"') < text.index('"round_trip_times"')


def test_error_details_as_event_data_like_the_events_reference() -> None:
    err = error_pb2.ErrorDetails(
        namespace="pkg/example", name="example", message_format="example error for `{attr_name}`", code=2
    )
    err.attributes.update({"attr_name": "attr_value"})
    expected = """{
      "@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails",
      "namespace": "pkg/example",
      "name": "example",
      "message_format": "example error for `{attr_name}`",
      "attributes": {"attr_name": "attr_value"},
      "code": 2
    }"""
    assert orjson.dumps(jsonpb.any_to_dict(err)) == compact(expected)


def test_values_in_any_carry_value() -> None:
    assert jsonpb.any_to_dict(struct_pb2.Value(string_value="cluster")) == {
        "@type": "type.googleapis.com/google.protobuf.Value",
        "value": "cluster",
    }
    assert orjson.dumps(jsonpb.any_to_dict(struct_pb2.Value(number_value=4))) == compact(
        '{"@type": "type.googleapis.com/google.protobuf.Value", "value": 4}'
    )
    lst = struct_pb2.Value()
    lst.list_value.extend(["list.of", "updated.fields"])
    assert jsonpb.any_to_dict(lst)["value"] == ["list.of", "updated.fields"]


def test_packed_any_field_and_field_mask() -> None:
    event = events_pb2.Event(name="gs.up.forward")
    event.data.Pack(struct_pb2.Value(string_value="cluster"))
    event.identifiers.add().gateway_ids.CopyFrom(GW2)
    event.visibility.rights.append(35)
    assert jsonpb.to_dict(event) == {
        "name": "gs.up.forward",
        "identifiers": [{"gateway_ids": {"gateway_id": "gw2", "eui": "B827EBFFFE8DB887"}}],
        "data": {"@type": "type.googleapis.com/google.protobuf.Value", "value": "cluster"},
        "visibility": {"rights": ["RIGHT_GATEWAY_TRAFFIC_READ"]},
    }
    req = gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest()
    req.field_mask.paths.extend(["protocol", "round_trip_times.min"])
    assert jsonpb.to_dict(req) == {"field_mask": {"paths": ["protocol", "round_trip_times.min"]}}


def test_floats_special_values_and_float32_shortest() -> None:
    md = metadata_pb2.RxMetadata(snr=-7.3, rssi=float("nan"), channel_rssi=float("-inf"))
    assert jsonpb.to_dict(md) == {"rssi": "NaN", "channel_rssi": "-Infinity", "snr": -7.3}
    assert jsonpb.to_dict(wrappers_pb2.UInt64Value(value=5)) == "5"


def test_zero_values_are_omitted_but_empty_set_messages_are_kept() -> None:
    settings = lorawan_pb2.TxSettings(enable_crc=False, frequency=0)
    settings.data_rate.SetInParent()
    assert jsonpb.to_json(settings) == b'{"data_rate":{}}'


# --- input ----------------------------------------------------------------------------------------------------


def test_parse_the_documented_curl_body() -> None:
    req = jsonpb.parse(b'{"identifiers":[{"gateway_ids":{"gateway_id":"gtw1"}}]}', events_pb2.StreamEventsRequest)
    assert req.identifiers[0].gateway_ids.gateway_id == "gtw1"
    assert req.tail == 0 and not req.HasField("after")


def test_parse_accepts_camel_case_strings_for_numbers_and_enum_short_names() -> None:
    req = jsonpb.parse(
        b'{"identifiers":[{"gatewayIds":{"gatewayId":"gtw1","eui":"b827ebfffe8db887"}}],'
        b'"tail":"10","after":"2024-01-02T03:04:05.5Z","names":["gs.up.receive"],"unknown":1}',
        events_pb2.StreamEventsRequest,
    )
    assert req.identifiers[0].gateway_ids.eui == bytes.fromhex("B827EBFFFE8DB887")
    assert req.tail == 10
    assert (req.after.seconds, req.after.nanos) == (1704164645, 500_000_000)
    assert list(req.names) == ["gs.up.receive"]
    req2 = jsonpb.parse_dict(
        {
            "request": {"class": "C", "priority": "HIGHEST", "rx1_delay": "RX_DELAY_5", "rx1_frequency": 868100000},
            "end_device_ids": {"dev_addr": "AP9S4w=="},
        },
        messages_pb2.DownlinkMessage,
    )
    assert req2.request.__getattribute__("class") == lorawan_pb2.CLASS_C
    assert req2.request.priority == lorawan_pb2.HIGHEST
    assert req2.request.rx1_delay == 5
    assert req2.request.rx1_frequency == 868100000
    assert req2.end_device_ids.dev_addr == bytes.fromhex("00FF52E3")


def test_parse_field_mask_string_and_round_trip() -> None:
    req = jsonpb.parse_dict(
        {"gateway_ids": [{"gateway_id": "a-gw"}], "field_mask": "protocol,uplink_count"},
        gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest,
    )
    assert list(req.field_mask.paths) == ["protocol", "uplink_count"]
    stats = gateway_pb2.GatewayConnectionStats(protocol="udp", uplink_count=7)
    stats.round_trip_times.median.FromNanoseconds(61_500_000)
    stats.connected_at.CopyFrom(ts("2024-01-02T03:04:05.120Z"))
    again = jsonpb.parse(jsonpb.to_json(stats), gateway_pb2.GatewayConnectionStats)
    assert again == stats
    event = events_pb2.Event(name="x")
    event.data.Pack(error_pb2.ErrorDetails(name="n", code=5))
    assert jsonpb.parse(jsonpb.to_json(event), events_pb2.Event) == event


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"tail": "x"}',
        b'{"tail": -1}',
        b'{"identifiers": {}}',
        b'{"identifiers":[{"gateway_ids":{"eui":"B827"}}]}',
        b'{"after": "yesterday"}',
        b'{"names": [1]}',
    ],
)
def test_parse_errors_are_invalid_argument(body: bytes) -> None:
    with pytest.raises(JsonError) as info:
        jsonpb.parse(body, events_pb2.StreamEventsRequest)
    assert info.value.code == 3
    assert info.value.full_name == "pkg/jsonpb:unmarshal"


def test_float_and_nan_input() -> None:
    md = jsonpb.parse_dict({"rssi": "NaN", "snr": "5.25", "channel_rssi": -35}, metadata_pb2.RxMetadata)
    assert math.isnan(md.rssi) and md.snr == 5.25 and md.channel_rssi == -35
