"""All gateway connections of one daemon, whatever their frontend, and what they share; sans-I/O.

`GatewayCore` connects and disconnects gateways (one connection per gateway id: a new one replaces the old, with
`gs.gateway.disconnect` for the old), routes `NsGs.ScheduleDownlink` to the right connection, reports what the
Network Server made of an uplink, keeps the statistics of disconnected gateways for a while, and merges the
connections' deadlines into one: `next_deadline()` / `handle_timer(now)`. When a call makes an earlier deadline
than the one last reported, `on_deadline` (set by the shell that owns the timer) is called so the shell can re-arm.

Every method that needs the time is handed `now` (Unix ns) by its caller.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from scheduler import SchedulerError

from ..downlink import errors as err
from ..downlink.planner import GatewayDownlinkState
from ..errors import DATA_LOSS, RESOURCE_EXHAUSTED, UNAVAILABLE, UNKNOWN, GsError
from ..events import definitions as ev
from ..events.bus import EventBackend
from ..metrics import DOWNLINKS_ATTEMPTED, DOWNLINKS_FAILED, UPLINKS_DROPPED, UPLINKS_FORWARDED
from ..registry import GatewayEntry, GatewayRegistry
from ..tokens import TokenError, UplinkTokens
from ..ttnpb import gateway_pb2, gatewayserver_pb2, messages_pb2
from ..upstream.ns import UplinkDropped
from .connection import Connection, Link
from .metrics import GATEWAY_CONNECTS, GATEWAY_DISCONNECTS, GATEWAYS_CONNECTED

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_MAX_RETAINED_STATS = 100_000


class Upstream(Protocol):
    def submit_uplink(self, uplink: messages_pb2.UplinkMessage, context: Any = None, received_ns: int = ...) -> None:
        """`received_ns`: when the uplink was read (Unix ns); it ages from there (upstream_max_age)."""

    def submit_tx_ack(self, ack: Any) -> None: ...


class ConnectionObserver(Protocol):
    """Told of connections made, ended and renamed (not of their traffic: nothing here runs per uplink)."""

    def connected(self, conn: Connection, now: int) -> None: ...

    def disconnected(self, conn: Connection, reason: str, stats: gateway_pb2.GatewayConnectionStats) -> None: ...

    def renamed(self, conn: Connection, previous_gateway_id: str, now: int) -> None:
        """A registry reload gave the live `conn` another gateway id (it already carries the new one); here it
        replaced any connection holding that id, and an observer sharing connections with other processes makes
        the same hold there."""


# Disconnect reason -> (error name, message) of the gs.gateway.disconnect event.
_DISCONNECT_ERRORS = {
    "expired": ("connection_expired", "connection expired"),
    "replaced": ("new_connection", "connection replaced"),
    "shutdown": ("new_connection", "connection shutdown"),
    "evicted": ("connection_evicted", "connection evicted to make room for another gateway"),
    "unregistered": ("gateway_not_registered", "gateway no longer registered"),
}
# Stats of disconnected gateways stay readable (the reference keeps them 48 h). Registered gateways are as many as
# the operator registered; unregistered ones are whoever connected, so an EUI-cycling sender would otherwise leave
# one stats message per EUI behind (100,000 EUIs kept 200 MB for two days). They get a small LRU of their own.
MAX_RETAINED_UNREGISTERED = 1_000


def disconnect_error(protocol: str, reason: str) -> GsError:
    """The `gs.gateway.disconnect` payload for a connection ended for `reason`."""
    name, message = _DISCONNECT_ERRORS.get(reason, ("connection_closed", f"connection {reason}"))
    return GsError(f"pkg/gatewayserver/io/{protocol}", name, message, code=UNAVAILABLE)


class GatewayCore:
    """The connections and the pipeline every frontend shares (tokens, events, metrics, upstream)."""

    def __init__(
        self,
        *,
        registry: GatewayRegistry,
        events: EventBackend,
        upstream: Upstream,
        tokens: UplinkTokens,
        frequency_plans: Any = None,
        forward_crc_failed: bool = False,
        stats_retention_ns: int = 48 * 3600 * _NS,
    ) -> None:
        self.registry = registry
        self.events = events
        self.upstream = upstream
        self.tokens = tokens
        self.frequency_plans = frequency_plans
        self.forward_crc_failed = forward_crc_failed
        self.stats_retention_ns = stats_retention_ns
        self._by_id: dict[str, Connection] = {}
        self._by_protocol: dict[str, int] = {}
        # gateway_id -> (stats of the last connection, disconnected at), oldest disconnect first; registered and
        # unregistered gateways apart, so the unregistered cannot push out the registered (see the bounds above).
        self._retained: OrderedDict[str, tuple[gateway_pb2.GatewayConnectionStats, int]] = OrderedDict()
        self._retained_unregistered: OrderedDict[str, tuple[gateway_pb2.GatewayConnectionStats, int]] = OrderedDict()
        # (deadline, seq, connection); a connection's live entry is the one equal to its `armed`, others are stale.
        self._timers: list[tuple[int, int, Connection]] = []
        self._timer_seq = 0
        self.on_deadline: Callable[[], None] | None = None
        # Sub-band gauge labels registered so far, and the per-gateway states they are computed from.
        self.sub_band_watch: Callable[[GatewayDownlinkState], None] | None = None
        #: Told of every connect, disconnect and rename, in the order added (`observe`): `cluster.owners` keeps the
        #: gateway's ownership record in Redis, `workers.links` tells a peer holding a link of the same gateway.
        self.observers: tuple[ConnectionObserver, ...] = ()

    # --- connections -------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def observe(self, observer: ConnectionObserver) -> None:
        """Tell `observer` of every connect and disconnect from now on (added once however often asked)."""
        if all(o is not observer for o in self.observers):
            self.observers = (*self.observers, observer)

    def unobserve(self, observer: ConnectionObserver) -> None:
        self.observers = tuple(o for o in self.observers if o is not observer)

    def get(self, gateway_id: str) -> Connection | None:
        return self._by_id.get(gateway_id)

    def connections(self) -> list[Connection]:
        return list(self._by_id.values())

    def count(self, protocol: str) -> int:
        return self._by_protocol.get(protocol, 0)

    def connect(self, entry: GatewayEntry, link: Link, now: int, *, remote: str = "") -> Connection:
        """A gateway connected through `link`; an existing connection of the same gateway id is replaced.

        `remote` is the address to log, as the frontend writes it (`host:port` for UDP).
        """
        old = self._by_id.get(entry.gateway_id)
        if old is not None:
            self.disconnect(old, now, "replaced")
        conn = Connection(self, entry, link, now)
        self._by_id[entry.gateway_id] = conn
        protocol = link.protocol
        if protocol not in self._by_protocol:
            self._by_protocol[protocol] = 0
            GATEWAYS_CONNECTED.labels(protocol).set_function(lambda: self._by_protocol.get(protocol, 0))
        self._by_protocol[protocol] += 1
        GATEWAY_CONNECTS.labels(protocol).inc()
        self._retained.pop(entry.gateway_id, None)
        self._retained_unregistered.pop(entry.gateway_id, None)
        log.info(
            "gateway connected",
            extra={
                "gateway_id": entry.gateway_id, "eui": entry.eui.hex().upper(), "remote": remote or link.remote_ip(),
                "registered": entry.registered, "protocol": protocol,
            },
        )
        self._publish(ev.GS_GATEWAY_CONNECT, conn, now, None)
        for observer in self.observers:
            observer.connected(conn, now)
        return conn

    def disconnect(self, conn: Connection, now: int, reason: str, error: GsError | None = None) -> None:
        """End a connection (`expired`, `replaced`, `shutdown`, `closed`, ...); a second call does nothing."""
        if conn.closed:
            return
        if self._by_id.get(conn.gateway_id) is conn:
            del self._by_id[conn.gateway_id]
        self._by_protocol[conn.protocol] -= 1
        GATEWAY_DISCONNECTS.labels(reason).inc()
        stats = conn.stats(now)
        stats.disconnected_at.seconds, stats.disconnected_at.nanos = divmod(now, _NS)
        if conn.entry.registered and reason != "unregistered":
            retained, bound = self._retained, _MAX_RETAINED_STATS
        else:
            retained, bound = self._retained_unregistered, MAX_RETAINED_UNREGISTERED
        retained[conn.gateway_id] = (stats, now)
        retained.move_to_end(conn.gateway_id)
        while len(retained) > bound:
            retained.popitem(last=False)
        conn.close()
        conn.link.disconnected(reason)
        log.info("gateway disconnected", extra={"gateway_id": conn.gateway_id, "reason": reason})
        error = error or disconnect_error(conn.protocol, reason)
        self._publish(ev.GS_GATEWAY_DISCONNECT, conn, now, err.details_of(error))
        for observer in self.observers:
            observer.disconnected(conn, reason, stats)

    def entry_changed(self, conn: Connection, entry: GatewayEntry, now: int) -> None:
        """A registry reload gave a live gateway a new entry, its gateway id included."""
        old = conn.entry
        renamed = entry.gateway_id != old.gateway_id
        if renamed:
            other = self._by_id.get(entry.gateway_id)
            if other is not None and other is not conn:
                self.disconnect(other, now, "replaced")
            if self._by_id.get(old.gateway_id) is conn:
                del self._by_id[old.gateway_id]
            self._by_id[entry.gateway_id] = conn
        conn.entry_changed(entry)  # the connection takes the new id here, before the observers look at it
        if renamed:
            for observer in self.observers:
                observer.renamed(conn, old.gateway_id, now)
        log.info(
            "gateway registry entry changed",
            extra={
                "gateway_id": entry.gateway_id, "previous_gateway_id": old.gateway_id, "eui": entry.eui.hex().upper(),
            },
        )

    def retained_stats_count(self) -> tuple[int, int]:
        """Retained stats of disconnected (registered, unregistered) gateways; each bounded (see the module top)."""
        return len(self._retained), len(self._retained_unregistered)

    def close_all(self, now: int) -> list[Connection]:
        conns = list(self._by_id.values())
        for conn in conns:
            self.disconnect(conn, now, "shutdown")
        return conns

    # --- uplink results ---------------------------------------------------------------------------------------------

    def upstream_result(
        self, uplink: messages_pb2.UplinkMessage, conn: Any, error: BaseException | None, now: int
    ) -> None:
        """The Network Server accepted or finally refused an uplink that `conn` (a `Connection`) received."""
        correlation_ids = tuple(uplink.correlation_ids)
        if error is None:
            UPLINKS_FORWARDED.inc()
            if isinstance(conn, Connection):
                self._publish(ev.GS_UP_FORWARD, conn, now, None, correlation_ids)
            return
        if isinstance(error, UplinkDropped):  # dropped by the upstream queue itself: stale, or evicted when full
            UPLINKS_DROPPED.labels(error.reason).inc()
            if isinstance(conn, Connection):
                code = RESOURCE_EXHAUSTED if error.reason == "queue_full" else UNAVAILABLE
                conn.drop_uplink(GsError("pkg/gatewayserver/upstream", error.reason, str(error), code=code), now,
                                 correlation_ids)
            return
        UPLINKS_DROPPED.labels("upstream_error").inc()
        if isinstance(conn, Connection):
            wrapped = GsError(
                "pkg/gatewayserver/upstream", "handle_uplink", "Network Server refused uplink", code=UNAVAILABLE,
                cause=call_error(error),
            )
            conn.drop_uplink(wrapped, now, correlation_ids)

    def gateway_uplink(
        self, uplink: messages_pb2.UplinkMessage, entry: GatewayEntry
    ) -> messages_pb2.GatewayUplinkMessage:
        """The `gs.up.receive` payload, built only when someone reads the event."""
        message = messages_pb2.GatewayUplinkMessage()
        message.message.CopyFrom(uplink)
        message.band_id = self.band_id(entry)
        return message

    def band_id(self, entry: GatewayEntry) -> str:
        plans = self.frequency_plans
        if plans is None:
            return ""
        try:
            return str(plans.get(entry.frequency_plan_ids[0]).band_id)
        except Exception:
            return ""

    # --- downlinks --------------------------------------------------------------------------------------------------

    def schedule_downlink(
        self, message: messages_pb2.DownlinkMessage, now: int
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        """NsGs.ScheduleDownlink: try each downlink path in order; the first that books a window wins."""
        DOWNLINKS_ATTEMPTED.inc()
        if message.WhichOneof("settings") != "request":
            DOWNLINKS_FAILED.labels("not_tx_request").inc()
            raise err.not_tx_request()
        path_errors = []
        failures: list[BaseException] = []
        for path in message.request.downlink_paths:
            try:
                return self._schedule_path(message, path, now)
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
        self, message: messages_pb2.DownlinkMessage, path: Any, now: int
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        kind = path.WhichOneof("path")
        token_timestamp: int | None = None
        if kind == "uplink_token":
            token = self.tokens.decode(path.uplink_token)  # TokenError: forged or altered
            ids = token.ids.gateway_ids
            token_timestamp = token.timestamp
        elif kind == "fixed":
            ids = path.fixed.gateway_ids
        else:
            raise err.downlink_path()
        conn = self._by_id.get(ids.gateway_id)
        if conn is None:
            raise err.schedule_path(ids.gateway_id, err.not_connected(ids.gateway_id))
        return conn.schedule(message, path, token_timestamp, now)

    def watch_sub_bands(self, state: GatewayDownlinkState) -> None:
        if self.sub_band_watch is not None:
            self.sub_band_watch(state)

    def utilization(self, lo: int, hi: int, now: int) -> float:
        """Highest share of the duty-cycle limit in use in sub-band [lo, hi] across connected gateways."""
        best = 0.0
        for conn in self._by_id.values():
            state = conn.downlink
            if state is None or not state.scheduler.clock.is_synced:
                continue
            for sb in state.scheduler.sub_band_stats(now):
                if sb.min_frequency == lo and sb.max_frequency == hi and sb.downlink_utilization_limit:
                    best = max(best, sb.downlink_utilization / sb.downlink_utilization_limit)
        return best

    # --- time -------------------------------------------------------------------------------------------------------

    def deadline_at(self, conn: Connection, deadline: int) -> None:
        """`conn` has work at `deadline`; tell the shell when that is earlier than anything before."""
        if conn.armed is not None and conn.armed <= deadline:
            return
        earliest = self.next_deadline()
        conn.armed = deadline
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, conn))
        if (earliest is None or deadline < earliest) and self.on_deadline is not None:
            self.on_deadline()

    def next_deadline(self) -> int | None:
        """When `handle_timer` next has work: a connection's held downlink, or stats to forget."""
        timers = self._timers
        while timers:
            deadline, _, conn = timers[0]
            if not conn.closed and conn.armed == deadline:
                break
            heapq.heappop(timers)  # stale: re-armed later, or the connection is gone
        first = timers[0][0] if timers else None
        for retained in (self._retained, self._retained_unregistered):
            if retained:
                forget = next(iter(retained.values()))[1] + self.stats_retention_ns
                first = forget if first is None else min(first, forget)
        return first

    def handle_timer(self, now: int) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, conn = heapq.heappop(timers)
            if conn.closed or conn.armed != deadline:
                continue
            conn.armed = None
            conn.handle_timer(now)
            following = conn.next_deadline()
            if following is not None and not conn.closed:
                conn.armed = following
                self._timer_seq += 1
                heapq.heappush(timers, (following, self._timer_seq, conn))
        cutoff = now - self.stats_retention_ns
        for retained in (self._retained, self._retained_unregistered):
            while retained:
                gateway_id, (_, at) = next(iter(retained.items()))
                if at > cutoff:
                    break
                del retained[gateway_id]

    # --- APIs -------------------------------------------------------------------------------------------------------

    def connection_stats(self, gateway_id: str, now: int) -> gateway_pb2.GatewayConnectionStats | None:
        conn = self._by_id.get(gateway_id)
        if conn is not None:
            return conn.stats(now)
        retained = self._retained.get(gateway_id) or self._retained_unregistered.get(gateway_id)
        if retained is not None:
            stats = gateway_pb2.GatewayConnectionStats()
            stats.CopyFrom(retained[0])
            return stats
        return None

    # --- events -------------------------------------------------------------------------------------------------

    def _publish(
        self, definition: ev.EventDefinition, conn: Connection, now: int, data: Any, cids: tuple[str, ...] = ()
    ) -> None:
        self.events.publish(
            definition.new(now, ((conn.gateway_id, conn.eui),), data, cids or (conn.correlation_id,))
        )


def call_error(error: BaseException) -> GsError:
    """A failed GsNs call as a typed cause: its gRPC code and the Network Server's message."""
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):  # grpc.aio.AioRpcError
        return GsError("pkg/gatewayserver/upstream", "call", str(details()), code=code().value[0])
    return GsError("pkg/gatewayserver/upstream", "call", str(error), code=UNKNOWN)
