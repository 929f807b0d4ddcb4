"""Bad input, a failing Network Server, registration, expiry and signals: the daemon keeps its promises."""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from harness import Forwarder, Harness, data_frame, free_tcp_port, metric, next_uplink, rxpk, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GOOD_EUI = bytes.fromhex("AA555A0000000001")
_good_fcnt = itertools.count(1)


def _header(version: int, kind: int, eui: bytes) -> bytes:
    return bytes([version]) + b"\x12\x34" + bytes([kind]) + eui


valid_rxpk_json = json.dumps({"rxpk": [rxpk(data_frame())]}).encode()
malformed_datagram = st.one_of(
    st.binary(max_size=64),  # random bytes, mostly truncated headers
    st.builds(lambda v, k, tail: bytes([v, 0, 0, k]) + tail, st.integers(0, 255), st.integers(0, 255),
              st.binary(max_size=40)),  # unknown versions and packet ids
    st.builds(lambda eui, body: _header(2, 0, eui) + body, st.binary(min_size=8, max_size=8),
              st.binary(max_size=200)),  # PUSH_DATA with garbage JSON
    st.builds(lambda eui, n: _header(2, 0, eui) + valid_rxpk_json[:n], st.binary(min_size=8, max_size=8),
              st.integers(0, len(valid_rxpk_json) - 1)),  # truncated JSON
    st.builds(
        lambda eui, rx: _header(2, 0, eui) + json.dumps({"rxpk": [rx]}).encode(),
        st.binary(min_size=8, max_size=8),
        st.fixed_dictionaries(
            {},
            optional={
                "data": st.one_of(st.text(max_size=30), st.integers()),  # bad base64
                "size": st.integers(-5, 300),  # size mismatch
                "freq": st.one_of(st.floats(allow_nan=True), st.text(max_size=5), st.none()),
                "datr": st.one_of(st.text(max_size=12), st.integers(), st.none()),
                "codr": st.one_of(st.text(max_size=6), st.none()),
                "tmst": st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=4)),
                "stat": st.integers(-3, 3),
                "rsig": st.one_of(st.lists(st.dictionaries(st.text(max_size=5), st.integers()), max_size=3),
                                  st.text(max_size=3)),
                "time": st.text(max_size=30),
                "tmms": st.one_of(st.integers(-(2**50), 2**50), st.floats()),
            },
        ),
    ),
    st.builds(lambda eui, stat: _header(2, 0, eui) + json.dumps({"stat": stat}).encode(),
              st.binary(min_size=8, max_size=8),
              st.dictionaries(st.sampled_from(["time", "lati", "long", "alti", "rxnb", "ackr", "temp", "pfrm"]),
                              st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=12)))),
    st.builds(lambda eui, body: _header(2, 5, eui) + body, st.binary(min_size=8, max_size=8),
              st.binary(max_size=80)),  # TX_ACK garbage
)


@pytest.fixture(scope="module")
def gs():
    with Harness() as harness:
        yield harness


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(datagrams=st.lists(malformed_datagram, min_size=1, max_size=12))
def test_malformed_datagrams_never_disturb_a_good_gateway(gs, datagrams):
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good = Forwarder(gs.udp_address, GOOD_EUI)
    try:
        for datagram in datagrams:
            attacker.sendto(datagram, gs.udp_address)
        fcnt = next(_good_fcnt)
        good.push({"rxpk": [rxpk(data_frame(dev_addr=0x01ABCDEF, fcnt=fcnt), tmst=fcnt)]})
        deadline = time.monotonic() + 5
        while True:  # uplinks of the attacker's well-formed frames may arrive too; find ours
            up = next_uplink(gs.ns, timeout=max(0.01, deadline - time.monotonic()))
            ids = up.rx_metadata[0].gateway_ids
            if ids.eui == GOOD_EUI and up.payload.mac_payload.f_hdr.f_cnt == fcnt & 0xFFFF:
                break
    finally:
        attacker.close()
        good.close()


def test_oversized_datagram_is_refused_and_counted(gs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        big = _header(2, 0, bytes(8)) + b"{" + b" " * 65000 + b"}"
        s.sendto(big, gs.udp_address)
        good = Forwarder(gs.udp_address, GOOD_EUI)
        good.push({"stat": {}})
        good.close()
    finally:
        s.close()
    assert gs.run_in_loop(lambda: len(gs.daemon.server.udp)) >= 1


def test_a_bug_in_one_datagram_handling_keeps_the_socket_and_other_gateways_working():
    """Datagrams are handled inside the protocol callback: an exception there must not reach uvloop."""
    bad_eui = bytes.fromhex("BADBADBADBAD0001")
    with Harness() as harness:
        udp = harness.daemon.server.udp
        original = udp.accept

        def accept(data, addr, now):
            if data[4:12] == bad_eui:
                raise RuntimeError("simulated bug")
            return original(data, addr, now)

        harness.run_in_loop(lambda: setattr(udp, "accept", accept))
        before = metric("gs_udp_datagrams_dropped_total", reason="internal")
        bad = Forwarder(harness.udp_address, bad_eui)
        good = Forwarder(harness.udp_address, GOOD_EUI)
        try:
            for fcnt in range(1, 4):
                assert bad.push({"rxpk": [rxpk(data_frame(fcnt=fcnt))]}, expect_ack=False) is None
                good.push({"rxpk": [rxpk(data_frame(fcnt=fcnt))]})
                assert next_uplink(harness.ns).payload.mac_payload.f_hdr.f_cnt == fcnt
        finally:
            bad.close()
            good.close()
        assert metric("gs_udp_datagrams_dropped_total", reason="internal") == before + 3


def test_network_server_down_bounds_the_queue_then_recovers():
    ns_port = free_tcp_port()
    # A Network Server that accepts TCP but never answers: every call hangs until its deadline, like an overloaded
    # or partitioned server, so the in-flight slots stay taken while the gateway keeps sending.
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blackhole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blackhole.bind(("127.0.0.1", ns_port))
    blackhole.listen(64)
    harness = Harness(
        with_ns=False,
        ns_port=ns_port,
        upstream_max_in_flight=2,
        upstream_queue_size=5,
        upstream_retries=1,
        upstream_deadline=0.5,
    ).start()
    fwd = Forwarder(harness.udp_address, bytes.fromhex("00000000000000D0"))
    try:
        before = metric("gs_uplinks_dropped_total", reason="queue_full")
        before_err = metric("gs_uplinks_dropped_total", reason="upstream_error")
        for i in range(20):
            fwd.push({"rxpk": [rxpk(data_frame(fcnt=i), tmst=i)]})  # acked at once although nothing listens
            time.sleep(0.002)  # stay under the flood guard (10 datagrams per 10 ms)
        # 2 in flight + 5 queued; the other 13 are refused at the bound.
        assert metric("gs_uplinks_dropped_total", reason="queue_full") - before == 13
        queue_depth = metric("gs_upstream_queue_depth")
        assert queue_depth <= 5
        # The queued ones fail after their retries and are counted, not kept forever.
        wait_for(lambda: metric("gs_uplinks_dropped_total", reason="upstream_error") - before_err == 7, timeout=15)

        blackhole.close()
        harness.call(harness.start_ns())
        fcnt = 1000
        deadline = time.monotonic() + 20
        while True:  # the channel reconnects with a short backoff; keep sending until one arrives
            fwd.push({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=fcnt)]})
            try:
                up = next_uplink(harness.ns, timeout=0.5)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "forwarding did not resume"
                fcnt += 1
        assert up.payload.mac_payload.f_hdr.f_cnt >= 1000
    finally:
        blackhole.close()
        fwd.close()
        harness.stop()


def test_network_server_errors_are_counted_by_code():
    harness = Harness(upstream_retries=0).start()
    fwd = Forwarder(harness.udp_address, bytes.fromhex("00000000000000D1"))
    try:
        harness.ns.fail_with = grpc.StatusCode.PERMISSION_DENIED
        before = metric("gs_upstream_errors_total", code="PERMISSION_DENIED")
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=1))]})
        wait_for(lambda: metric("gs_upstream_errors_total", code="PERMISSION_DENIED") == before + 1)
        harness.ns.fail_with = None
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=2), tmst=2)]})
        assert next_uplink(harness.ns).payload.mac_payload.f_hdr.f_cnt == 2
    finally:
        fwd.close()
        harness.stop()


def test_registered_gateways_only_and_sighup_style_reload(tmp_path: Path):
    registry = tmp_path / "gateways.yml"
    registry.write_text(
        "gateways:\n"
        "  - eui: '0102030405060708'\n"
        "    gateway_id: rooftop-1\n"
        "    frequency_plan_id: EU_863_870\n"
        "    location: {latitude: 52.1, longitude: 5.1, altitude: 12, public: true}\n"
    )
    harness = Harness(gateways=str(registry), require_registered=True).start()
    known = Forwarder(harness.udp_address, bytes.fromhex("0102030405060708"))
    stranger = Forwarder(harness.udp_address, bytes.fromhex("1111111111111111"))
    try:
        before = metric("gs_udp_datagrams_dropped_total", reason="unregistered")
        stranger.push({"rxpk": [rxpk(data_frame())]}, expect_ack=False)
        with pytest.raises(socket.timeout):
            stranger.up.settimeout(0.3)
            stranger.up.recvfrom(64)
        assert metric("gs_udp_datagrams_dropped_total", reason="unregistered") == before + 1

        known.push({"rxpk": [rxpk(data_frame(fcnt=3))]})
        up = next_uplink(harness.ns)
        assert up.rx_metadata[0].gateway_ids.gateway_id == "rooftop-1"
        location = up.rx_metadata[0].location
        assert (location.latitude, location.longitude, location.altitude) == (52.1, 5.1, 12)

        registry.write_text(registry.read_text() + "  - eui: '1111111111111111'\n    gateway_id: newcomer\n")
        harness.run_in_loop(harness.daemon.reload)
        stranger.up.settimeout(2)
        stranger.push({"rxpk": [rxpk(data_frame(fcnt=4))]})
        assert next_uplink(harness.ns).rx_metadata[0].gateway_ids.gateway_id == "newcomer"
        # The existing connection survived the reload.
        assert harness.run_in_loop(lambda: harness.daemon.server.udp.get("rooftop-1")) is not None
    finally:
        known.close()
        stranger.close()
        harness.stop()


def test_silent_gateway_is_disconnected_and_keeps_its_stats():
    harness = Harness(connection_expires="300ms").start()
    fwd = Forwarder(harness.udp_address, bytes.fromhex("00000000000000E1"))
    try:
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=1))]})
        next_uplink(harness.ns)
        gateway_id = "eui-00000000000000e1"
        server = harness.daemon.server
        wait_for(lambda: harness.run_in_loop(lambda: server.udp.get(gateway_id)) is None, timeout=5)
        stats = harness.run_in_loop(lambda: server.connection_stats(gateway_id))
        assert stats is not None and stats.HasField("disconnected_at") and stats.uplink_count == 1
        assert harness.run_in_loop(lambda: server.connection_stats("never-seen")) is None
    finally:
        fwd.close()
        harness.stop()


def test_json_lines_without_a_network_server(tmp_path: Path):
    out = tmp_path / "uplinks.jsonl"
    harness = Harness(with_ns=False, ns_address="", uplink_output=str(out)).start()
    fwd = Forwarder(harness.udp_address, bytes.fromhex("00000000000000F1"))
    try:
        fwd.push({"rxpk": [rxpk(data_frame(dev_addr=0x260B0001, fcnt=77), freq=868.3)]})
        line = wait_for(lambda: out.exists() and out.read_text().strip())
        doc = json.loads(line.splitlines()[0])
        assert doc["settings"]["frequency"] == "868300000"
        assert doc["payload"]["mac_payload"]["f_hdr"]["dev_addr"] == "260B0001"
        assert doc["payload"]["mac_payload"]["f_hdr"]["f_cnt"] == 77
        assert doc["rx_metadata"][0]["gateway_ids"]["eui"] == "00000000000000F1"
        assert doc["crc_status"] is True
    finally:
        fwd.close()
        harness.stop()


def test_sigterm_exits_zero():
    env = dict(os.environ)
    env.pop("GS_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewayserver", "run", "--udp-listen", "127.0.0.1:0",
         "--http-listen", f"127.0.0.1:{free_tcp_port()}", "--grpc-listen", f"127.0.0.1:{free_tcp_port()}",
         "--ns-address", f"127.0.0.1:{free_tcp_port()}"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        for line in proc.stderr:
            if "gateway server started" in line:
                break
            assert time.monotonic() < deadline and proc.poll() is None, line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_gateway_table_is_bounded_against_eui_cycling():
    harness = Harness(max_gateways=5).start()
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        before = metric("gs_gateway_disconnects_total", reason="evicted")
        for i in range(50):
            attacker.sendto(b"\x02\x00\x00\x02" + (0xBAD0000000000000 + i).to_bytes(8, "big"), harness.udp_address)
        # Each newcomer evicts the least recently active unregistered gateway: the table never grows.
        wait_for(lambda: metric("gs_gateway_disconnects_total", reason="evicted") == before + 45)
        assert harness.run_in_loop(lambda: len(harness.daemon.server.udp)) == 5
        assert harness.run_in_loop(lambda: harness.daemon.server.udp.get("eui-bad0000000000031")) is not None
    finally:
        attacker.close()
        harness.stop()


def test_global_conf_of_a_gateway_with_two_plans_has_one_sx1301_conf_each(tmp_path: Path):
    """A 16-channel US gateway: two concentrators, one plan each, both in the generated global_conf.json."""
    from gatewayserver.api import gcs

    registry = tmp_path / "gateways.yml"
    registry.write_text(
        "gateways:\n"
        "  - eui: '0102030405060709'\n"
        "    gateway_id: sixteen-channels\n"
        "    frequency_plan_ids: [US_902_928_FSB_1, US_902_928_FSB_2]\n"
    )
    with Harness(gateways=str(registry)) as harness:
        plans = harness.run_in_loop(lambda: harness.daemon.server.gateway_frequency_plans("sixteen-channels"))
        conf = gcs.global_conf(plans, bytes.fromhex("0102030405060709"), gcs.GcsSettings())
    assert [p.id for p in plans] == ["US_902_928_FSB_1", "US_902_928_FSB_2"]
    first, second = conf["SX1301_conf"]
    assert first["radio_0"]["freq"] != second["radio_0"]["freq"]
    assert first["chan_multiSF_0"]["enable"] and second["chan_multiSF_0"]["enable"]
    assert conf["gateway_conf"]["gateway_ID"] == "0102030405060709"
