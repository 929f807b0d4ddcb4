"""One info line per downlink outcome (scheduled, sent, acknowledged, failed), over real sockets.

Issue 10 item 18: an operator could follow a downlink only through events; the log said nothing when one was
scheduled, sent or acknowledged. Each line names the gateway, the Gateway Server's correlation id (the one the
downlink's events carry), the frequency and the time (and `tmst` when the gateway is told one).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from gatewayserver.errors import GsError

from downlink_support import GATEWAY_ID, class_a, class_c, token_of

LOGGER = "gatewayserver.core.connection"


def outcome_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.getMessage().startswith("downlink ")]


async def wait_for_line(caplog: pytest.LogCaptureFixture, message: str, timeout: float = 5.0) -> logging.LogRecord:
    async with asyncio.timeout(timeout):
        while True:
            for record in outcome_lines(caplog):
                if record.getMessage() == message:
                    return record
            await asyncio.sleep(0.02)


async def test_scheduled_sent_acknowledged(harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    await harness.server.schedule_downlink(class_a(token_of(up), cids=("ns:log",)))
    acknowledged = await wait_for_line(caplog, "downlink acknowledged")
    lines = outcome_lines(caplog)
    assert [r.getMessage() for r in lines] == ["downlink scheduled", "downlink sent", "downlink acknowledged"]
    (send_event,) = harness.events.of("gs.down.send")
    gs_cid = next(c for c in send_event.correlation_ids if c.startswith("gs:downlink:"))
    for record in lines:
        fields = record.__dict__
        assert fields["gateway_id"] == GATEWAY_ID
        assert fields["correlation_id"] == gs_cid  # leads to the downlink's events
        assert fields["frequency"] == 868_100_000
        assert fields["time"].endswith("Z")
        assert isinstance(fields["tmst"], int)
    assert acknowledged.__dict__["window"] == 1


async def test_refused_by_gateway_is_one_failed_line(make_harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    harness = await make_harness()
    gw = await harness.gateway(tx_ack="TX_FREQ")
    await harness.uplink(gw)
    await harness.server.schedule_downlink(class_c())
    failed = await wait_for_line(caplog, "downlink failed")
    assert [r.getMessage() for r in outcome_lines(caplog)] == ["downlink scheduled", "downlink sent", "downlink failed"]
    assert failed.__dict__["reason"] == "tx_tx_freq" and failed.__dict__["gateway_id"] == GATEWAY_ID
    assert failed.__dict__["correlation_id"].startswith("gs:downlink:")


async def test_not_scheduled_is_one_failed_line(harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    gw = await harness.gateway()
    await harness.uplink(gw)
    with pytest.raises(GsError):
        await harness.server.schedule_downlink(class_c(frequency=433_175_000))
    (failed,) = outcome_lines(caplog)
    assert failed.getMessage() == "downlink failed"
    assert failed.__dict__["stage"] == "schedule" and failed.__dict__["correlation_id"] == "ns:downlink:c"
    assert failed.__dict__["gateway_id"] == GATEWAY_ID and failed.__dict__["reason"]


async def test_connected_gateways_print_float32_fields_without_noise(harness) -> None:
    """Item 23: `gateways --json` printed 0.0010000000474974513 for a float32 0.001."""
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    await harness.server.schedule_downlink(class_a(token_of(up)))
    await harness.events.wait_for("gs.down.send")
    (entry,) = harness.daemon.server.connected_gateways()
    for sb in entry["sub_bands"]:
        for key in ("utilization", "limit"):
            value = sb[key]
            assert value == float(f"{value:.7g}"), (key, value)  # no digits beyond float32's precision
    assert any(sb["limit"] == 0.01 for sb in entry["sub_bands"])  # EU868 1 % sub-band, printed as 0.01
