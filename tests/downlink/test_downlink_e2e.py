"""Downlinks end to end: simulated forwarder -> daemon -> stand-in Network Server -> ScheduleDownlink -> PULL_RESP.

Everything goes over real sockets on loopback: UDP between the simulator and the daemon, gRPC between the daemon
and the stand-in Network Server (which is how the tests obtain real uplink tokens).
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from gatewayserver.errors import ABORTED, DATA_LOSS, GsError
from gatewayserver.ttnpb import gatewayserver_pb2, lorawan_pb2, messages_pb2

from downlink_support import GATEWAY_ID, class_a, class_c, lora, now_ns, token_of

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
    assert response.delay.seconds == 0
    down = await next_downlink(gw)
    assert down.txpk.get("imme") is True
    assert "tmst" not in down.txpk


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
