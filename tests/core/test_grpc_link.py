"""The gRPC frontend's link, without a socket: the bounded send queue and what a full one does."""

from __future__ import annotations

import pytest

from gatewayserver.errors import GsError
from gatewayserver.io.grpc.frontend import GrpcLink, deliver
from gatewayserver.io.grpc.metrics import MESSAGES_DROPPED
from gatewayserver.metrics import UPLINKS_DROPPED
from gatewayserver.ttnpb import gatewayserver_pb2

from test_core_connection import ENTRY, NOW, S, class_c, make_core, uplink


def _value(counter: object, label: str) -> float:
    return counter.labels(label).value  # type: ignore[attr-defined, no-any-return]


def test_a_gateway_that_stops_reading_has_downlinks_dropped_then_is_disconnected() -> None:
    core, events, _ = make_core()
    link = GrpcLink("192.0.2.7", send_queue=2)
    conn = core.connect(ENTRY, link, NOW)
    link.conn = conn
    before = _value(MESSAGES_DROPPED, "send_queue_full")
    core.schedule_downlink(class_c(), NOW)
    core.schedule_downlink(class_c(), NOW + 1)
    assert len(link.queue) == 2 and link.close_reason is None  # nobody writes them: the writer is stuck
    core.schedule_downlink(class_c(), NOW + 2)
    assert len(link.queue) == 2  # the queue never grows past its bound
    assert _value(MESSAGES_DROPPED, "send_queue_full") == before + 1
    assert link.close_reason == "send_queue_full" and link.closed.is_set()
    with pytest.raises(GsError):  # no further downlink is accepted for this link
        core.schedule_downlink(class_c(), NOW + 3)


def test_deliver_refuses_what_only_the_server_may_say() -> None:
    core, _, upstream = make_core()
    link = GrpcLink("192.0.2.7")
    conn = core.connect(ENTRY, link, NOW)
    link.conn = conn
    forged = uplink(1_000)
    forged.rx_metadata[0].gateway_ids.gateway_id = "someone-else"
    forged.rx_metadata[0].uplink_token = b"forged"
    empty = uplink(2_000, payload=b"")
    before = _value(UPLINKS_DROPPED, "payload")
    deliver(conn, gatewayserver_pb2.GatewayUp(uplink_messages=[forged, empty]), NOW + S)
    (up,) = upstream.uplinks
    md = up.rx_metadata[0]
    assert md.gateway_ids.gateway_id == ENTRY.gateway_id and md.gateway_ids.eui == ENTRY.eui
    assert core.tokens.decode(md.uplink_token).timestamp == 1_000
    assert up.received_at.seconds == (NOW + S) // S
    assert _value(UPLINKS_DROPPED, "payload") == before + 1
