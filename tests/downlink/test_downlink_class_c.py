"""Class C timing decisions, sans-I/O: `now` is an argument, nothing sleeps.

Two defects seen with Semtech's lora_pkt_fwd 4.0.1: an absolute-time downlink was sent with a tmst made from the
server's own clock after an earlier `imme` downlink, and `imme` downlinks were booked and reported for the moment of
the call although the forwarder transmits them about a second later.
"""

from __future__ import annotations

import pytest

from frequency_plans import FrequencyPlanStore
from gatewayserver.downlink.planner import IMME_LATENCY_NS, GatewayDownlinkState, plan_request
from gatewayserver.errors import GsError
from gatewayserver.registry import GatewayEntry
from gatewayserver.ttnpb import gatewayserver_pb2, lorawan_pb2

S = 1_000_000_000
NOW = 1_795_000_000 * S


def _state() -> GatewayDownlinkState:
    return GatewayDownlinkState(GatewayEntry("gtw-c", bytes(8), ("EU_863_870",)), FrequencyPlanStore())


def _class_c(absolute_time_ns: int | None = None) -> lorawan_pb2.TxRequest:
    req = lorawan_pb2.TxRequest()
    setattr(req, "class", lorawan_pb2.CLASS_C)
    req.rx2_frequency = 869_525_000
    req.rx2_data_rate.lora.spreading_factor = 9
    req.rx2_data_rate.lora.bandwidth = 125_000
    req.rx2_data_rate.lora.coding_rate = "4/5"
    req.priority = lorawan_pb2.NORMAL
    if absolute_time_ns is not None:
        req.absolute_time.seconds, req.absolute_time.nanos = divmod(absolute_time_ns, S)
    return req


def test_imme_is_booked_when_the_forwarder_transmits() -> None:
    state = _state()
    planned = plan_request(state, b"\x60" + bytes(16), _class_c(), None, NOW)
    assert planned.immediate and planned.timestamp is None
    assert planned.tx_server_time == NOW + IMME_LATENCY_NS


def test_a_second_imme_is_booked_after_the_first_not_on_top_of_it() -> None:
    state = _state()
    first = plan_request(state, b"\x60" + bytes(16), _class_c(), None, NOW)
    second = plan_request(state, b"\x60" + bytes(16), _class_c(), None, NOW)
    assert second.immediate
    assert second.emission.starts >= first.emission.ends
    # The shell holds it back by this much so that the forwarder's own delay lands it on its booking.
    assert second.tx_server_time - IMME_LATENCY_NS > NOW


def test_absolute_time_needs_the_gateways_own_clock() -> None:
    state = _state()
    plan_request(state, b"\x60" + bytes(16), _class_c(), None, NOW)  # anchors the stand-in clock
    with pytest.raises(GsError) as info:
        plan_request(state, b"\x60" + bytes(16), _class_c(NOW + 3 * S), None, NOW)
    (details,) = info.value.details
    assert isinstance(details, gatewayserver_pb2.ScheduleDownlinkErrorDetails)
    rx1, rx2 = details.path_errors
    assert rx1.cause.name == "rx_empty"
    assert rx2.cause.name == "no_clock_sync"


def test_absolute_time_after_a_real_sync_gives_a_tmst() -> None:
    state = _state()
    plan_request(state, b"\x60" + bytes(16), _class_c(), None, NOW)
    state.sync(123_456_789, NOW + S, None)  # the gateway's first uplink: its counter, its time line
    planned = plan_request(state, b"\x60" + bytes(16), _class_c(NOW + 3 * S), None, NOW + S)
    assert not planned.immediate
    assert planned.timestamp == (123_456_789 + 2 * S // 1000) % (1 << 32)
