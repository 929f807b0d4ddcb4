"""One connected gateway, whatever frontend it came through; sans-I/O.

In the spirit of The Things Stack's `io.Connection` and aioquic's `QuicConnection`: the frontend translates its
wire format into calls here (`handle_up`, `handle_status`, `handle_tx_ack`), the Network Server's requests arrive
through `schedule`, and what the gateway must be sent leaves through an outbox the frontend drains (`drain`),
each a `DownlinkMessage` with its final `TxSettings`. Every call is handed `now` (Unix ns); what has to happen
later is reported by `next_deadline()` and done by `handle_timer(now)`. Nothing here reads a clock, arms a timer,
touches a socket or imports a frontend.

What differs between frontends is asked of the `Link` the frontend gives at connect time: its name, the remote
address, whether a downlink can reach the gateway right now, and when to release a booked downlink to it (the UDP
frontend holds PULL_RESPs for forwarders without a just-in-time queue; a streaming link takes them at once).

Bounds per gateway: at most `MAX_PENDING` downlinks waiting for a TX acknowledgment (oldest forgotten first) and
`MAX_HELD` booked but not yet released (further requests are refused with `buffer_full`).
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from google.protobuf import struct_pb2

from scheduler import SchedulerError

from .. import logs
from ..downlink import errors as err
from ..downlink.planner import TIMESTAMP, GatewayDownlinkState, Planned, plan_request, plan_window
from ..errors import INTERNAL, INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, GsError
from ..events import definitions as ev
from ..events.event import new_ulid
from ..jsonpb import format_timestamp_ns
from ..metrics import (
    DOWNLINKS_FAILED,
    DOWNLINKS_SENT,
    GATEWAY_RTT,
    STATUS_RECEIVED,
    TX_ACKS_RECEIVED,
    UPLINKS_DROPPED,
    UPLINKS_RECEIVED,
)
from ..registry import GatewayEntry
from ..ttnpb import gateway_pb2, gatewayserver_pb2, identifiers_pb2, lorawan_pb2, messages_pb2
from ..upstream.ns import QueueFull

if TYPE_CHECKING:
    from .gateways import GatewayCore

log = logging.getLogger(__name__)

MAX_PENDING = 64
MAX_HELD = 64
_NS = 1_000_000_000
DOWNLINK_CID_PREFIX = "gs:downlink:"

Result = messages_pb2.TxAcknowledgment.Result
_RESULT_NAMES = {v: k for k, v in Result.items()}
_TX_ACK_COUNTERS: dict[str, Any] = {}
# Gateway refusals of RX1 after which RX2 (a second later, maybe elsewhere) can still work.
_RETRYABLE = frozenset(
    {
        Result.UNKNOWN_ERROR, Result.TOO_LATE, Result.TOO_EARLY, Result.COLLISION_PACKET, Result.COLLISION_BEACON,
        Result.TX_FREQ, Result.TX_POWER,
    }
)


class Link(Protocol):
    """What the core asks of the frontend a gateway is connected through (see the module docstring)."""

    @property
    def protocol(self) -> str:
        """The frontend's name in stats and metrics: `udp`, `grpc`."""

    def remote_ip(self) -> str:
        """The gateway's address as the frontend sees it, for stats."""

    def downlink_path_error(self, now: int) -> GsError | None:
        """None when a downlink can reach the gateway now; else the reason (e.g. `downlink_path_expired`)."""

    def release_at(self, planned: Planned, now: int) -> int:
        """When a booked downlink is to be handed to the frontend (`now` or earlier: at once)."""

    def wake(self) -> None:
        """The outbox has something: drain it (called synchronously, from inside a core call)."""

    def disconnected(self, reason: str) -> None:
        """The core ended this connection (`replaced`, `expired`, `shutdown`, ...): stop serving the gateway."""


@dataclass(slots=True, frozen=True)
class Transmission:
    """A downlink released to the frontend: the message with its final settings, and how to time it.

    `message.scheduled` carries frequency, data rate, power, `timestamp` (concentrator µs, when the clock is known)
    and `time` (the server time of transmission). `immediate`: the gateway's clock is not known, so the frontend
    asks it to send at once (UDP `imme`), which the core booked at the forwarder's real delay. `gps_time_ms`: time
    by the gateway's GPS clock (class B, or class C at an absolute time on a GPS gateway). `downlink_id` is the
    correlation id a TX acknowledgment must carry to be matched (the frontend maps its own tokens to it).
    """

    message: messages_pb2.DownlinkMessage
    downlink_id: str
    immediate: bool
    gps_time_ms: int | None
    tx_power: float  # dBm, antenna gain removed (as in `message.scheduled`, without its float32 rounding)


@dataclass(slots=True)
class _Pending:
    """A downlink booked for this gateway, held or sent and waiting for its TX acknowledgment."""

    request: messages_pb2.DownlinkMessage
    planned: Planned
    correlation_ids: tuple[str, ...]
    downlink_id: str
    priority: int
    sent_ns: int = 0
    retried: bool = False
    scheduled: messages_pb2.DownlinkMessage | None = None  # built once, shared by events and the TX ack


def _set_time(ts: Any, time_ns: int) -> None:
    ts.seconds, ts.nanos = divmod(time_ns, _NS)


class Connection:
    """One gateway's live state and what happens to its traffic. Created by `GatewayCore.connect`."""

    __slots__ = (
        "core",
        "link",
        "entry",
        "gateway_id",
        "eui",
        "_ids",
        "correlation_id",
        "connected_at_ns",
        "last_uplink_key",
        "uplink_count",
        "last_uplink_ns",
        "downlink_count",
        "last_downlink_ns",
        "tx_ack_count",
        "last_tx_ack_ns",
        "last_status",
        "last_status_ns",
        "status_count",
        "closed",
        "armed",
        "_downlink",
        "_pending",
        "_held",
        "_held_seq",
        "_outbox",
    )

    def __init__(self, core: GatewayCore, entry: GatewayEntry, link: Link, now: int) -> None:
        self.core = core
        self.link = link
        self.entry = entry
        self.gateway_id = entry.gateway_id
        self.eui = entry.eui
        self._ids: identifiers_pb2.GatewayIdentifiers | None = None
        self.correlation_id = "gs:conn:" + new_ulid(now)
        self.connected_at_ns = now
        self.last_uplink_key: Any = None
        self.uplink_count = 0
        self.last_uplink_ns = 0
        self.downlink_count = 0
        self.last_downlink_ns = 0
        self.tx_ack_count = 0
        self.last_tx_ack_ns = 0
        self.last_status: gateway_pb2.GatewayStatus | None = None
        self.last_status_ns = 0
        self.status_count = 0
        self.closed = False
        self.armed: int | None = None  # the deadline GatewayCore's timer heap holds for this connection
        # Built at first use: most gateways are idle most of the time, and there are many of them.
        self._downlink: GatewayDownlinkState | None = None
        self._pending: OrderedDict[str, _Pending] | None = None
        self._held: list[tuple[int, int, _Pending]] | None = None
        self._held_seq = 0
        self._outbox: list[Transmission] | None = None

    @property
    def protocol(self) -> str:
        return self.link.protocol

    @property
    def ids(self) -> identifiers_pb2.GatewayIdentifiers:
        """The gateway's identifiers as the core says them (never as a message from the gateway claims)."""
        ids = self._ids
        if ids is None:
            ids = self._ids = identifiers_pb2.GatewayIdentifiers(gateway_id=self.gateway_id)
            if self.eui:
                ids.eui = self.eui
        return ids

    # --- downlink state (plans, scheduler, clock, RTT) -------------------------------------------------------------

    def downlink_state(self) -> GatewayDownlinkState:
        """The gateway's plans and scheduler, built at first use; raises the plans' configuration errors."""
        state = self._downlink
        if state is None:
            state = self._downlink = GatewayDownlinkState(self.entry, self.core.frequency_plans)
            self.core.watch_sub_bands(state)
        return state

    @property
    def downlink(self) -> GatewayDownlinkState | None:
        """The downlink state if it was built (stats and metrics read it; they never build it)."""
        return self._downlink

    def sync_clock(self, timestamp: int, now: int, gateway_time_ns: int | None) -> int:
        """Feed the concentrator clock with an uplink's timestamp; returns its unwrapped concentrator time (ns)."""
        state = self._downlink
        if state is None:
            try:
                state = self.downlink_state()
            except Exception:  # unknown plan: uplinks must still flow
                log.exception("downlink state unavailable", extra={"gateway_id": self.gateway_id})
                return timestamp * 1000
        return state.sync(timestamp, now, gateway_time_ns)

    # --- uplinks and status ---------------------------------------------------------------------------------------

    def handle_up(self, uplink: messages_pb2.UplinkMessage, now: int) -> None:
        """One translated uplink received at `now`: uplink tokens, events, metrics, then the Network Server.

        The frontend has filled `received_at`, the settings and one RxMetadata per antenna (with `timestamp`, the
        concentrator counter in µs). Never raises for a bad uplink: it is counted and dropped.
        """
        core = self.core
        UPLINKS_RECEIVED.inc()
        settings = uplink.settings
        mds = uplink.rx_metadata
        md0 = mds[0] if mds else None
        tmst = settings.timestamp or (md0.timestamp if md0 is not None else 0)
        key = (uplink.raw_payload, tmst, settings.frequency)
        if key == self.last_uplink_key:
            UPLINKS_DROPPED.labels("repeat").inc()
            self._publish(ev.GS_IO_UP_REPEAT, now, self.ids, (self.correlation_id,))
            return
        self.last_uplink_key = key
        self.uplink_count += 1
        self.last_uplink_ns = now
        if md0 is not None:
            gps_ns = md0.gps_time.seconds * _NS + md0.gps_time.nanos if md0.HasField("gps_time") else None
            concentrator_ns = self.sync_clock(md0.timestamp, now, gps_ns)
            issue = core.tokens.issue
            for md in mds:
                md.uplink_token = issue(
                    self.gateway_id, self.eui, md.antenna_index, md.timestamp, now, concentrator_ns, gps_ns
                )
        uplink.correlation_ids.append(self.correlation_id)
        uplink.correlation_ids.append("gs:uplink:" + new_ulid(now))
        cids = tuple(uplink.correlation_ids)
        crc_failed = uplink.HasField("crc_status") and not uplink.crc_status.value
        entry = self.entry
        forward_crc = entry.forward_crc_failed if entry.forward_crc_failed is not None else core.forward_crc_failed
        # The uplink is not changed after this point, so the event's GatewayUplinkMessage copy can wait for a reader.
        self._publish(ev.GS_UP_RECEIVE, now, None, cids, data_factory=lambda: core.gateway_uplink(uplink, entry))
        if crc_failed and not forward_crc:
            UPLINKS_DROPPED.labels("crc").inc()
            self.drop_uplink(
                GsError("pkg/gatewayserver", "message_crc", "CRC check failed", code=INVALID_ARGUMENT), now, cids
            )
            return
        try:
            core.upstream.submit_uplink(uplink, self, now)  # it ages from `now` (upstream_max_age)
        except QueueFull as exc:
            UPLINKS_DROPPED.labels("queue_full").inc()
            error = GsError("pkg/gatewayserver/upstream", "queue_full", str(exc), code=RESOURCE_EXHAUSTED)
            self.drop_uplink(error, now, cids)
        except Exception as exc:
            log.exception("upstream refused uplink", extra={"gateway_id": self.gateway_id})
            UPLINKS_DROPPED.labels("internal").inc()
            self.drop_uplink(GsError("pkg/gatewayserver/upstream", "internal", str(exc), code=INTERNAL), now, cids)

    def drop_uplink(self, error: BaseException, now: int, cids: tuple[str, ...] = ()) -> None:
        """Publish `gs.up.drop` for an uplink this gateway sent that goes no further (the caller counts it)."""
        self._publish(ev.GS_UP_DROP, now, err.details_of(error), cids or (self.correlation_id,))

    def handle_status(self, status: gateway_pb2.GatewayStatus, now: int) -> None:
        """A translated gateway status received at `now`."""
        STATUS_RECEIVED.inc()
        self.last_status = status
        self.last_status_ns = now
        self.status_count += 1
        self._publish(ev.GS_STATUS_RECEIVE, now, status, (self.correlation_id,))

    # --- downlinks --------------------------------------------------------------------------------------------------

    def schedule(
        self,
        message: messages_pb2.DownlinkMessage,
        path: lorawan_pb2.DownlinkPath,
        token_timestamp: int | None,
        now: int,
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        """Book `message` (a TxRequest) on this gateway through `path`, or raise `schedule_path` with the reason."""
        request = message.request
        request_cids = tuple(message.correlation_ids)
        self._publish(ev.GS_DOWN_SCHEDULE_ATTEMPT, now, message, request_cids)
        try:
            # Inside the try: plans this gateway cannot use (unknown, of different bands, clashing sub-bands) fail
            # this path with their reason, like any other per-path failure.
            state = self.downlink_state()
            path_error = self.link.downlink_path_error(now)
            if path_error is not None:
                raise path_error
            if self._held is not None and len(self._held) >= MAX_HELD:
                raise err.buffer_full()
            planned = plan_request(state, message.raw_payload, request, token_timestamp, now)
        except (GsError, SchedulerError) as exc:
            wrapped = err.schedule_path(self.gateway_id, exc)
            admitted = logs.admit(log, logging.INFO, "downlink failed")
            if admitted is not None:
                fields = {
                    "gateway_id": self.gateway_id, "correlation_id": request_cids[0] if request_cids else "",
                    "stage": "schedule", "reason": err.reason_of(exc), **admitted,
                }
                log.info("downlink failed", extra=fields)
            self._publish(ev.GS_DOWN_SCHEDULE_FAIL, now, err.details_of(wrapped), request_cids)
            raise wrapped from None
        downlink_id = DOWNLINK_CID_PREFIX + new_ulid(now)
        cids = (*request_cids, self.correlation_id, downlink_id)
        pending = _Pending(message, planned, cids, downlink_id, int(request.priority))
        self._log_outcome("downlink scheduled", pending)
        self._dispatch(pending, now)
        response = gatewayserver_pb2.ScheduleDownlinkResponse(rx1=planned.window == 1, rx2=planned.window == 2)
        _set_time(response.delay, max(0, planned.tx_server_time - now))
        response.downlink_path.CopyFrom(path)
        return response

    def _dispatch(self, pending: _Pending, now: int) -> None:
        release = self.link.release_at(pending.planned, now)
        held = self._held
        if held is None:
            held = self._held = []
        if release > now and len(held) < MAX_HELD:
            self._held_seq += 1
            heapq.heappush(held, (release, self._held_seq, pending))
            self.core.deadline_at(self, release)
            return
        self._release(pending, now)

    def _release(self, pending: _Pending, now: int) -> None:
        """Hand a booked downlink to the frontend, or fail it when the gateway cannot be reached any more."""
        path_error = self.link.downlink_path_error(now)
        if path_error is not None:
            reason = err.reason_of(path_error)
            DOWNLINKS_FAILED.labels(reason).inc()
            self._log_outcome("downlink failed", pending, stage="send", reason=reason)
            self._publish(ev.GS_DOWN_TX_FAIL, now, struct_pb2.Value(string_value=reason), pending.correlation_ids)
            return
        pending.sent_ns = now
        DOWNLINKS_SENT.inc()
        self.downlink_count += 1
        self.last_downlink_ns = now
        pend = self._pending
        if pend is None:
            pend = self._pending = OrderedDict()
        pend[pending.downlink_id] = pending
        while len(pend) > MAX_PENDING:
            pend.popitem(last=False)
        scheduled = self._scheduled_message(pending)
        planned = pending.planned
        if self._outbox is None:
            self._outbox = []
        self._outbox.append(
            Transmission(scheduled, pending.downlink_id, planned.immediate, planned.gps_time_ms, planned.tx_power)
        )
        self._log_outcome("downlink sent", pending)
        self._publish(ev.GS_DOWN_SEND, now, scheduled, pending.correlation_ids)
        self.link.wake()

    def drain(self) -> list[Transmission]:
        """What the frontend must send now, oldest first; the outbox is empty afterwards."""
        out = self._outbox
        if not out:
            return []
        self._outbox = None
        return out

    def forget(self, downlink_id: str) -> None:
        """The frontend knows no acknowledgment will come (e.g. a protocol v1 forwarder)."""
        if self._pending is not None:
            self._pending.pop(downlink_id, None)

    @property
    def pending_count(self) -> int:
        return len(self._pending) if self._pending is not None else 0

    @property
    def held_count(self) -> int:
        return len(self._held) if self._held is not None else 0

    def _scheduled_message(self, pending: _Pending) -> messages_pb2.DownlinkMessage:
        """The downlink as sent (TxSettings instead of the request), for the frontend, events and the TX ack.

        Built once per transmission and then shared: event data must not be mutated after publishing.
        """
        if pending.scheduled is not None:
            return pending.scheduled
        planned = pending.planned
        src = pending.request
        msg = messages_pb2.DownlinkMessage(raw_payload=src.raw_payload, correlation_ids=pending.correlation_ids)
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
        _set_time(tx.time, planned.tx_server_time)
        tx.downlink.tx_power = planned.tx_power
        tx.downlink.invert_polarization = True
        pending.scheduled = msg
        return msg

    # --- TX acknowledgments -----------------------------------------------------------------------------------------

    def handle_tx_ack(self, ack: messages_pb2.TxAcknowledgment, now: int) -> None:
        """A gateway's report on a downlink, matched through the downlink's correlation id."""
        self.tx_ack_count += 1
        self.last_tx_ack_ns = now
        result = ack.result
        result_name = _RESULT_NAMES.get(result, "UNKNOWN_ERROR")
        counter = _TX_ACK_COUNTERS.get(result_name)
        if counter is None:
            counter = _TX_ACK_COUNTERS[result_name] = TX_ACKS_RECEIVED.labels(result_name)
        counter.inc()
        pending: _Pending | None = None
        for cid in ack.correlation_ids if self._pending is not None else ():
            if cid.startswith(DOWNLINK_CID_PREFIX) and self._pending is not None:
                pending = self._pending.pop(cid, None)
                if pending is not None:
                    break
        if pending is None:
            log.info("TX acknowledgment for an unknown downlink", extra={"gateway_id": self.gateway_id})
            self.drop_tx_ack(
                GsError("pkg/gatewayserver", "tx_ack_unknown", "TX acknowledgment for an unknown downlink",
                        code=NOT_FOUND),
                now,
                counted=True,
            )
            return
        ok = result == Result.SUCCESS
        rtt = now - pending.sent_ns
        if rtt >= 0:
            state = self.downlink_state()
            state.scheduler.rtt.record(rtt, now)
            GATEWAY_RTT.observe(rtt / _NS)
        if not ok:  # not transmitted: its slot and airtime are free again (also for the RX2 retry)
            self.downlink_state().scheduler.release(pending.planned.emission)
        # Built inside the message forwarded to the Network Server, which the event shares: one copy of the
        # downlink (the `gs.down.send` event holds the original), none of the acknowledgment. Neither is changed
        # after publishing.
        forward = messages_pb2.GatewayTxAcknowledgment()
        ack_msg = forward.tx_ack
        ack_msg.correlation_ids.extend(pending.correlation_ids)
        ack_msg.result = result
        if not ok and self._retry_rx2(pending, result, now):
            self._publish(ev.GS_TXACK_RECEIVE, now, ack_msg, pending.correlation_ids)
            return
        ack_msg.downlink_message.CopyFrom(self._scheduled_message(pending))
        forward.gateway_ids.CopyFrom(self.ids)
        self._publish(ev.GS_TXACK_RECEIVE, now, ack_msg, pending.correlation_ids)
        if ok:
            self._log_outcome("downlink acknowledged", pending)
            self._publish(ev.GS_DOWN_TX_SUCCESS, now, None, pending.correlation_ids)
        else:
            DOWNLINKS_FAILED.labels("tx_" + result_name.lower()).inc()
            self._log_outcome("downlink failed", pending, stage="tx_ack", reason="tx_" + result_name.lower())
            self._publish(
                ev.GS_DOWN_TX_FAIL, now, struct_pb2.Value(string_value=result_name), pending.correlation_ids
            )
        try:
            self.core.upstream.submit_tx_ack(forward)
        except Exception as exc:  # queue full or shutting down: the ack is lost, count and move on
            log.warning("TX acknowledgment not forwarded", extra={"gateway_id": self.gateway_id, "error": str(exc)})
            return
        self._publish(ev.GS_TXACK_FORWARD, now, None, pending.correlation_ids)

    def drop_tx_ack(self, error: GsError, now: int, *, counted: bool = False) -> None:
        """A TX acknowledgment that cannot be used (unreadable, or for no downlink we know): `gs.txack.drop`."""
        if not counted:
            self.tx_ack_count += 1
            self.last_tx_ack_ns = now
        self._publish(ev.GS_TXACK_DROP, now, err.details_of(error), (self.correlation_id,))

    def _retry_rx2(self, pending: _Pending, result: int, now: int) -> bool:
        """The gateway refused RX1: book RX2 of the same request if it can still be met. True when resent."""
        planned = pending.planned
        if pending.retried or planned.window != 1 or planned.rx2_timestamp is None or result not in _RETRYABLE:
            return False
        request = pending.request.request
        if result == Result.TX_FREQ and request.rx2_frequency == planned.frequency:
            return False
        try:
            retry = plan_window(
                self.downlink_state(), pending.request.raw_payload, 2, request.rx2_frequency, request.rx2_data_rate,
                TIMESTAMP, planned.rx2_timestamp, pending.priority, now, plan_id=request.frequency_plan_id,
            )
        except (GsError, SchedulerError) as exc:
            log.info("RX2 retry impossible", extra={"gateway_id": self.gateway_id, "reason": err.reason_of(exc)})
            return False
        if result == Result.TX_POWER and retry.tx_power == planned.tx_power:
            return False
        log.info(
            "gateway refused RX1, retrying in RX2",
            extra={"gateway_id": self.gateway_id, "result": _RESULT_NAMES.get(result, "")},
        )
        # The same downlink id: the gateway echoes the correlation ids, which already carry it.
        again = _Pending(pending.request, retry, pending.correlation_ids, pending.downlink_id, pending.priority, True)
        self._dispatch(again, now)
        return True

    # --- time -------------------------------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When `handle_timer` next has work (a held downlink to release), or None."""
        held = self._held
        return held[0][0] if held else None

    def handle_timer(self, now: int) -> None:
        """Release every held downlink that is due."""
        held = self._held
        while held and held[0][0] <= now and not self.closed:
            pending = heapq.heappop(held)[2]
            try:
                self._release(pending, now)
            except Exception:  # one downlink's bug must not keep the others of this gateway held forever
                log.exception("releasing held downlink failed", extra={"gateway_id": self.gateway_id})

    # --- stats and lifecycle ---------------------------------------------------------------------------------------

    def stats(self, now: int) -> gateway_pb2.GatewayConnectionStats:
        stats = gateway_pb2.GatewayConnectionStats()
        _set_time(stats.connected_at, self.connected_at_ns)
        stats.protocol = self.link.protocol
        if self.last_status is not None:
            stats.last_status.CopyFrom(self.last_status)
            _set_time(stats.last_status_received_at, self.last_status_ns)
        if self.uplink_count:
            stats.uplink_count = self.uplink_count
            _set_time(stats.last_uplink_received_at, self.last_uplink_ns)
        if self.downlink_count:
            stats.downlink_count = self.downlink_count
            _set_time(stats.last_downlink_received_at, self.last_downlink_ns)
        if self.tx_ack_count:
            stats.tx_acknowledgment_count = self.tx_ack_count
            _set_time(stats.last_tx_acknowledgment_received_at, self.last_tx_ack_ns)
        remote = self.link.remote_ip()
        if remote:
            stats.gateway_remote_address.ip = remote
        state = self._downlink
        if state is not None:
            summary = state.scheduler.rtt.stats(now)
            if summary is not None:
                rtt = stats.round_trip_times
                for target, value in ((rtt.min, summary.min), (rtt.max, summary.max), (rtt.median, summary.median)):
                    _set_time(target, value)
                rtt.count = summary.count
            for sb in state.scheduler.sub_band_stats(now):
                out = stats.sub_bands.add()
                out.min_frequency = sb.min_frequency
                out.max_frequency = min(sb.max_frequency, (1 << 64) - 1)
                out.downlink_utilization_limit = sb.downlink_utilization_limit
                out.downlink_utilization = sb.downlink_utilization
        return stats

    def entry_changed(self, entry: GatewayEntry) -> None:
        """The registry gave this live gateway a new entry (reload); called by `GatewayCore.entry_changed`.

        Plans and the duty-cycle setting shape the scheduler, so when they changed its state is dropped and rebuilt
        from the new entry on next use (the concentrator clock syncs again at the next uplink); downlinks already
        held leave as planned. Anything else (antenna gain, schedule-late, location) is read from the entry at each
        use, so it just takes effect.
        """
        old = self.entry
        self.entry = entry
        self.gateway_id = entry.gateway_id
        self.eui = entry.eui
        self._ids = None
        state = self._downlink
        if state is None:
            return
        if (entry.frequency_plan_ids, entry.enforce_duty_cycle) != (old.frequency_plan_ids, old.enforce_duty_cycle):
            self._downlink = None
        else:
            state.entry = entry

    def close(self) -> None:
        """Forget everything queued for this gateway; called by `GatewayCore.disconnect`."""
        self.closed = True
        self._held = None
        self._pending = None
        self._outbox = None

    # --- logs and events ------------------------------------------------------------------------------------------

    def _log_outcome(self, message: str, pending: _Pending, **more: Any) -> None:
        """The one info line per downlink outcome (scheduled, sent, acknowledged, failed).

        The correlation id is the Gateway Server's own (`gs:downlink:<ulid>`), the one the downlink's events carry,
        so a log line leads to its events and back. The lines go through the log's per-message rate limit like
        every other, so a busy gateway cannot flood the log with them; the limit is asked first (`logs.admit`),
        so a line it leaves out costs no fields and no record (three lines per downlink, nearly all left out at a
        thousand downlinks a second).
        """
        admitted = logs.admit(log, logging.INFO, message)
        if admitted is None:
            return
        planned = pending.planned
        fields: dict[str, Any] = {
            "gateway_id": self.gateway_id,
            "correlation_id": pending.downlink_id,
            "frequency": planned.frequency,
            "window": planned.window,
            "time": format_timestamp_ns(planned.tx_server_time),
        }
        if planned.timestamp is not None:
            fields["tmst"] = planned.timestamp
        fields.update(more)
        fields.update(admitted)
        log.info(message, extra=fields)

    def _publish(
        self, definition: ev.EventDefinition, now: int, data: Any, cids: tuple[str, ...], data_factory: Any = None
    ) -> None:
        self.core.events.publish(
            definition.new(now, ((self.gateway_id, self.eui),), data, cids, data_factory=data_factory)
        )
