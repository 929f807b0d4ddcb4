"""Connection semantics, events on the bus, DevAddr routing and CRC forwarding, over real sockets."""

from __future__ import annotations

import queue
import socket

import pytest
from harness import (
    EventRecorder,
    Forwarder,
    Harness,
    data_frame,
    free_tcp_port,
    metric,
    next_uplink,
    rxpk,
    start_extra_ns,
    wait_for,
)

from gatewayserver.ttnpb import error_pb2, gateway_pb2, messages_pb2


def test_uplink_lifecycle_events_are_published():
    harness = Harness(connection_expires="400ms").start()
    eui = bytes.fromhex("0000000000000EE1")
    gateway_id = "eui-" + eui.hex()
    recorder = EventRecorder(harness, [gateway_id])
    fwd = Forwarder(harness.udp_address, eui)
    try:
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=1))], "stat": {"rxnb": 1, "time": "2026-11-22 03:09:23 GMT"}})
        next_uplink(harness.ns)
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=2), stat=-1)]})

        connect = recorder.wait_for("gs.gateway.connect")
        receive = recorder.wait_for("gs.up.receive")
        recorder.wait_for("gs.up.forward")
        status = recorder.wait_for("gs.status.receive")
        drop = recorder.wait_for("gs.up.drop")
        disconnect = recorder.wait_for("gs.gateway.disconnect", timeout=6)

        conn_id = connect.correlation_ids[0]
        assert conn_id.startswith("gs:conn:")
        assert connect.gateway_ids == ((gateway_id, eui),)
        assert isinstance(receive.data, messages_pb2.GatewayUplinkMessage)
        assert receive.data.band_id == "EU_863_870"
        assert receive.data.message.payload.mac_payload.f_hdr.f_cnt == 1
        assert conn_id in receive.correlation_ids
        assert any(c.startswith("gs:uplink:") for c in receive.correlation_ids)
        assert isinstance(status.data, gateway_pb2.GatewayStatus)
        assert isinstance(drop.data, error_pb2.ErrorDetails) and drop.data.name == "message_crc"
        assert disconnect.correlation_ids == (conn_id,) or list(disconnect.correlation_ids) == [conn_id]
        # The proto form carries the reference's fields.
        proto = receive.to_proto()
        assert proto.name == "gs.up.receive" and proto.unique_id and proto.origin
        assert proto.data.type_url == "type.googleapis.com/ttn.lorawan.v3.GatewayUplinkMessage"
        assert proto.identifiers[0].gateway_ids.gateway_id == gateway_id
    finally:
        fwd.close()
        harness.stop()


def test_repeat_publishes_gs_io_up_repeat():
    harness = Harness().start()
    eui = bytes.fromhex("0000000000000EE2")
    recorder = EventRecorder(harness, ["eui-" + eui.hex()])
    fwd = Forwarder(harness.udp_address, eui)
    try:
        packet = rxpk(data_frame(fcnt=9), tmst=99)
        fwd.push({"rxpk": [packet]})
        fwd.push({"rxpk": [packet]})
        recorder.wait_for("gs.io.up.repeat")
        assert recorder.names().count("gs.up.receive") == 1
    finally:
        fwd.close()
        harness.stop()


def test_forward_crc_failed_sends_them_with_crc_status_false():
    harness = Harness(forward_crc_failed=True).start()
    fwd = Forwarder(harness.udp_address, bytes.fromhex("0000000000000CC1"))
    try:
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=5), stat=-1)]})
        up = next_uplink(harness.ns)
        assert up.HasField("crc_status") and up.crc_status.value is False
    finally:
        fwd.close()
        harness.stop()


def test_uplinks_route_by_devaddr_prefix_and_joins_go_to_the_default():
    other_port = free_tcp_port()
    harness = Harness(ns_route=[f"26000000/7=127.0.0.1:{other_port}"]).start()
    other, server = start_extra_ns(harness, other_port)
    fwd = Forwarder(harness.udp_address, bytes.fromhex("0000000000000AA1"))
    try:
        fwd.push({"rxpk": [rxpk(data_frame(dev_addr=0x27FFFFFF, fcnt=1), tmst=1)]})  # inside 26000000/7
        fwd.push({"rxpk": [rxpk(data_frame(dev_addr=0x01020304, fcnt=2), tmst=2)]})  # outside: default
        join = b"\x00" + bytes(8) + bytes(8) + b"\x01\x00" + bytes(4)
        fwd.push({"rxpk": [rxpk(join, tmst=3)]})
        routed = other.uplinks.get(timeout=5)[0]
        assert routed.payload.mac_payload.f_hdr.dev_addr == bytes.fromhex("27FFFFFF")
        defaults = {next_uplink(harness.ns).settings.timestamp for _ in range(2)}
        assert defaults == {2, 3}
        with pytest.raises(queue.Empty):
            other.uplinks.get(timeout=0.2)
    finally:
        fwd.close()
        harness.call(server.stop(0))
        harness.stop()


def test_reconnect_from_a_new_address_replaces_the_connection():
    harness = Harness().start()
    eui = bytes.fromhex("0000000000000BB1")
    gateway_id = "eui-" + eui.hex()
    recorder = EventRecorder(harness, [gateway_id])
    first = Forwarder(harness.udp_address, eui)
    second = Forwarder(harness.udp_address, eui)
    try:
        first.push({"stat": {}})
        old = harness.run_in_loop(lambda: harness.daemon.server.udp.get(gateway_id))
        # Same IP, other ports: a forwarder restart behind the same NAT is the same connection.
        second.push({"stat": {}})
        assert harness.run_in_loop(lambda: harness.daemon.server.udp.get(gateway_id)) is old
        # A different source IP (127.0.0.2 is loopback too) is a new connection that replaces the old one.
        moved = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        moved.bind(("127.0.0.2", 0))
        moved.settimeout(2)
        moved.sendto(b"\x02\x00\x01\x02" + eui, harness.udp_address)
        assert moved.recvfrom(16)[0] == b"\x02\x00\x01\x04"
        new = harness.run_in_loop(lambda: harness.daemon.server.udp.get(gateway_id))
        assert new is not old and new.host == "127.0.0.2" and old.closed
        recorder.wait_for("gs.gateway.disconnect")
        assert recorder.names().count("gs.gateway.connect") == 2
        assert metric("gs_gateway_disconnects_total", reason="replaced") >= 1
        moved.close()
    finally:
        first.close()
        second.close()
        harness.stop()


def test_address_change_block_refuses_a_spoofed_address():
    harness = Harness(address_change_block="5s").start()
    eui = bytes.fromhex("0000000000000BB2")
    fwd = Forwarder(harness.udp_address, eui)
    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        fwd.push({"stat": {}})
        before = metric("gs_udp_datagrams_dropped_total", reason="address_changed")
        spoofer.bind(("127.0.0.3", 0))
        spoofer.settimeout(0.3)
        spoofer.sendto(b"\x02\x00\x01\x02" + eui, harness.udp_address)
        with pytest.raises(socket.timeout):
            spoofer.recvfrom(16)
        wait_for(lambda: metric("gs_udp_datagrams_dropped_total", reason="address_changed") == before + 1)
        conn = harness.run_in_loop(lambda: harness.daemon.server.udp.get("eui-" + eui.hex()))
        assert conn.host == "127.0.0.1"
        fwd.pull()  # the real gateway is unaffected
    finally:
        spoofer.close()
        fwd.close()
        harness.stop()


def test_downlink_path_expires_without_pull_data():
    harness = Harness(downlink_path_expires="200ms").start()
    eui = bytes.fromhex("0000000000000BB3")
    fwd = Forwarder(harness.udp_address, eui)
    try:
        fwd.pull()
        conn = harness.run_in_loop(lambda: harness.daemon.server.udp.get("eui-" + eui.hex()))
        settings = harness.daemon.server.udp.settings
        import time

        assert conn.downlink_path(time.time_ns(), settings.downlink_path_expires_ns) is not None
        time.sleep(0.3)
        assert conn.downlink_path(time.time_ns(), settings.downlink_path_expires_ns) is None
        fwd.pull()
        assert conn.downlink_path(time.time_ns(), settings.downlink_path_expires_ns) is not None
    finally:
        fwd.close()
        harness.stop()


def test_connect_log_line_has_uppercase_eui_and_host_port(caplog: pytest.LogCaptureFixture):
    """Item 18/23: the API prints EUIs uppercase, and so must the log; addresses are host:port, not tuples."""
    import logging

    caplog.set_level(logging.INFO, logger="gatewayserver.core.gateways")
    with Harness() as harness:
        fwd = Forwarder(harness.udp_address, bytes.fromhex("abcdef0123456789"))
        try:
            fwd.pull()
            record = wait_for(lambda: next((r for r in caplog.records if r.getMessage() == "gateway connected"), None))
            port = fwd.down.getsockname()[1]
            assert record.__dict__["eui"] == "ABCDEF0123456789"
            assert record.__dict__["remote"] == f"127.0.0.1:{port}"
        finally:
            fwd.close()
