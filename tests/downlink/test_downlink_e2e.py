"""Downlinks end to end: simulated forwarder -> daemon -> stand-in Network Server -> ScheduleDownlink -> PULL_RESP.

Everything goes over real sockets on loopback: UDP between the simulator and the daemon, gRPC between the daemon
and the stand-in Network Server (which is how the tests obtain real uplink tokens).
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from downlink_support import GATEWAY_ID, class_a, class_c, lora, now_ns, token_of

from gatewayserver.errors import ABORTED, DATA_LOSS, GsError
from gatewayserver.ttnpb import gatewayserver_pb2, lorawan_pb2, messages_pb2

Result = messages_pb2.TxAcknowledgment.Result


def window_errors(exc: GsError, path: int = 0) -> list:
    """The per-window ErrorDetails of one path of a failed ScheduleDownlink."""
    (details,) = exc.details
    assert isinstance(details, gatewayserver_pb2.ScheduleDownlinkErrorDetails)
    path_error = details.path_errors[path]
    assert path_error.name == "schedule_path"
    tx_schedule = path_error.cause
    assert (tx_schedule.namespace, tx_schedule.name, tx_schedule.code) == ("pkg/gatewayserver/io", "tx_schedule", 10)
    inner = gatewayserver_pb2.ScheduleDownlinkErrorDetails()
    assert tx_schedule.details[0].Unpack(inner)
    return list(inner.path_errors)


async def next_downlink(gw, timeout: float = 3.0):
    async with asyncio.timeout(timeout):
        return await gw.received_downlinks.get()


async def test_class_a_rx1_fields(harness) -> None:
    gw = await harness.gateway()
    up, tmst = await harness.uplink(gw)
    payload = bytes(range(0x60, 0x60 + 23))
    msg = class_a(token_of(up), payload, rx1=lora(9), rx1_frequency=868_300_000)
    before = now_ns()
    response = await harness.server.schedule_downlink(msg)
    assert response.rx1 and not response.rx2
    assert response.downlink_path.uplink_token == token_of(up)
    delay = response.delay.seconds * 1_000_000_000 + response.delay.nanos
    assert 0 < delay <= 1_000_000_000
    down = await next_downlink(gw)
    txpk = down.txpk
    assert txpk["tmst"] == (tmst + 1_000_000) % (1 << 32)
    assert txpk["freq"] == 868.3
    assert txpk["datr"] == "SF9BW125"
    assert txpk["codr"] == "4/5"
    assert txpk["modu"] == "LORA"
    assert txpk["powe"] == 14  # 16.15 dBm EIRP - 2.15
    assert txpk["ipol"] is True
    assert txpk["ncrc"] is True
    assert txpk["size"] == len(payload)
    assert base64.b64decode(txpk["data"]) == payload
    assert "imme" not in txpk
    # Schedule late: no jit queue shown yet, so the PULL_RESP left about 800 ms before the transmission.
    held = down.received_ns - before
    assert held >= delay - 800_000_000 - 50_000_000
    names = harness.events.names()
    assert "gs.down.schedule.attempt" in names and "gs.down.send" in names


async def test_rx2_when_rx1_too_late_then_both_refused(harness) -> None:
    gw = await harness.gateway()
    up, tmst = await harness.uplink(gw)
    await asyncio.sleep(0.95)  # RX1 (1 s after the uplink) is now closer than the 130 ms minimum lead time
    response = await harness.server.schedule_downlink(class_a(token_of(up)))
    assert response.rx2 and not response.rx1
    down = await next_downlink(gw)
    assert down.txpk["tmst"] == (tmst + 2_000_000) % (1 << 32)
    assert down.txpk["freq"] == 869.525
    assert down.txpk["datr"] == "SF12BW125"
    assert down.txpk["powe"] == 27  # 29.15 dBm in the 10 % sub-band

    await asyncio.sleep(1.0)  # now RX2 is past too
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_a(token_of(up), cids=("ns:late",)))
    exc = info.value
    assert (exc.namespace, exc.name, exc.code) == ("pkg/gatewayserver", "schedule", ABORTED)
    windows = window_errors(exc)
    assert [w.attributes["window"] for w in windows] == [1, 2]
    for w in windows:
        assert w.name == "rx_window_schedule"
        assert (w.cause.namespace, w.cause.name) == ("pkg/gatewayserver/scheduling", "too_late")
        assert w.cause.code == 9
    fails = await harness.events.wait_for("gs.down.schedule.fail")
    assert fails[-1].data.cause.name == "tx_schedule"


async def test_forged_token_refused(harness) -> None:
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    token = bytearray(token_of(up))
    token[5] ^= 0x01
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_a(bytes(token)))
    exc = info.value
    assert (exc.namespace, exc.name, exc.code) == ("pkg/gatewayserver", "uplink_token", DATA_LOSS)
    (details,) = exc.details
    assert details.path_errors[0].name == "uplink_token"
    assert details.path_errors[0].code == DATA_LOSS
    assert gw.received_downlinks.empty()


async def test_not_connected(harness) -> None:
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_c("nobody-here"))
    (details,) = info.value.details
    assert details.path_errors[0].name == "schedule_path"
    assert details.path_errors[0].attributes["gateway_uid"] == "nobody-here"
    assert (details.path_errors[0].cause.name, details.path_errors[0].cause.code) == ("not_connected", 5)


async def test_class_c_as_soon_as_possible(harness) -> None:
    gw = await harness.gateway()
    await harness.uplink(gw)  # syncs the clock
    start = now_ns()
    response = await harness.server.schedule_downlink(class_c())
    delay = response.delay.seconds * 1_000_000_000 + response.delay.nanos
    assert 100_000_000 <= delay <= 200_000_000  # the minimum lead time, nothing else booked
    down = await next_downlink(gw)
    assert down.txpk["freq"] == 869.525 and down.txpk["datr"] == "SF9BW125"
    # The second one slides past the first (time-on-air + 30 ms time-off-air).
    response2 = await harness.server.schedule_downlink(class_c())
    delay2 = response2.delay.seconds * 1_000_000_000 + response2.delay.nanos
    down2 = await next_downlink(gw)
    gap_us = (down2.txpk["tmst"] - down.txpk["tmst"]) % (1 << 32)
    assert gap_us * 1000 >= 30_000_000
    assert delay2 + (now_ns() - start) > delay


async def test_class_c_imme_without_clock_sync(harness) -> None:
    gw = await harness.gateway()  # PULL_DATA only: no uplink, so no concentrator clock yet
    response = await harness.server.schedule_downlink(class_c())
    # Reported (and booked) when the reference forwarder really transmits an `imme` packet: about 1 s later.
    delay = response.delay.seconds * 1_000_000_000 + response.delay.nanos
    assert 900_000_000 <= delay <= 1_000_000_000
    down = await next_downlink(gw)
    assert down.txpk.get("imme") is True
    assert "tmst" not in down.txpk


async def test_class_c_second_imme_is_held_until_its_booking(harness) -> None:
    """`imme` has no time field: a booking slid past the first emission is honoured by sending it that much later."""
    gw = await harness.gateway()
    first = await harness.server.schedule_downlink(class_c())
    second = await harness.server.schedule_downlink(class_c())
    first_delay = first.delay.seconds * 1_000_000_000 + first.delay.nanos
    second_delay = second.delay.seconds * 1_000_000_000 + second.delay.nanos
    slide = second_delay - first_delay
    assert slide >= 150_000_000  # SF9 time-on-air of 17 bytes plus the time-off-air
    await next_downlink(gw)
    first_at = now_ns()
    down = await next_downlink(gw)
    assert down.txpk.get("imme") is True
    # Not before its hold ends (a lower bound only: a loaded machine can only make it later).
    assert now_ns() - first_at >= slide - 50_000_000


async def test_class_c_absolute_time_refused_on_a_stand_in_clock(harness) -> None:
    """An earlier `imme` downlink must not make the server's clock pass for the gateway's (no tmst from it)."""
    gw = await harness.gateway()  # no uplink: the concentrator counter is unknown
    await harness.server.schedule_downlink(class_c())
    await next_downlink(gw)
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_c(absolute_time_ns=now_ns() + 3_000_000_000))
    windows = window_errors(info.value)
    assert windows[1].cause.name == "no_clock_sync"
    # Once the gateway's own timestamps sync the clock, the same request is served with a real tmst.
    await harness.uplink(gw)
    await harness.server.schedule_downlink(class_c(absolute_time_ns=now_ns() + 3_000_000_000))
    down = await next_downlink(gw)
    assert "tmst" in down.txpk and "imme" not in down.txpk


async def test_class_c_absolute_time(harness) -> None:
    gw = await harness.gateway()
    _, tmst = await harness.uplink(gw)
    at = now_ns() + 1_500_000_000
    response = await harness.server.schedule_downlink(class_c(absolute_time_ns=at))
    delay = response.delay.seconds * 1_000_000_000 + response.delay.nanos
    assert 1_300_000_000 <= delay <= 1_500_000_000
    down = await next_downlink(gw)
    # tmst is the server time converted through the clock sync of the uplink.
    expected = (tmst + (at - harness.events.of("gs.up.receive")[0].time_ns) // 1000) % (1 << 32)
    assert abs(((down.txpk["tmst"] - expected + (1 << 31)) % (1 << 32)) - (1 << 31)) <= 2


async def test_class_b_needs_gps(harness) -> None:
    gw = await harness.gateway()
    await harness.uplink(gw)
    msg = class_c(absolute_time_ns=now_ns() + 2_000_000_000)
    setattr(msg.request, "class", lorawan_pb2.CLASS_B)
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(msg)
    windows = window_errors(info.value)
    assert windows[0].cause.name == "rx_empty"
    assert windows[1].cause.name == "no_absolute_gateway_time"


async def test_duty_cycle_exhaustion(harness) -> None:
    gw = await harness.gateway()
    await harness.uplink(gw)
    # 868.1 MHz is in a 1 % sub-band: 36 s per hour, 14.4 s of it for LOWEST. SF12 with 56 bytes is ~2.8 s,
    # so five fit and the sixth is refused.
    payload = b"\x60" + bytes(55)
    base = now_ns() + 2_000_000_000
    for i in range(5):
        await harness.server.schedule_downlink(
            class_c(payload=payload, frequency=868_100_000, data_rate=lora(12), priority=lorawan_pb2.LOWEST,
                    absolute_time_ns=base + i * 3_000_000_000)
        )
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(
            class_c(payload=payload, frequency=868_100_000, data_rate=lora(12), priority=lorawan_pb2.LOWEST,
                    absolute_time_ns=base + 5 * 3_000_000_000)
        )
    cause = window_errors(info.value)[1].cause
    assert (cause.namespace, cause.name, cause.code) == ("pkg/gatewayserver/scheduling", "duty_cycle", 8)
    assert cause.attributes["priority"] == "LOWEST"
    assert cause.attributes["usable"] == pytest.approx(0.004)
    # A higher priority still finds room in the same sub-band.
    await harness.server.schedule_downlink(
        class_c(payload=payload, frequency=868_100_000, data_rate=lora(12), priority=lorawan_pb2.HIGHEST,
                absolute_time_ns=base + 5 * 3_000_000_000)
    )
    stats = harness.server.connection_stats(GATEWAY_ID)
    (sb,) = [s for s in stats.sub_bands if s.min_frequency == 868_000_000]
    assert sb.downlink_utilization_limit == pytest.approx(0.01)


async def test_conflict_and_payload_too_long(harness) -> None:
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    await harness.server.schedule_downlink(class_a(token_of(up)))
    with pytest.raises(GsError) as info:
        # RX1: the same slot is taken. RX2: too long for SF12 (DR0 carries 59 bytes of MAC payload, 64 of PHY).
        await harness.server.schedule_downlink(class_a(token_of(up), b"\x60" + bytes(70)))
    windows = window_errors(info.value)
    assert (windows[0].cause.name, windows[0].cause.code) == ("conflict", 6)
    assert windows[1].cause.name == "too_long"
    assert windows[1].cause.attributes["maximum_length"] == 64
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_a(token_of(up), rx2_frequency=0))
    windows = window_errors(info.value)
    assert windows[0].cause.name == "conflict"
    assert (windows[1].cause.name, windows[1].cause.code) == ("rx_empty", 9)


async def test_frequency_outside_sub_bands(harness) -> None:
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_a(token_of(up), rx1_frequency=868_650_000, rx2_frequency=0))
    cause = window_errors(info.value)[0].cause
    assert (cause.name, cause.attributes["frequency"]) == ("sub_band_not_found", 868_650_000)


# --- TX_ACK -------------------------------------------------------------------------------------------------------


async def test_tx_ack_success_reported(harness) -> None:
    from prometheus_client import REGISTRY

    sent_before = REGISTRY.get_sample_value("gs_downlinks_sent_total") or 0
    gw = await harness.gateway()  # the simulator answers every PULL_RESP with an empty TX_ACK (success)
    up, _ = await harness.uplink(gw)
    await harness.server.schedule_downlink(class_a(token_of(up), cids=("ns:ok",)))
    await next_downlink(gw)
    async with asyncio.timeout(3.0):
        report = await harness.ns.tx_acks.get()
    assert report.gateway_ids.gateway_id == GATEWAY_ID
    assert report.tx_ack.result == Result.SUCCESS
    assert "ns:ok" in report.tx_ack.correlation_ids
    assert report.tx_ack.downlink_message.scheduled.frequency == 868_100_000
    await harness.events.wait_for("gs.txack.forward")
    names = harness.events.names()
    for name in ("gs.down.send", "gs.txack.receive", "gs.down.tx.success", "gs.txack.forward"):
        assert name in names
    assert "gs.down.tx.fail" not in names
    assert "ns:ok" in harness.events.of("gs.down.tx.success")[0].correlation_ids
    assert (REGISTRY.get_sample_value("gs_downlinks_sent_total") or 0) == sent_before + 1
    stats = harness.server.connection_stats(GATEWAY_ID)
    assert stats.round_trip_times.count == 1
    assert stats.downlink_count == 1 and stats.tx_acknowledgment_count == 1
    assert harness.daemon.server.udp.get(GATEWAY_ID).has_jit_queue


@pytest.mark.parametrize(
    "error", ["TOO_LATE", "TOO_EARLY", "COLLISION_PACKET", "COLLISION_BEACON", "TX_FREQ", "TX_POWER", "GPS_UNLOCKED"]
)
async def test_tx_ack_error_reported(make_harness, error: str) -> None:
    harness = await make_harness()
    gw = await harness.gateway(tx_ack=error)
    await harness.uplink(gw)
    await harness.server.schedule_downlink(class_c())  # class C: no RX2 to fall back to
    down = await next_downlink(gw)
    assert down.tx_ack_error == error
    async with asyncio.timeout(3.0):
        report = await harness.ns.tx_acks.get()
    assert report.tx_ack.result == Result.Value(error)
    assert "ns:downlink:c" in report.tx_ack.correlation_ids
    (fail,) = await harness.events.wait_for("gs.down.tx.fail")
    assert fail.data.string_value == error
    assert "gs.down.tx.success" not in harness.events.names()


async def test_tx_ack_unknown_token_dropped(harness) -> None:
    gw = await harness.gateway()
    await gw.send_tx_ack(b"\x7f\x7f", "TOO_LATE")
    (drop,) = await harness.events.wait_for("gs.txack.drop")
    assert drop.data.name == "tx_ack_token"
    assert harness.ns.tx_acks.empty()


async def test_rx2_retry_after_rx1_too_late(harness) -> None:
    answers = iter(["TOO_LATE"])

    def policy(gw, txpk):
        return next(answers, None)  # refuse the first transmission, accept the rest

    gw = await harness.gateway(tx_ack=policy)
    up, tmst = await harness.uplink(gw)
    response = await harness.server.schedule_downlink(class_a(token_of(up), cids=("ns:retry",)))
    assert response.rx1
    first = await next_downlink(gw)
    assert first.tx_ack_error == "TOO_LATE"
    assert first.txpk["tmst"] == (tmst + 1_000_000) % (1 << 32)
    second = await next_downlink(gw)
    assert second.tx_ack_error is None
    assert second.txpk["tmst"] == (tmst + 2_000_000) % (1 << 32)
    assert second.txpk["freq"] == 869.525 and second.txpk["datr"] == "SF12BW125"
    async with asyncio.timeout(3.0):
        report = await harness.ns.tx_acks.get()
    assert report.tx_ack.result == Result.SUCCESS  # only the final outcome is reported
    assert "ns:retry" in report.tx_ack.correlation_ids
    assert report.tx_ack.downlink_message.scheduled.frequency == 869_525_000
    await asyncio.sleep(0.1)
    assert harness.ns.tx_acks.empty()
    assert len(harness.events.of("gs.txack.receive")) == 2
    assert len(harness.events.of("gs.down.send")) == 2
    assert len(harness.events.of("gs.down.tx.success")) == 1
    assert not harness.events.of("gs.down.tx.fail")


async def test_rx2_retry_after_a_long_rx1_is_refused(harness) -> None:
    """A join-accept at SF12 lasts ~1.5 s, longer than RX1-to-RX2: the refused RX1 must give its slot back."""
    answers = iter(["COLLISION_PACKET"])
    gw = await harness.gateway(tx_ack=lambda gw, txpk: next(answers, None))
    up, tmst = await harness.uplink(gw)
    join_accept = b"\x20" + bytes(32)
    msg = class_a(token_of(up), join_accept, rx1=lora(12), rx1_delay=5)
    response = await harness.server.schedule_downlink(msg)
    assert response.rx1
    first = await next_downlink(gw, timeout=8)
    assert first.tx_ack_error == "COLLISION_PACKET" and first.txpk["datr"] == "SF12BW125"
    second = await next_downlink(gw, timeout=8)
    assert second.txpk["tmst"] == (tmst + 6_000_000) % (1 << 32)
    async with asyncio.timeout(8.0):
        report = await harness.ns.tx_acks.get()
    assert report.tx_ack.result == Result.SUCCESS


async def test_rx2_retry_impossible_reports_rx1_failure(harness) -> None:
    gw = await harness.gateway(tx_ack="TOO_LATE")
    up, _ = await harness.uplink(gw)
    await harness.server.schedule_downlink(class_a(token_of(up), rx2_frequency=0))
    async with asyncio.timeout(3.0):
        report = await harness.ns.tx_acks.get()
    assert report.tx_ack.result == Result.TOO_LATE
    assert len(harness.events.of("gs.down.send")) == 1


# --- schedule late ------------------------------------------------------------------------------------------------


async def _hold_time(harness, gw, lead_s: float = 1.5) -> int:
    """Schedule class C `lead_s` ahead; how long the daemon held the PULL_RESP (ns)."""
    start = now_ns()
    await harness.server.schedule_downlink(class_c(absolute_time_ns=start + int(lead_s * 1e9)))
    down = await next_downlink(gw)
    return down.received_ns - start


async def test_schedule_late_until_jit_queue_shown(harness) -> None:
    gw = await harness.gateway()
    await harness.uplink(gw)
    # No TX_ACK seen yet: held until 800 ms before the 1.5 s transmission.
    assert 600_000_000 <= await _hold_time(harness, gw) <= 900_000_000
    await harness.events.wait_for("gs.txack.receive")
    # The gateway acknowledged, so it has a jit queue: sent at once.
    assert await _hold_time(harness, gw) < 200_000_000


async def test_schedule_late_configured(make_harness) -> None:
    harness = await make_harness(schedule_downlink_late=True, schedule_late_time=1.0)
    gw = await harness.gateway()
    await harness.uplink(gw)
    assert 350_000_000 <= await _hold_time(harness, gw) <= 700_000_000
    await harness.events.wait_for("gs.txack.receive")
    # Configured late: held even though the gateway has shown a jit queue.
    assert 350_000_000 <= await _hold_time(harness, gw) <= 700_000_000


async def test_disconnect_cancels_held_downlinks(harness) -> None:
    gw = await harness.gateway()
    await harness.uplink(gw)
    await harness.server.schedule_downlink(class_c(absolute_time_ns=now_ns() + 1_500_000_000))
    conn = harness.server.udp.get(GATEWAY_ID)
    assert conn.core.held_count == 1
    harness.server.udp_handler.handle_timer(now_ns() + 10**12)  # the connection expires
    assert harness.server.udp.get(GATEWAY_ID) is None
    assert conn.core.held_count == 0
    await asyncio.sleep(1.0)
    assert gw.received_downlinks.empty()


async def test_pending_tx_bounded(harness) -> None:
    from gatewayserver.core.connection import MAX_PENDING

    gw = await harness.gateway(auto_tx_ack=False)
    await harness.uplink(gw)
    conn = harness.server.udp.get(GATEWAY_ID)
    conn.has_jit_queue = True  # send at once so the PULL_RESPs pile up unacknowledged
    for _ in range(MAX_PENDING + 6):
        await harness.server.schedule_downlink(class_c(data_rate=lora(7)))
    tokens = conn.core.link.tokens  # PULL_RESP token -> downlink, as the UDP frontend keeps them for TX_ACK
    assert len(tokens) == MAX_PENDING and conn.core.pending_count == MAX_PENDING
    oldest = min(tokens)
    assert oldest == 1 + 6  # the first six were forgotten


async def test_antenna_gain_lowers_power(make_harness) -> None:
    harness = await make_harness(antenna_gain=3.0)
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    await harness.server.schedule_downlink(class_a(token_of(up)))
    down = await next_downlink(gw)
    assert down.txpk["powe"] == 11  # 16.15 - 3 - 2.15


async def test_class_b_with_gps_time(harness) -> None:
    gw = await harness.gateway(gps=True)
    await harness.uplink(gw)
    at = now_ns() + 1_200_000_000
    msg = class_c(absolute_time_ns=at)
    setattr(msg.request, "class", lorawan_pb2.CLASS_B)
    await harness.server.schedule_downlink(msg)
    down = await next_downlink(gw)
    from gatewayserver.gpstime import unix_ns_to_gps_ms

    assert down.txpk["tmms"] == unix_ns_to_gps_ms(at)
    assert "tmst" not in down.txpk and "imme" not in down.txpk


async def test_not_a_tx_request(harness) -> None:
    msg = messages_pb2.DownlinkMessage(raw_payload=b"\x60")
    msg.scheduled.frequency = 868_100_000
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(msg)
    assert (info.value.name, info.value.code) == ("not_tx_request", 3)


async def test_connection_without_a_sender_fails_the_downlink_cleanly(harness) -> None:
    """A connection no frontend has attached a sender to has no downlink path: a clean refusal, no crash.

    The send step used to fall back to a `GatewayServer.transmit` that does not exist, so this raised AttributeError
    out of ScheduleDownlink (or, for a held downlink, out of a timer callback). The UDP link now reports such a
    connection as having no downlink path, so the request is refused before anything is booked.
    """
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    conn = harness.server.udp.get(GATEWAY_ID)
    conn.transmit = None
    with pytest.raises(GsError) as info:
        await harness.server.schedule_downlink(class_a(token_of(up)))
    (path_error,) = info.value.details[0].path_errors
    assert path_error.cause.name == "downlink_path_expired"
    assert "gs.down.send" not in harness.events.names()
    assert gw.received_downlinks.empty()
