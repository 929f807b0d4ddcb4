"""The downlink shell: NsGs.ScheduleDownlink requests in, PULL_RESP out, TX_ACK back to the Network Server.

Decisions are made by `planner` (sans-I/O, given `now`). This module owns what needs the event loop and the
socket: reading the clock, holding PULL_RESPs for gateways without a jit queue (schedule late), sending them,
matching TX_ACKs to the downlinks they acknowledge, the automatic RX2 retry, events and metrics.

Bounds: at most `MAX_PENDING` unacknowledged downlinks per gateway (oldest forgotten first) and `MAX_HELD` held
PULL_RESPs per gateway (further requests are refused with `buffer_full`); every timer of a gateway is cancelled
when it disconnects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from google.protobuf import struct_pb2

from scheduler import SchedulerError

from ..errors import DATA_LOSS, GsError
from ..events import definitions as ev
from ..events.event import new_ulid
from ..io.udp import metrics as udp_metrics
from ..jsonpb import format_timestamp_ns
from ..io.udp.connection import Connection
from ..io.udp.packets import (
    COLLISION_BEACON,
    COLLISION_PACKET,
    TOO_EARLY,
    TOO_LATE,
    TX_FREQ,
    TX_POWER,
    UNKNOWN_ERROR,
    PacketError,
    encode_pull_resp,
    parse_tx_ack,
)
from ..metrics import (
    DOWNLINKS_ATTEMPTED,
    DOWNLINKS_FAILED,
    DOWNLINKS_SENT,
    GATEWAY_RTT,
    SUB_BAND_UTILIZATION,
    TX_ACKS_RECEIVED,
)
from ..registry import GatewayEntry
from ..tokens import TokenError
from ..ttnpb import gateway_pb2, gatewayserver_pb2, lorawan_pb2, messages_pb2
from . import errors as err
from .planner import IMME_LATENCY_NS, TIMESTAMP, GatewayDownlinkState, Planned, plan_request, plan_window

if TYPE_CHECKING:
    from ..server import GatewayServer

log = logging.getLogger(__name__)

MAX_PENDING = 64
MAX_HELD = 64
_NS = 1_000_000_000
_RESULT_NAMES = {v: k for k, v in messages_pb2.TxAcknowledgment.Result.items()}
# Gateway refusals of RX1 after which RX2 (a second later, maybe elsewhere) can still work.
_TX_ACK_COUNTERS: dict[str, Any] = {}
_RETRYABLE = frozenset({UNKNOWN_ERROR, TOO_LATE, TOO_EARLY, COLLISION_PACKET, COLLISION_BEACON, TX_FREQ, TX_POWER})


def _outcome(conn: Connection, pending: PendingTx, **more: Any) -> dict[str, Any]:
    """The fields of the one info line per downlink outcome (scheduled, sent, acknowledged, failed).

    The correlation id is the Gateway Server's own (`gs:downlink:<ulid>`), the one the downlink's events carry, so
    a log line leads to its events and back. The lines go through the log's per-message rate limit like every
    other, so a busy gateway cannot flood the log with them.
    """
    planned = pending.planned
    fields: dict[str, Any] = {
        "gateway_id": conn.gateway_id,
        "correlation_id": pending.correlation_ids[-1] if pending.correlation_ids else "",
        "frequency": planned.frequency,
        "window": planned.window,
        "time": format_timestamp_ns(planned.tx_server_time),
    }
    if planned.timestamp is not None:
        fields["tmst"] = planned.timestamp
    fields.update(more)
    return fields


@dataclass(slots=True)
class PendingTx:
    """A PULL_RESP sent and waiting for its TX_ACK."""

    message: messages_pb2.DownlinkMessage
    planned: Planned
    correlation_ids: tuple[str, ...]
    sent_ns: int
    payload: bytes
    priority: int
    retried: bool = False
    scheduled: messages_pb2.DownlinkMessage | None = None  # built once, shared by events and the TX ack


class DownlinkService:
    """What `GatewayServer` calls for downlinks (see docs/design.md and the daemon's wiring)."""

    def __init__(self, server: GatewayServer, plans: Any, *, schedule_late_ns: int = 800_000_000) -> None:
        self.server = server
        self.plans = plans
        self.schedule_late_ns = schedule_late_ns
        self._held_seq = 0
        self._utilization_labels: set[str] = set()

    # --- per-gateway state ---------------------------------------------------------------------------------------

    def state(self, conn: Connection) -> GatewayDownlinkState:
        state = conn.downlink
        if state is None:
            state = conn.downlink = GatewayDownlinkState(conn.entry, self.plans)
            self._watch_sub_bands(state)
        return state

    def sync_clock(self, conn: Connection, timestamp: int, now: int, gateway_time_ns: int | None) -> int:
        state = conn.downlink
        if state is None:
            try:
                state = self.state(conn)
            except Exception:  # unknown plan: uplinks must still flow
                log.exception("downlink state unavailable", extra={"gateway_id": conn.gateway_id})
                return timestamp * 1000
        return state.sync(timestamp, now, gateway_time_ns)

    def pull_data(self, conn: Connection, now: int) -> None:
        """The downlink path was refreshed; nothing is queued server-side, so there is nothing to flush."""

    def disconnected(self, conn: Connection) -> None:
        state = conn.downlink
        if state is not None:
            for handle in state.held.values():
                handle.cancel()
            state.held.clear()
        conn.pending_tx.clear()

    def entry_changed(self, conn: Connection, old: GatewayEntry) -> None:
        """The registry gave a live gateway a new entry (reload).

        Plans and the duty-cycle setting shape the scheduler, so when they changed its state is dropped and rebuilt
        from the new entry on next use (the concentrator clock syncs again at the next uplink). PULL_RESPs already
        held keep their timers and leave as planned. Anything else (antenna gain, schedule-late) is read from the
        entry at each decision, so the state just takes the new one.
        """
        state = conn.downlink
        if state is None:
            return
        entry = conn.entry
        if (entry.frequency_plan_ids, entry.enforce_duty_cycle) != (old.frequency_plan_ids, old.enforce_duty_cycle):
            conn.downlink = None
        else:
            state.entry = entry

    def fill_stats(self, conn: Connection, stats: gateway_pb2.GatewayConnectionStats, now: int) -> None:
        state = conn.downlink
        if state is None:
            return
        summary = state.scheduler.rtt.stats(now)
        if summary is not None:
            rtt = stats.round_trip_times
            for target, value in ((rtt.min, summary.min), (rtt.max, summary.max), (rtt.median, summary.median)):
                target.seconds, target.nanos = divmod(value, _NS)
            rtt.count = summary.count
        for sb in state.scheduler.sub_band_stats(now):
            out = stats.sub_bands.add()
            out.min_frequency = sb.min_frequency
            out.max_frequency = min(sb.max_frequency, (1 << 64) - 1)
            out.downlink_utilization_limit = sb.downlink_utilization_limit
            out.downlink_utilization = sb.downlink_utilization

    def _watch_sub_bands(self, state: GatewayDownlinkState) -> None:
        """Register the utilisation gauge per sub-band once; it is computed at scrape time across gateways."""
        for sb in state.scheduler.sub_bands:
            label = f"{sb.min_frequency}-{sb.max_frequency}"
            if label in self._utilization_labels:
                continue
            self._utilization_labels.add(label)
            SUB_BAND_UTILIZATION.labels(label).set_function(
                functools.partial(self._utilization, sb.min_frequency, sb.max_frequency)
            )

    def _utilization(self, lo: int, hi: int) -> float:
        now = time.time_ns()
        best = 0.0
        for conn in self.server.udp.connections():
            state = conn.downlink
            if state is None or not state.scheduler.clock.is_synced:
                continue
            for sb in state.scheduler.sub_band_stats(now):
                if sb.min_frequency == lo and sb.max_frequency == hi and sb.downlink_utilization_limit:
                    best = max(best, sb.downlink_utilization / sb.downlink_utilization_limit)
        return best

    # --- ScheduleDownlink ----------------------------------------------------------------------------------------

    async def schedule(self, message: messages_pb2.DownlinkMessage) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        return self.schedule_now(message, time.time_ns())

    def schedule_now(
        self, message: messages_pb2.DownlinkMessage, now: int
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        """Try each downlink path in order; the first that books a window wins. Must run on the event loop."""
        DOWNLINKS_ATTEMPTED.inc()
        if message.WhichOneof("settings") != "request":
            DOWNLINKS_FAILED.labels("not_tx_request").inc()
            raise err.not_tx_request()
        request = message.request
        path_errors = []
        failures: list[BaseException] = []
        for path in request.downlink_paths:
            try:
                return self._schedule_path(message, request, path, now)
            except (GsError, SchedulerError) as exc:
                failures.append(exc)
                path_errors.append(err.details_of(exc))
        reason = err.reason_of(failures[0]) if failures else "no_paths"
        DOWNLINKS_FAILED.labels(reason).inc()
        if failures and all(isinstance(f, TokenError) for f in failures):
            # Every path carried a token we never issued: no retry can help, say so with DataLoss.
            raise err.schedule(path_errors, code=DATA_LOSS, name="uplink_token")
        raise err.schedule(path_errors)

    def _schedule_path(
        self,
        message: messages_pb2.DownlinkMessage,
        request: lorawan_pb2.TxRequest,
        path: lorawan_pb2.DownlinkPath,
        now: int,
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        kind = path.WhichOneof("path")
        token_timestamp: int | None = None
        if kind == "uplink_token":
            token = self.server.tokens.decode(path.uplink_token)  # TokenError: forged or altered
            ids = token.ids.gateway_ids
            token_timestamp = token.timestamp
        elif kind == "fixed":
            ids = path.fixed.gateway_ids
        else:
            raise err.downlink_path()
        gateway_id = ids.gateway_id
        conn = self.server.udp.get(gateway_id)
        if conn is None:
            raise err.schedule_path(gateway_id, err.not_connected(gateway_id))
        request_cids = tuple(message.correlation_ids)
        self._publish(ev.GS_DOWN_SCHEDULE_ATTEMPT, conn, now, message, request_cids)
        try:
            # Inside the try: plans this gateway cannot use (unknown, of different bands, clashing sub-bands) fail
            # this path with their reason, like any other per-path failure.
            state = conn.downlink or self.state(conn)
            if conn.downlink_path(now, self.server.udp.settings.downlink_path_expires_ns) is None:
                raise err.downlink_path_expired()
            hold = self._holds(conn)
            if len(state.held) >= MAX_HELD:  # held: schedule-late downlinks, and `imme` booked past other ones
                raise err.buffer_full()
            planned = plan_request(state, message.raw_payload, request, token_timestamp, now)
        except (GsError, SchedulerError) as exc:
            wrapped = err.schedule_path(gateway_id, exc)
            log.info(
                "downlink failed",
                extra={
                    "gateway_id": gateway_id,
                    "correlation_id": request_cids[0] if request_cids else "",
                    "stage": "schedule",
                    "reason": err.reason_of(exc),
                },
            )
            self._publish(ev.GS_DOWN_SCHEDULE_FAIL, conn, now, err.details_of(wrapped), request_cids)
            raise wrapped from None
        cids = (*request_cids, conn.correlation_id, "gs:downlink:" + new_ulid(now))
        pending = PendingTx(message, planned, cids, 0, message.raw_payload, int(request.priority))
        log.info("downlink scheduled", extra=_outcome(conn, pending))
        self._dispatch(conn, state, pending, now, hold)
        response = gatewayserver_pb2.ScheduleDownlinkResponse(rx1=planned.window == 1, rx2=planned.window == 2)
        delay = max(0, planned.tx_server_time - now)
        response.delay.seconds, response.delay.nanos = divmod(delay, _NS)
        response.downlink_path.CopyFrom(path)
        return response

    # --- sending ----------------------------------------------------------------------------------------------------

    def _holds(self, conn: Connection) -> bool:
        """Schedule late: unless the gateway has shown a jit queue and is not configured to be sent late."""
        return not conn.has_jit_queue or conn.entry.schedule_downlink_late

    def _dispatch(
        self, conn: Connection, state: GatewayDownlinkState, pending: PendingTx, now: int, hold: bool
    ) -> None:
        planned = pending.planned
        if planned.immediate:
            # `imme` carries no time: the only way to honour a booking later than the forwarder's own delay (slid
            # past other emissions or the duty cycle) is to send it that much later, whatever `hold` says.
            send_at = planned.tx_server_time - IMME_LATENCY_NS
            hold = True
        else:
            send_at = planned.tx_server_time - self.schedule_late_ns
        if hold and send_at > now:
            self._held_seq += 1
            key = self._held_seq
            loop = asyncio.get_running_loop()
            state.held[key] = loop.call_later((send_at - now) / _NS, self._send_held, conn, state, key, pending)
            return
        self._send(conn, pending, now)

    def _send_held(self, conn: Connection, state: GatewayDownlinkState, key: int, pending: PendingTx) -> None:
        state.held.pop(key, None)
        if conn.closed:
            return
        try:
            self._send(conn, pending, time.time_ns())
        except Exception:  # a timer callback has nobody to raise to
            log.exception("sending held downlink failed", extra={"gateway_id": conn.gateway_id})

    def _send(self, conn: Connection, pending: PendingTx, now: int) -> None:
        server = self.server
        addr = conn.downlink_path(now, server.udp.settings.downlink_path_expires_ns)
        transmit = conn.transmit  # set by the frontend the gateway talks through; None: no way to reach it
        if addr is None or transmit is None:
            DOWNLINKS_FAILED.labels("downlink_path_expired").inc()
            log.info("downlink failed", extra=_outcome(conn, pending, stage="send", reason="downlink_path_expired"))
            self._publish(
                ev.GS_DOWN_TX_FAIL, conn, now, struct_pb2.Value(string_value="downlink_path_expired"),
                pending.correlation_ids,
            )
            return
        token = conn.take_pull_resp_token()
        transmit(encode_pull_resp(conn.version, token.to_bytes(2, "big"), pending.planned.body), addr)
        pending.sent_ns = now
        DOWNLINKS_SENT.inc()
        conn.downlink_count += 1
        conn.last_downlink_ns = now
        if conn.version >= 2:  # protocol v1 forwarders never acknowledge
            pend = conn.pending_tx
            pend[token] = pending
            while len(pend) > MAX_PENDING:
                del pend[next(iter(pend))]
        log.info("downlink sent", extra=_outcome(conn, pending, token=token))
        self._publish(ev.GS_DOWN_SEND, conn, now, self._scheduled_message(conn, pending), pending.correlation_ids)

    def _scheduled_message(self, conn: Connection, pending: PendingTx) -> messages_pb2.DownlinkMessage:
        """The downlink as sent (TxSettings instead of the request), for events and the TX acknowledgment.

        Built once per transmission and then shared: event data must not be mutated after publishing.
        """
        if pending.scheduled is not None:
            return pending.scheduled
        planned = pending.planned
        msg = messages_pb2.DownlinkMessage(raw_payload=pending.payload, correlation_ids=pending.correlation_ids)
        src = pending.message
        if src.HasField("end_device_ids"):
            msg.end_device_ids.CopyFrom(src.end_device_ids)
        if src.session_key_id:
            msg.session_key_id = src.session_key_id
        tx = msg.scheduled
        tx.data_rate.CopyFrom(planned.data_rate)
        tx.frequency = planned.frequency
        tx.concentrator_timestamp = planned.emission.starts
        if planned.timestamp is not None:
            tx.timestamp = planned.timestamp
        tx.time.seconds, tx.time.nanos = divmod(planned.tx_server_time, _NS)
        tx.downlink.tx_power = planned.tx_power
        tx.downlink.invert_polarization = True
        pending.scheduled = msg
        return msg

    # --- TX_ACK -----------------------------------------------------------------------------------------------------

    def tx_ack(self, conn: Connection, datagram: Any, now: int) -> None:
        conn.tx_ack_count += 1
        conn.last_tx_ack_ns = now
        try:
            ack = parse_tx_ack(datagram.body)
        except PacketError as exc:
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            log.info("unusable TX_ACK", extra={"gateway_id": conn.gateway_id, "error": str(exc)})
            drop = GsError("pkg/gatewayserver/io/udp", "tx_ack", str(exc), code=3)
            self._publish(ev.GS_TXACK_DROP, conn, now, err.details_of(drop), (conn.correlation_id,))
            return
        result_name = _RESULT_NAMES.get(ack.result, "UNKNOWN_ERROR")
        counter = _TX_ACK_COUNTERS.get(result_name)
        if counter is None:
            counter = _TX_ACK_COUNTERS[result_name] = TX_ACKS_RECEIVED.labels(result_name)
        counter.inc()
        token = int.from_bytes(datagram.token, "big")
        pending = conn.pending_tx.pop(token, None)
        if pending is None:
            log.info("TX_ACK for an unknown downlink", extra={"gateway_id": conn.gateway_id, "token": token})
            drop = GsError(
                "pkg/gatewayserver/io/udp", "tx_ack_token", "TX_ACK for unknown token `{token}`", code=5,
                attributes={"token": token},
            )
            self._publish(ev.GS_TXACK_DROP, conn, now, err.details_of(drop), (conn.correlation_id,))
            return
        rtt = now - pending.sent_ns
        if rtt >= 0:
            state = self.state(conn)
            state.scheduler.rtt.record(rtt, now)
            GATEWAY_RTT.observe(rtt / _NS)
        if not ack.ok:  # not transmitted: its slot and airtime are free again (also for the RX2 retry)
            self.state(conn).scheduler.release(pending.planned.emission)
        # The UDP codec keeps Result numbers as plain ints (it imports no protobuf); they are Result values.
        result = cast(messages_pb2.TxAcknowledgment.Result, ack.result)
        ack_msg = messages_pb2.TxAcknowledgment(correlation_ids=pending.correlation_ids, result=result)
        if not ack.ok and self._retry_rx2(conn, pending, ack.result, now):
            self._publish(ev.GS_TXACK_RECEIVE, conn, now, ack_msg, pending.correlation_ids)
            return
        ack_msg.downlink_message.CopyFrom(self._scheduled_message(conn, pending))  # copy: the event holds the original
        self._publish(ev.GS_TXACK_RECEIVE, conn, now, ack_msg, pending.correlation_ids)
        if ack.ok:
            log.info("downlink acknowledged", extra=_outcome(conn, pending))
            self._publish(ev.GS_DOWN_TX_SUCCESS, conn, now, None, pending.correlation_ids)
        else:
            DOWNLINKS_FAILED.labels("tx_" + result_name.lower()).inc()
            log.info(
                "downlink failed",
                extra=_outcome(conn, pending, stage="tx_ack", reason="tx_" + result_name.lower(), error=ack.error),
            )
            self._publish(
                ev.GS_DOWN_TX_FAIL, conn, now, struct_pb2.Value(string_value=result_name), pending.correlation_ids
            )
        forward = messages_pb2.GatewayTxAcknowledgment(tx_ack=ack_msg)
        forward.gateway_ids.gateway_id = conn.gateway_id
        forward.gateway_ids.eui = conn.eui
        try:
            self.server.upstream.submit_tx_ack(forward)
        except Exception as exc:  # queue full or shutting down: the ack is lost, count and move on
            log.warning("TX acknowledgment not forwarded", extra={"gateway_id": conn.gateway_id, "error": str(exc)})
            return
        self._publish(ev.GS_TXACK_FORWARD, conn, now, None, pending.correlation_ids)

    def _retry_rx2(self, conn: Connection, pending: PendingTx, result: int, now: int) -> bool:
        """The gateway refused RX1: book RX2 of the same request if it can still be met. True when resent."""
        planned = pending.planned
        if pending.retried or planned.window != 1 or planned.rx2_timestamp is None or result not in _RETRYABLE:
            return False
        request = pending.message.request
        if result == TX_FREQ and request.rx2_frequency == planned.frequency:
            return False
        state = self.state(conn)
        try:
            retry = plan_window(
                state, pending.payload, 2, request.rx2_frequency, request.rx2_data_rate, TIMESTAMP,
                planned.rx2_timestamp, pending.priority, now, plan_id=request.frequency_plan_id,
            )
        except (GsError, SchedulerError) as exc:
            log.info(
                "RX2 retry impossible", extra={"gateway_id": conn.gateway_id, "reason": err.reason_of(exc)}
            )
            return False
        if result == TX_POWER and retry.tx_power == planned.tx_power:
            return False
        log.info(
            "gateway refused RX1, retrying in RX2",
            extra={"gateway_id": conn.gateway_id, "result": _RESULT_NAMES.get(result, "")},
        )
        again = PendingTx(pending.message, retry, pending.correlation_ids, 0, pending.payload, pending.priority, True)
        state_hold = self._holds(conn) and len(state.held) < MAX_HELD
        self._dispatch(conn, state, again, now, state_hold)
        return True

    # --- events -------------------------------------------------------------------------------------------------

    def _publish(
        self, definition: ev.EventDefinition, conn: Connection, now: int, data: Any, cids: tuple[str, ...] | Any
    ) -> None:
        self.server.events.publish(definition.new(now, ((conn.gateway_id, conn.eui),), data, tuple(cids)))

