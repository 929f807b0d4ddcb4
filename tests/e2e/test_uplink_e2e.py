"""The uplink path end to end: real datagrams in, real GsNs calls out."""

from __future__ import annotations

import base64
import queue
import socket
import time

import pytest
from harness import Forwarder, Harness, data_frame, metric, next_uplink, rxpk, wait_for

from gatewayserver.ttnpb import lorawan_pb2

EUI = bytes.fromhex("58A0CBFFFE800001")


@pytest.fixture(scope="module")
def gs():
    with Harness(cluster_key="c0ffee00") as harness:
        yield harness


@pytest.fixture
def fwd(gs, request):
    eui = EUI[:6] + (abs(hash(request.node.name)) & 0xFFFF).to_bytes(2, "big")
    f = Forwarder(gs.udp_address, eui)
    yield f
    f.close()


def drain(gs):
    while True:
        try:
            gs.ns.uplinks.get_nowait()
        except queue.Empty:
            return


def test_protocol_v2_lora_uplink_arrives_with_every_field(gs, fwd):
    drain(gs)
    frame = data_frame(dev_addr=0x26011234, fcnt=42, payload=b"\x01\x02\x03")
    packet = rxpk(
        frame,
        tmst=4294967295,  # the counter's last value before it wraps
        chan=5,
        rfch=1,
        freq=868.1,
        datr="SF9BW125",
        codr="4/7",
        rssi=-107,
        rssis=-110,
        lsnr=-3.2,
        foff=-1234,
        ftime=123456789,
        time="2026-11-22T03:09:23.123456Z",
    )
    before = time.time_ns()
    fwd.push({"rxpk": [packet]})
    up = next_uplink(gs.ns)
    after = time.time_ns()

    assert up.raw_payload == frame
    assert up.settings.frequency == 868100000
    lora = up.settings.data_rate.lora
    assert (lora.spreading_factor, lora.bandwidth, lora.coding_rate) == (9, 125000, "4/7")
    assert up.settings.timestamp == 4294967295
    assert up.crc_status.value is True
    assert len(up.rx_metadata) == 1
    md = up.rx_metadata[0]
    assert md.gateway_ids.gateway_id == "eui-" + fwd.eui.hex()
    assert md.gateway_ids.eui == fwd.eui
    assert md.timestamp == 4294967295
    assert md.channel_index == 5
    assert md.rssi == pytest.approx(-107) and md.channel_rssi == pytest.approx(-107)
    assert md.signal_rssi.value == pytest.approx(-110)
    assert md.snr == pytest.approx(-3.2)
    assert md.frequency_offset == -1234
    assert md.fine_timestamp == 123456789
    assert md.time.ToJsonString() == "2026-11-22T03:09:23.123456Z"
    assert up.settings.time.ToJsonString() == "2026-11-22T03:09:23.123456Z"
    assert md.uplink_token, "antenna 0 must carry an uplink token for the downlink path"
    received = up.received_at.seconds * 10**9 + up.received_at.nanos
    assert before <= received <= after
    assert md.received_at == up.received_at
    # LoRaWAN frame parsed, DevAddr big-endian as in the reference.
    assert up.payload.m_hdr.m_type == lorawan_pb2.UNCONFIRMED_UP
    assert up.payload.mac_payload.f_hdr.dev_addr == bytes.fromhex("26011234")
    assert up.payload.mac_payload.f_hdr.f_cnt == 42
    assert up.payload.mac_payload.f_port == 1
    assert up.payload.mac_payload.frm_payload == b"\x01\x02\x03"
    assert up.payload.mic == b"\xa1\xb2\xc3\xd4"
    assert len(up.correlation_ids) == 2
    assert up.correlation_ids[0].startswith("gs:conn:") and len(up.correlation_ids[0]) == len("gs:conn:") + 26
    assert up.correlation_ids[1].startswith("gs:uplink:")


def test_cluster_key_is_sent_to_the_network_server(gs, fwd):
    drain(gs)
    fwd.push({"rxpk": [rxpk(data_frame(fcnt=7))]})
    _, metadata = gs.ns.uplinks.get(timeout=5)
    assert ("authorization", "ClusterKey c0ffee00") in metadata


def test_protocol_v1_acks_carry_version_1_and_the_token(gs):
    fwd = Forwarder(gs.udp_address, bytes.fromhex("0000000000000011"), version=1)
    try:
        drain(gs)
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=9))]})  # asserts the PUSH_ACK bytes
        fwd.pull()  # asserts the PULL_ACK bytes
        assert next_uplink(gs.ns).payload.mac_payload.f_hdr.f_cnt == 9
    finally:
        fwd.close()


def test_fsk_multi_antenna_gps_and_lrfhss_uplinks(gs, fwd):
    drain(gs)
    fsk = rxpk(data_frame(fcnt=1), modu="FSK", datr=50000, freq=868.8)
    fsk.pop("codr")
    multi = rxpk(
        data_frame(fcnt=2),
        freq=866.349812,
        tmms=1447847063123,  # GPS ms: 2025-11-22T11:44:05.123Z (with 18 leap seconds)
        rsig=[
            {"ant": 0, "chan": 3, "rssic": -90, "rssis": -92, "lsnr": 7.5, "foff": 120, "ftime": 1000, "rssisd": 2},
            {"ant": 1, "chan": 3, "rssic": -80, "lsnr": 8.0, "etime": base64.b64encode(b"0123456789abcdef").decode(),
             "fdri": -5},
        ],
        aesk=3,  # the key id is a field of the rxpk, for the encrypted fine timestamps of all antennas
    )
    for key in ("rssi", "lsnr"):
        multi.pop(key)
    lrfhss = rxpk(data_frame(fcnt=3), modu="LR-FHSS", datr="M0CW137", codr="4/6", hpw=8, freq=868.5)
    lrfhss_multi = rxpk(data_frame(fcnt=4), modu="LR-FHSS", datr="M0CW137", codr="4/6", hpw=52, freq=868.5,
                        rsig=[{"ant": 0, "chan": 3, "rssic": -120}, {"ant": 1, "chan": 3, "rssic": -118}])
    fwd.push({"rxpk": [fsk, multi, lrfhss, lrfhss_multi]})
    got = {u.payload.mac_payload.f_hdr.f_cnt: u for u in (next_uplink(gs.ns) for _ in range(4))}

    assert got[1].settings.data_rate.fsk.bit_rate == 50000
    assert got[1].settings.frequency == 868800000

    m = got[2]
    assert m.settings.frequency == 866349812
    assert [md.antenna_index for md in m.rx_metadata] == [0, 1]
    a0, a1 = m.rx_metadata
    assert a0.rssi == -90 and a0.signal_rssi.value == -92 and a0.snr == 7.5 and a0.frequency_offset == 120
    assert a0.rssi_standard_deviation == 2 and a0.fine_timestamp == 1000 and a0.channel_index == 3
    assert a1.rssi == -80 and a1.encrypted_fine_timestamp == b"0123456789abcdef"
    assert a1.encrypted_fine_timestamp_key_id == "3" and a1.frequency_drift == -5
    # GPS time 1447847063.123 s after 1980-01-06 is 2025-11-22T11:44:05.123Z in UTC (18 leap seconds).
    assert a0.gps_time.ToJsonString() == "2025-11-22T11:44:05.123Z"
    assert a0.time.ToJsonString() == "2025-11-22T11:44:05.123Z"
    assert m.settings.time.ToJsonString() == "2025-11-22T11:44:05.123Z"

    lr = got[3].settings.data_rate.lrfhss
    assert (lr.modulation_type, lr.operating_channel_width, lr.coding_rate) == (0, 137000, "2/3")
    assert got[3].rx_metadata[0].hopping_width == 8
    assert [md.hopping_width for md in got[4].rx_metadata] == [52, 52]


def test_status_is_kept_as_the_connection_last_status(gs, fwd):
    fwd.push(
        {
            "stat": {
                "time": "2026-11-22 03:09:23 GMT",
                "lati": 52.3731,
                "long": 4.8922,
                "alti": 3,
                "rxnb": 10,
                "rxok": 9,
                "rxfw": 9,
                "ackr": 100.0,
                "dwnb": 2,
                "txnb": 2,
                "temp": 41.5,
            }
        }
    )
    gateway_id = "eui-" + fwd.eui.hex()
    stats = wait_for(lambda: (s := gs.run_in_loop(lambda: gs.daemon.server.connection_stats(gateway_id)))
                     and s.HasField("last_status") and s)
    status = stats.last_status
    assert status.time.ToJsonString() == "2026-11-22T03:09:23Z"
    assert dict(status.metrics) == pytest.approx(
        {"rxin": 10, "rxok": 9, "rxfw": 9, "ackr": 100.0, "txin": 2, "txok": 2, "temp": 41.5}
    )
    assert len(status.antenna_locations) == 1
    assert status.antenna_locations[0].latitude == pytest.approx(52.3731)
    assert list(status.ip) == ["127.0.0.1"]


def test_crc_failed_uplinks_are_dropped_and_counted(gs, fwd):
    drain(gs)
    before = metric("gs_uplinks_dropped_total", reason="crc")
    fwd.push({"rxpk": [rxpk(data_frame(fcnt=100), stat=-1), rxpk(data_frame(fcnt=101))]})
    assert next_uplink(gs.ns).payload.mac_payload.f_hdr.f_cnt == 101
    wait_for(lambda: metric("gs_uplinks_dropped_total", reason="crc") == before + 1)
    with pytest.raises(queue.Empty):
        gs.ns.uplinks.get(timeout=0.2)


def test_duplicates_keep_the_best_rssi_and_exact_repeats_are_dropped(gs, fwd):
    drain(gs)
    frame = data_frame(fcnt=555)
    fwd.push({"rxpk": [rxpk(frame, rssi=-100, chan=1), rxpk(frame, rssi=-60, chan=2), rxpk(frame, rssi=-80, chan=3)]})
    up = next_uplink(gs.ns)
    assert up.rx_metadata[0].rssi == -60 and up.rx_metadata[0].channel_index == 2
    with pytest.raises(queue.Empty):
        gs.ns.uplinks.get(timeout=0.2)

    before = metric("gs_uplinks_dropped_total", reason="repeat")
    packet = rxpk(data_frame(fcnt=556), tmst=777)
    fwd.push({"rxpk": [packet]})
    next_uplink(gs.ns)
    fwd.push({"rxpk": [packet]})  # the forwarder resent the same datagram content
    wait_for(lambda: metric("gs_uplinks_dropped_total", reason="repeat") == before + 1)
    with pytest.raises(queue.Empty):
        gs.ns.uplinks.get(timeout=0.2)


def test_exact_frequencies_are_never_rounded_down(gs, fwd):
    drain(gs)
    freqs = [868.1, 868.3, 868.5, 867.1, 867.3, 867.5, 867.7, 867.9, 869.525, 902.3, 923.3, 915.2, 433.175]
    fwd.push({"rxpk": [rxpk(data_frame(fcnt=i), freq=f, tmst=i) for i, f in enumerate(freqs)]})
    got = sorted((u.payload.mac_payload.f_hdr.f_cnt, u.settings.frequency) for u in
                 (next_uplink(gs.ns) for _ in freqs))
    assert [f for _, f in got] == [round(f * 1_000_000) for f in freqs]


def test_unparseable_frames_are_dropped_and_counted(gs, fwd):
    drain(gs)
    before = metric("gs_uplinks_dropped_total", reason="payload")
    major_1 = bytes([0x41]) + data_frame()[1:]
    fwd.push({"rxpk": [rxpk(b"\x40\x01"), rxpk(major_1), rxpk(data_frame(fcnt=900))]})
    assert next_uplink(gs.ns).payload.mac_payload.f_hdr.f_cnt == 900
    wait_for(lambda: metric("gs_uplinks_dropped_total", reason="payload") == before + 2)


def test_join_request_is_parsed(gs, fwd):
    drain(gs)
    join_eui = bytes.fromhex("70B3D57ED0000001")
    dev_eui = bytes.fromhex("0004A30B001C0530")
    frame = b"\x00" + join_eui[::-1] + dev_eui[::-1] + b"\x34\x12" + b"\x01\x02\x03\x04"
    fwd.push({"rxpk": [rxpk(frame)]})
    up = next_uplink(gs.ns)
    jr = up.payload.join_request_payload
    assert (jr.join_eui, jr.dev_eui, jr.dev_nonce) == (join_eui, dev_eui, bytes.fromhex("1234"))


def test_pull_data_and_push_data_come_from_different_ports(gs, fwd):
    fwd.push({"stat": {"rxnb": 0}})
    fwd.pull()
    gateway_id = "eui-" + fwd.eui.hex()
    conn = gs.run_in_loop(lambda: gs.daemon.server.udp.get(gateway_id))
    assert conn.up_addr[1] == fwd.up.getsockname()[1]
    assert conn.down_addr[1] == fwd.down.getsockname()[1]
    now = time.time_ns()
    assert conn.downlink_path(now, 90 * 10**9) == conn.down_addr


def test_flood_guard_drops_only_the_flooding_gateway(gs, fwd):
    drain(gs)
    before = metric("gs_udp_datagrams_dropped_total", reason="flood")
    flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood_eui = bytes.fromhex("F100D000000000FF")
    try:
        for i in range(200):
            flooder.sendto(b"\x02" + i.to_bytes(2, "big") + b"\x02" + flood_eui, gs.udp_address)
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=4242))]})
        assert next_uplink(gs.ns).payload.mac_payload.f_hdr.f_cnt == 4242
        wait_for(lambda: metric("gs_udp_datagrams_dropped_total", reason="flood") > before)
    finally:
        flooder.close()
