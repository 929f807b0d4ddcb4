"""The frontend-neutral core, sans-I/O: every call is handed `now`, nothing sleeps, no socket, no frontend.

A recording `Link` stands in for the frontend and a list for the Network Server; events are read from a list.
"""

from __future__ import annotations

from typing import Any

import pytest

from frequency_plans import FrequencyPlanStore
from gatewayserver.core.connection import MAX_HELD, Connection, Transmission
from gatewayserver.core.gateways import GatewayCore
from gatewayserver.downlink.errors import downlink_path_expired
from gatewayserver.downlink.planner import Planned
from gatewayserver.errors import GsError
from gatewayserver.events.bus import EventBackend
from gatewayserver.events.event import Event
from gatewayserver.registry import GatewayEntry, GatewayRegistry
from gatewayserver.tokens import UplinkTokens
from gatewayserver.ttnpb import gateway_pb2, lorawan_pb2, messages_pb2

S = 1_000_000_000
MS = 1_000_000
NOW = 1_795_000_000 * S
ENTRY = GatewayEntry("gw-core", bytes.fromhex("0016c001ff0000aa"), ("EU_863_870",))


class Events(EventBackend):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def related(self, correlation_id: str) -> list[Event]:
        return []

    def names(self) -> list[str]:
        return [e.name for e in self.events]


class Upstream:
    def __init__(self) -> None:
        self.uplinks: list[messages_pb2.UplinkMessage] = []
        self.tx_acks: list[messages_pb2.GatewayTxAcknowledgment] = []

    def submit_uplink(self, uplink: messages_pb2.UplinkMessage, context: Any = None, received_ns: int = 0) -> None:
        self.uplinks.append(uplink)

    def submit_tx_ack(self, ack: Any) -> None:
        self.tx_acks.append(ack)


class Link:
    """A frontend that releases downlinks `hold_ns` before their transmission and records what it was given."""

    protocol = "test"

    def __init__(self, hold_ns: int | None = None) -> None:
        self.hold_ns = hold_ns
        self.conn: Connection | None = None
        self.sent: list[Transmission] = []
        self.path_error: GsError | None = None
        self.ended = ""

    def remote_ip(self) -> str:
        return "192.0.2.1"

    def downlink_path_error(self, now: int) -> GsError | None:
        return self.path_error

    def release_at(self, planned: Planned, now: int) -> int:
        return now if self.hold_ns is None else planned.tx_server_time - self.hold_ns

    def wake(self) -> None:
        assert self.conn is not None
        self.sent.extend(self.conn.drain())

    def disconnected(self, reason: str) -> None:
        self.ended = reason


def make_core() -> tuple[GatewayCore, Events, Upstream]:
    events, upstream = Events(), Upstream()
    core = GatewayCore(
        registry=GatewayRegistry([ENTRY]), events=events, upstream=upstream, tokens=UplinkTokens(bytes(32)),
        frequency_plans=FrequencyPlanStore(),
    )
    return core, events, upstream


def connect(core: GatewayCore, link: Link, now: int = NOW) -> Connection:
    conn = core.connect(ENTRY, link, now)
    link.conn = conn
    return conn


def uplink(tmst: int, payload: bytes = b"\x40" + bytes(12)) -> messages_pb2.UplinkMessage:
    up = messages_pb2.UplinkMessage(raw_payload=payload)
    up.settings.frequency = 868_100_000
    up.settings.data_rate.lora.spreading_factor = 7
    up.settings.data_rate.lora.bandwidth = 125_000
    md = up.rx_metadata.add()
    md.gateway_ids.gateway_id = ENTRY.gateway_id
    md.timestamp = tmst
    md.rssi = -50
    return up


def class_a(token: bytes, rx1_delay: int = 1) -> messages_pb2.DownlinkMessage:
    msg = messages_pb2.DownlinkMessage(raw_payload=b"\x60" + bytes(16), correlation_ids=["ns:downlink:test"])
    req = msg.request
    req.downlink_paths.add().uplink_token = token
    req.rx1_delay = rx1_delay  # type: ignore[assignment]
    req.rx1_frequency = 868_100_000
    req.rx1_data_rate.lora.spreading_factor = 7
    req.rx1_data_rate.lora.bandwidth = 125_000
    req.rx1_data_rate.lora.coding_rate = "4/5"
    req.rx2_frequency = 869_525_000
    req.rx2_data_rate.lora.spreading_factor = 9
    req.rx2_data_rate.lora.bandwidth = 125_000
    req.rx2_data_rate.lora.coding_rate = "4/5"
    return msg


def class_c(gateway_id: str = ENTRY.gateway_id) -> messages_pb2.DownlinkMessage:
    msg = messages_pb2.DownlinkMessage(raw_payload=b"\x60" + bytes(16))
    req = msg.request
    setattr(req, "class", lorawan_pb2.CLASS_C)
    req.downlink_paths.add().fixed.gateway_ids.gateway_id = gateway_id
    req.rx2_frequency = 869_525_000
    req.rx2_data_rate.lora.spreading_factor = 9
    req.rx2_data_rate.lora.bandwidth = 125_000
    req.rx2_data_rate.lora.coding_rate = "4/5"
    return msg


def test_uplink_gets_a_token_events_and_reaches_the_upstream() -> None:
    core, events, upstream = make_core()
    conn = connect(core, Link())
    conn.handle_up(uplink(1_000_000), NOW)
    conn.handle_up(uplink(1_000_000), NOW + MS)  # the same frame again: a repeat, not forwarded
    assert len(upstream.uplinks) == 1
    up = upstream.uplinks[0]
    assert up.rx_metadata[0].uplink_token
    token = core.tokens.decode(up.rx_metadata[0].uplink_token)
    assert (token.ids.gateway_ids.gateway_id, token.timestamp) == (ENTRY.gateway_id, 1_000_000)
    assert conn.correlation_id in up.correlation_ids
    assert events.names() == ["gs.gateway.connect", "gs.up.receive", "gs.io.up.repeat"]
    core.upstream_result(up, conn, None, NOW + 2 * MS)
    assert events.names()[-1] == "gs.up.forward"
    assert conn.stats(NOW).uplink_count == 1


def test_status_is_kept_for_the_stats() -> None:
    core, events, _ = make_core()
    conn = connect(core, Link())
    status = gateway_pb2.GatewayStatus()
    status.versions["fw"] = "1"
    conn.handle_status(status, NOW + S)
    stats = core.connection_stats(ENTRY.gateway_id, NOW + 2 * S)
    assert stats is not None and stats.protocol == "test" and stats.last_status.versions["fw"] == "1"
    assert events.names()[-1] == "gs.status.receive"


def test_class_a_downlink_leaves_through_the_outbox_and_its_ack_reaches_the_upstream() -> None:
    core, events, upstream = make_core()
    link = Link()
    conn = connect(core, link)
    conn.handle_up(uplink(5_000_000), NOW)
    token = upstream.uplinks[0].rx_metadata[0].uplink_token
    response = core.schedule_downlink(class_a(token), NOW + 50 * MS)
    assert response.rx1 and response.delay.ToNanoseconds() == S - 50 * MS
    (tx,) = link.sent
    assert tx.message.scheduled.timestamp == 6_000_000 and not tx.immediate
    assert tx.downlink_id in tx.message.correlation_ids and "ns:downlink:test" in tx.message.correlation_ids
    ack = messages_pb2.TxAcknowledgment(correlation_ids=tx.message.correlation_ids)
    conn.handle_tx_ack(ack, NOW + 80 * MS)
    (forwarded,) = upstream.tx_acks
    assert forwarded.gateway_ids.gateway_id == ENTRY.gateway_id
    assert forwarded.tx_ack.downlink_message.scheduled.frequency == 868_100_000
    assert conn.stats(NOW + 80 * MS).round_trip_times.count == 1
    assert "gs.down.tx.success" in events.names() and "gs.txack.forward" in events.names()
    conn.handle_tx_ack(ack, NOW + 90 * MS)  # the same ack again matches nothing any more
    assert events.names()[-1] == "gs.txack.drop"


def test_refused_rx1_is_retried_in_rx2_with_the_same_downlink_id() -> None:
    core, _, upstream = make_core()
    link = Link()
    conn = connect(core, link)
    conn.handle_up(uplink(5_000_000), NOW)
    core.schedule_downlink(class_a(upstream.uplinks[0].rx_metadata[0].uplink_token), NOW + 10 * MS)
    first = link.sent[0]
    refused = messages_pb2.TxAcknowledgment(correlation_ids=first.message.correlation_ids, result=2)  # TOO_LATE
    conn.handle_tx_ack(refused, NOW + 20 * MS)
    assert not upstream.tx_acks  # RX2 may still work: nothing reported yet
    retry = link.sent[1]
    assert retry.downlink_id == first.downlink_id and retry.message.scheduled.timestamp == 7_000_000
    conn.handle_tx_ack(messages_pb2.TxAcknowledgment(correlation_ids=retry.message.correlation_ids), NOW + 30 * MS)
    assert upstream.tx_acks[0].tx_ack.result == 0


def test_held_downlinks_are_released_by_the_timer_not_before() -> None:
    core, events, upstream = make_core()
    link = Link(hold_ns=300 * MS)
    armed: list[int | None] = []
    core.on_deadline = lambda: armed.append(core.next_deadline())
    conn = connect(core, link)
    conn.handle_up(uplink(5_000_000), NOW)
    core.schedule_downlink(class_a(upstream.uplinks[0].rx_metadata[0].uplink_token), NOW + 10 * MS)
    assert link.sent == [] and conn.held_count == 1
    deadline = core.next_deadline()
    assert deadline == NOW + S - 300 * MS and armed == [deadline]
    core.handle_timer(deadline - 1)
    assert link.sent == []
    core.handle_timer(deadline)
    assert len(link.sent) == 1 and conn.held_count == 0
    assert core.next_deadline() is None


def test_held_downlink_fails_when_the_path_is_gone_at_release() -> None:
    core, events, upstream = make_core()
    link = Link(hold_ns=300 * MS)
    conn = connect(core, link)
    conn.handle_up(uplink(5_000_000), NOW)
    core.schedule_downlink(class_a(upstream.uplinks[0].rx_metadata[0].uplink_token), NOW + 10 * MS)
    link.path_error = downlink_path_expired()
    core.handle_timer(NOW + S)
    assert link.sent == []
    fail = [e for e in events.events if e.name == "gs.down.tx.fail"]
    assert fail[0].data.string_value == "downlink_path_expired"


def test_held_downlinks_are_bounded() -> None:
    core, _, _ = make_core()
    link = Link(hold_ns=0)  # release at the transmission time: class C is held for a second
    connect(core, link)
    for i in range(MAX_HELD):
        core.schedule_downlink(class_c(), NOW + i)
    with pytest.raises(GsError) as exc:
        core.schedule_downlink(class_c(), NOW + MAX_HELD)
    (path_error,) = exc.value.details[0].path_errors
    assert path_error.cause.name == "buffer_full"


def test_class_c_without_clock_is_immediate_and_booked_a_second_later() -> None:
    core, _, _ = make_core()
    link = Link()
    connect(core, link)
    response = core.schedule_downlink(class_c(), NOW)
    (tx,) = link.sent
    assert tx.immediate and not tx.message.scheduled.timestamp
    assert response.delay.ToNanoseconds() >= S


def test_a_new_connection_replaces_the_old_one() -> None:
    core, events, _ = make_core()
    first = connect(core, Link())
    second = connect(core, Link(), NOW + S)
    assert first.closed and core.get(ENTRY.gateway_id) is second
    assert first.link.ended == "replaced"  # type: ignore[attr-defined]
    assert events.names() == ["gs.gateway.connect", "gs.gateway.disconnect", "gs.gateway.connect"]
    assert events.events[1].data.name == "new_connection"


def test_disconnected_stats_are_retained_then_forgotten_by_the_timer() -> None:
    core, _, _ = make_core()
    core.stats_retention_ns = 10 * S
    conn = connect(core, Link())
    core.disconnect(conn, NOW + S, "closed")
    stats = core.connection_stats(ENTRY.gateway_id, NOW + 2 * S)
    assert stats is not None and stats.disconnected_at.seconds == (NOW + S) // S
    assert core.next_deadline() == NOW + 11 * S
    core.handle_timer(NOW + 11 * S)
    assert core.connection_stats(ENTRY.gateway_id, NOW + 11 * S) is None
    assert core.next_deadline() is None


def test_not_connected_gateway_fails_the_path() -> None:
    core, _, _ = make_core()
    with pytest.raises(GsError) as exc:
        core.schedule_downlink(class_c("gw-absent"), NOW)
    assert exc.value.name == "schedule"


class Observer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def connected(self, conn: Connection, now: int) -> None:
        self.seen.append(("connected", conn.link.protocol))

    def disconnected(self, conn: Connection, reason: str, stats: gateway_pb2.GatewayConnectionStats) -> None:
        self.seen.append(("disconnected", reason))

    def renamed(self, conn: Connection, previous_gateway_id: str, now: int) -> None:
        self.seen.append(("renamed", f"{previous_gateway_id}->{conn.gateway_id}"))


def test_every_observer_is_told_of_connects_and_disconnects_in_the_order_added() -> None:
    """The cluster's ownership records and the workers' link table both watch the core."""
    core, _, _ = make_core()
    first, second = Observer(), Observer()
    core.observe(first)
    core.observe(second)
    core.observe(first)  # once only
    connect(core, Link())
    connect(core, Link(), NOW + S)  # replaces the first
    assert first.seen == second.seen == [("connected", "test"), ("disconnected", "replaced"), ("connected", "test")]
    core.unobserve(first)
    core.close_all(NOW + 2 * S)
    assert first.seen[-1] == ("connected", "test") and second.seen[-1] == ("disconnected", "shutdown")


def test_observers_are_told_of_a_rename_and_not_of_other_entry_changes() -> None:
    """A reload that renames a live gateway: the observers (link table, cluster records) follow the id."""
    core, _, _ = make_core()
    observer = Observer()
    core.observe(observer)
    conn = connect(core, Link())
    core.entry_changed(conn, GatewayEntry("gw-core", ENTRY.eui, ("EU_863_870", "EU_863_870")), NOW + S)
    assert observer.seen == [("connected", "test")]  # same id: nothing to tell
    core.entry_changed(conn, GatewayEntry("gw-renamed", ENTRY.eui, ("EU_863_870",)), NOW + 2 * S)
    assert observer.seen[-1] == ("renamed", "gw-core->gw-renamed")
    assert core.get("gw-renamed") is conn and core.get("gw-core") is None
