"""The Gateway Server core: what happens to a datagram after it is acked.

The frontend hands over accepted datagrams with the time they were read; this object translates them, publishes
events, keeps per-gateway statistics and hands uplinks to the upstream. Everything here is synchronous and bounded
per datagram: no awaits on the uplink path, so the next gateway's datagram never waits for a Network Server.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson

from .error_details import to_error_details
from .errors import INTERNAL, INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, UNKNOWN, GsError
from .events import definitions as ev
from .events.bus import EventBackend
from .events.event import new_ulid
from .io.udp import metrics as udp_metrics
from .jsonpb import float32_value, format_timestamp_ns
from .logs import format_address
from .io.udp.connection import Accepted, Connection, ConnectionSettings, Rejected, UdpConnections
from .io.udp.packets import PULL_DATA, PUSH_DATA, TX_ACK, TYPE_NAMES
from .io.udp.translate import DroppedUplink, TranslateError, UplinkTranslator, status_from_stat
from .metrics import STATUS_RECEIVED, UPLINKS_DROPPED, UPLINKS_FORWARDED, UPLINKS_RECEIVED
from .registry import GatewayEntry, GatewayRegistry
from .tokens import UplinkTokens
from .ttnpb import gateway_pb2, identifiers_pb2, messages_pb2, metadata_pb2
from .upstream.ns import QueueFull, UplinkDropped

log = logging.getLogger(__name__)

_NS = 1_000_000_000
# Stats of disconnected gateways stay readable (the reference keeps them 48 h). Registered gateways are as many as
# the operator registered; unregistered ones are whoever sent a datagram, so an EUI-cycling sender would otherwise
# leave one stats message per EUI behind (100,000 EUIs kept 200 MB for two days). They get a small LRU of their own.
_MAX_RETAINED_STATS = 100_000
MAX_RETAINED_UNREGISTERED = 1_000
# Reference packet forwarders send at most 8 to 16 rxpk per PUSH_DATA; see `max_rxpk_per_datagram`.
DEFAULT_MAX_RXPK = 16
# What that many rxpk can need, checked on the raw body before it is parsed. Every JSON value after the first in an
# array or object costs a comma and every object a brace, so commas + braces bound the values orjson would build,
# which is what parsing costs (a 65 KB array of 21,000 empty objects takes ~0.9 ms, 32,000 zeros ~0.2 ms on a quiet
# core; the count is one `bytes.translate` pass, ~10 times cheaper). An rxpk has about 20 fields and at most 16
# `rsig` objects of about 12 fields; the document and `stat` get a fixed allowance. A body shorter than the budget
# cannot exceed it and is not scanned.
_VALUES_PER_RXPK = 256 + 20
_VALUES_BESIDES_RXPK = 256 + 16

# Disconnect reason -> (error name, message) of the gs.gateway.disconnect event.
_DISCONNECT_ERRORS = {
    "expired": ("connection_expired", "connection expired"),
    "replaced": ("new_connection", "connection replaced"),
    "shutdown": ("new_connection", "connection shutdown"),
    "evicted": ("connection_evicted", "connection evicted to make room for another gateway"),
    "unregistered": ("gateway_not_registered", "gateway no longer registered"),
}

Address = tuple[Any, ...]

# Resolved once: `.labels()` takes a lock and a dict look-up that the per-datagram path should not pay.
_RECEIVED_BY_TYPE = {kind: udp_metrics.DATAGRAMS_RECEIVED.labels(name) for kind, name in TYPE_NAMES.items()}


class Upstream(Protocol):
    def submit_uplink(self, uplink: messages_pb2.UplinkMessage, context: Any = None, received_ns: int = ...) -> None:
        """`received_ns`: when the uplink's datagram was read (Unix ns); it ages from there (upstream_max_age)."""

    def submit_tx_ack(self, ack: Any) -> None: ...

    async def close(self, timeout: float) -> int: ...


def _set_time(ts: Any, time_ns: int) -> None:
    ts.seconds, ts.nanos = divmod(time_ns, _NS)


class GatewayServer:
    """Owns the UDP connections and everything a connection produces."""

    def __init__(
        self,
        *,
        registry: GatewayRegistry,
        events: EventBackend,
        upstream: Upstream,
        tokens: UplinkTokens,
        connection_settings: ConnectionSettings | None = None,
        forward_crc_failed: bool = False,
        stats_retention_ns: int = 48 * 3600 * _NS,
        frequency_plans: Any = None,
        max_rxpk_per_datagram: int = DEFAULT_MAX_RXPK,
    ) -> None:
        self.registry = registry
        self.events = events
        self.upstream = upstream
        self.tokens = tokens
        self.frequency_plans = frequency_plans
        self.udp = UdpConnections(registry, connection_settings)
        self.forward_crc_failed = forward_crc_failed
        self.stats_retention_ns = stats_retention_ns
        self.max_rxpk_per_datagram = max_rxpk_per_datagram
        # gateway_id -> (stats of the last connection, disconnected at), oldest disconnect first; registered and
        # unregistered gateways apart, so the unregistered cannot push out the registered (see the bounds above).
        self._retained: OrderedDict[str, tuple[gateway_pb2.GatewayConnectionStats, int]] = OrderedDict()
        self._retained_unregistered: OrderedDict[str, tuple[gateway_pb2.GatewayConnectionStats, int]] = OrderedDict()
        self.downlinks: Any = None  # set by the downlink layer (gatewayserver.downlink) when it is wired
        udp_metrics.GATEWAYS_CONNECTED.labels("udp").set_function(lambda: len(self.udp))

    # --- datagrams ---------------------------------------------------------------------------------------------

    def rejected(self, result: Rejected, addr: Address) -> None:
        udp_metrics.DATAGRAMS_DROPPED.labels(result.reason).inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "datagram refused",
                extra={"reason": result.reason, "remote": format_address(addr), "detail": result.detail},
            )

    def accepted(self, acc: Accepted, addr: Address, now: int) -> None:
        """Everything after the ack. Never raises: a bad body costs its own datagram, nothing else."""
        conn = acc.connection
        if acc.replaced is not None:
            self._disconnected(acc.replaced, now, "replaced")
        if acc.evicted is not None:
            self._disconnected(acc.evicted, now, "evicted")
        if acc.new_connection:
            self._connected(conn, addr, now)
        kind = acc.datagram.type
        _RECEIVED_BY_TYPE[kind].inc()
        try:
            if kind == PUSH_DATA:
                self._push_data(conn, acc.datagram.body, addr, now)
            elif kind == TX_ACK:
                if self.downlinks is not None:
                    self.downlinks.tx_ack(conn, acc.datagram, now)
            elif kind == PULL_DATA and self.downlinks is not None:
                self.downlinks.pull_data(conn, now)
        except Exception:  # a bug in one gateway's handling must not stop the receive loop
            log.exception("datagram handling failed", extra={"gateway_id": conn.gateway_id})
            udp_metrics.DATAGRAMS_DROPPED.labels("internal").inc()

    def _push_data(self, conn: Connection, body: bytes, addr: Address, now: int) -> None:
        max_values = self.max_rxpk_per_datagram * _VALUES_PER_RXPK + _VALUES_BESIDES_RXPK
        if len(body) > max_values:
            values = len(body) - len(body.translate(None, b",{"))
            if values > max_values:
                self._too_many_values(conn, values, max_values, now)
                return
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            log.info("PUSH_DATA with invalid JSON", extra={"gateway_id": conn.gateway_id})
            return
        if not isinstance(doc, dict):
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            return
        rxpk = doc.get("rxpk")
        # The one per-datagram bound everything else hangs on: translation, events and uplinks grow with the
        # number of rxpk, and a 65 KB datagram holds 32,000 of them. A forwarder never sends more than 16, so a
        # PUSH_DATA beyond the bound is refused whole and counted once, whatever its entries are.
        if type(rxpk) is list and len(rxpk) > self.max_rxpk_per_datagram:
            self._too_many_rxpk(conn, len(rxpk), now)
            return
        if rxpk:
            self._uplinks(conn, rxpk, now)
        stat = doc.get("stat")
        if stat:
            self._status(conn, stat, addr, now)

    def _too_many_rxpk(self, conn: Connection, count: int, now: int) -> None:
        udp_metrics.DATAGRAMS_DROPPED.labels("too_many_rxpk").inc()
        log.info(
            "PUSH_DATA refused: too many rxpk (raise max_rxpk_per_datagram if a real forwarder sends this many)",
            extra={"gateway_id": conn.gateway_id, "rxpk": count, "max_rxpk_per_datagram": self.max_rxpk_per_datagram},
        )
        err = GsError(
            "pkg/gatewayserver/io/udp", "too_many_rxpk",
            "PUSH_DATA with {count} rxpk entries; at most {max} are accepted",
            code=INVALID_ARGUMENT, attributes={"count": count, "max": self.max_rxpk_per_datagram},
        )
        self._publish_drop(conn, now, err)

    def _too_many_values(self, conn: Connection, values: int, max_values: int, now: int) -> None:
        udp_metrics.DATAGRAMS_DROPPED.labels("too_many_values").inc()
        log.info(
            "PUSH_DATA refused unparsed: more JSON values than max_rxpk_per_datagram rxpk can hold",
            extra={"gateway_id": conn.gateway_id, "values": values, "max_values": max_values,
                   "max_rxpk_per_datagram": self.max_rxpk_per_datagram},
        )
        err = GsError(
            "pkg/gatewayserver/io/udp", "too_many_values",
            "PUSH_DATA body with {values} JSON values (commas and braces); {max} rxpk need at most {max_values}",
            code=INVALID_ARGUMENT,
            attributes={"values": values, "max_values": max_values, "max": self.max_rxpk_per_datagram},
        )
        self._publish_drop(conn, now, err)

    def _uplinks(self, conn: Connection, rxpk: Any, now: int) -> None:
        if not isinstance(rxpk, list):
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            return
        entry = conn.entry
        translator = conn.translator
        if translator is None:
            translator = conn.translator = UplinkTranslator(
                self._gateway_ids(conn),
                tokens=self.tokens,
                clock_sync=functools.partial(self._sync_clock, conn),
                drop_crc_failed=False,
                antenna_locations=_registry_locations(entry),
                downlink_path_constraint=entry.downlink_path_constraint,
            )
        drops: list[DroppedUplink] = []
        uplinks = translator.translate(rxpk, now, drops)
        if drops:
            self._rxpk_dropped(conn, drops, len(rxpk), now)
        for uplink in uplinks:
            self._uplink(conn, entry, uplink, now)

    def _rxpk_dropped(self, conn: Connection, drops: list[DroppedUplink], total: int, now: int) -> None:
        """The rxpk entries of one PUSH_DATA that did not become uplinks: one log line and one event for all.

        They are counted by reason in `gs_uplinks_dropped_total` but not in `gs_uplinks_received_total`, which
        counts uplink messages only: a gateway sending garbage must not look like a gateway sending uplinks.
        """
        counts: dict[str, int] = {}
        for drop in drops:
            counts[drop.reason] = counts.get(drop.reason, 0) + 1
        for reason, n in counts.items():
            UPLINKS_DROPPED.labels(reason).inc(n)
        first = next((d for d in drops if d.reason != "duplicate"), None)
        if first is not None:
            log.info("rxpk dropped", extra={"gateway_id": conn.gateway_id, "reason": first.reason,
                                            "detail": first.detail, "dropped": len(drops), "rxpk": total})
        if len(drops) == 1:
            drop = drops[0]
            err = GsError("pkg/gatewayserver/io/udp", drop.reason, drop.detail or drop.reason, code=INVALID_ARGUMENT)
        else:
            reasons = ",".join(f"{reason}:{counts[reason]}" for reason in sorted(counts))
            err = GsError(
                "pkg/gatewayserver/io/udp", "rxpk_dropped", "{dropped} of {total} rxpk entries dropped ({reasons})",
                code=INVALID_ARGUMENT, attributes={"dropped": len(drops), "total": total, "reasons": reasons},
            )
        self._publish_drop(conn, now, err)

    def _uplink(self, conn: Connection, entry: GatewayEntry, uplink: messages_pb2.UplinkMessage, now: int) -> None:
        UPLINKS_RECEIVED.inc()
        settings = uplink.settings
        key = (uplink.raw_payload, settings.timestamp, settings.frequency)
        if key == conn.last_uplink_key:
            UPLINKS_DROPPED.labels("repeat").inc()
            self._publish(ev.GS_IO_UP_REPEAT, conn, now, self._gateway_ids(conn), (conn.correlation_id,))
            return
        conn.last_uplink_key = key
        conn.uplink_count += 1
        conn.last_uplink_ns = now
        uplink.correlation_ids.append(conn.correlation_id)
        uplink.correlation_ids.append("gs:uplink:" + new_ulid(now))
        crc_failed = uplink.HasField("crc_status") and not uplink.crc_status.value
        forward_crc = entry.forward_crc_failed if entry.forward_crc_failed is not None else self.forward_crc_failed
        # The uplink is not changed after this point, so the event's GatewayUplinkMessage copy can wait for a reader.
        self._publish(ev.GS_UP_RECEIVE, conn, now, None, tuple(uplink.correlation_ids),
                      data_factory=functools.partial(self._gateway_uplink, uplink, entry))
        if crc_failed and not forward_crc:
            UPLINKS_DROPPED.labels("crc").inc()
            err = GsError("pkg/gatewayserver", "message_crc", "CRC check failed", code=INVALID_ARGUMENT)
            self._publish_drop(conn, now, err, tuple(uplink.correlation_ids))
            return
        try:
            self.upstream.submit_uplink(uplink, conn, now)
        except QueueFull as exc:
            UPLINKS_DROPPED.labels("queue_full").inc()
            err = GsError("pkg/gatewayserver/upstream", "queue_full", str(exc), code=RESOURCE_EXHAUSTED)
            self._publish_drop(conn, now, err, tuple(uplink.correlation_ids))
        except Exception as exc:
            log.exception("upstream refused uplink", extra={"gateway_id": conn.gateway_id})
            UPLINKS_DROPPED.labels("internal").inc()
            err = GsError("pkg/gatewayserver/upstream", "internal", str(exc), code=INTERNAL)
            self._publish_drop(conn, now, err, tuple(uplink.correlation_ids))

    def _sync_clock(self, conn: Connection, timestamp: int, now: int, gps_ns: int | None) -> int:
        """Feed the downlink clock; returns the concentrator time (ns) for the uplink token."""
        if self.downlinks is not None:
            return self.downlinks.sync_clock(conn, timestamp, now, gps_ns)
        return timestamp * 1000

    def upstream_result(self, uplink: messages_pb2.UplinkMessage, conn: Any, error: BaseException | None) -> None:
        """Called by the upstream when a Network Server accepted or finally refused an uplink."""
        now = time.time_ns()
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
                err = GsError("pkg/gatewayserver/upstream", error.reason, str(error), code=code)
                self._publish_drop(conn, now, err, correlation_ids)
            return
        UPLINKS_DROPPED.labels("upstream_error").inc()
        if isinstance(conn, Connection):
            wrapped = GsError(
                "pkg/gatewayserver/upstream", "handle_uplink", "Network Server refused uplink", code=UNAVAILABLE,
                cause=_call_error(error),
            )
            self._publish_drop(conn, now, wrapped, correlation_ids)

    def _status(self, conn: Connection, stat: Any, addr: Address, now: int) -> None:
        if not isinstance(stat, dict):
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            return
        try:
            status = status_from_stat(stat, now, str(addr[0]))
        except TranslateError as exc:
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_status").inc()
            log.info("unusable stat object", extra={"gateway_id": conn.gateway_id, "error": str(exc)})
            return
        STATUS_RECEIVED.inc()
        conn.last_status = status
        conn.last_status_ns = now
        conn.status_count += 1
        self._publish(ev.GS_STATUS_RECEIVE, conn, now, status, (conn.correlation_id,))

    # --- connection lifecycle ------------------------------------------------------------------------------------

    def _connected(self, conn: Connection, addr: Address, now: int) -> None:
        udp_metrics.GATEWAY_CONNECTS.labels("udp").inc()
        self._retained.pop(conn.gateway_id, None)
        self._retained_unregistered.pop(conn.gateway_id, None)
        log.info(
            "gateway connected",
            extra={
                "gateway_id": conn.gateway_id, "eui": conn.eui.hex().upper(), "remote": format_address(addr),
                "registered": conn.entry.registered,
            },
        )
        self._publish(ev.GS_GATEWAY_CONNECT, conn, now, None, (conn.correlation_id,))

    def _disconnected(self, conn: Connection, now: int, reason: str) -> None:
        udp_metrics.GATEWAY_DISCONNECTS.labels(reason).inc()
        stats = self._stats_of(conn, now)
        _set_time(stats.disconnected_at, now)
        if conn.registered and reason != "unregistered":
            retained, bound = self._retained, _MAX_RETAINED_STATS
        else:
            retained, bound = self._retained_unregistered, MAX_RETAINED_UNREGISTERED
        retained[conn.gateway_id] = (stats, now)
        retained.move_to_end(conn.gateway_id)
        while len(retained) > bound:
            retained.popitem(last=False)
        if self.downlinks is not None:
            self.downlinks.disconnected(conn)
        log.info("gateway disconnected", extra={"gateway_id": conn.gateway_id, "reason": reason})
        name, message = _DISCONNECT_ERRORS.get(reason, ("connection_closed", f"connection {reason}"))
        err = GsError("pkg/gatewayserver/io/udp", name, message, code=UNAVAILABLE)
        self._publish(ev.GS_GATEWAY_DISCONNECT, conn, now, to_error_details(err), (conn.correlation_id,))

    def expire(self, now: int) -> None:
        for conn in self.udp.expire(now):
            self._disconnected(conn, now, "expired")
        cutoff = now - self.stats_retention_ns
        for retained in (self._retained, self._retained_unregistered):
            while retained:
                gateway_id, (_, at) = next(iter(retained.items()))
                if at >= cutoff:
                    break
                del retained[gateway_id]

    def retained_stats_count(self) -> tuple[int, int]:
        """Retained stats of disconnected (registered, unregistered) gateways; each bounded (see the module top)."""
        return len(self._retained), len(self._retained_unregistered)

    def registry_reloaded(self, now: int) -> None:
        """Apply a reloaded registry to live connections at once (SIGHUP).

        Gateways no longer admitted are disconnected (reason `unregistered`); the others take their new entry. A
        changed entry rebuilds what was derived from the old one: the uplink translator (ids, location) at the
        next uplink, and the downlink state when the plans or the duty-cycle setting changed.
        """
        changes = self.udp.apply_registry()
        for conn, reason in changes.removed:
            self._disconnected(conn, now, reason)
        for conn, old in changes.changed:
            conn.translator = None
            if self.downlinks is not None:
                self.downlinks.entry_changed(conn, old)
            log.info(
                "gateway registry entry changed",
                extra={
                    "gateway_id": conn.gateway_id, "previous_gateway_id": old.gateway_id, "eui": conn.eui.hex().upper(),
                },
            )

    def close_all(self, now: int) -> None:
        for conn in self.udp.close_all():
            self._disconnected(conn, now, "shutdown")

    # --- events ---------------------------------------------------------------------------------------------------

    def _gateway_ids(self, conn: Connection) -> identifiers_pb2.GatewayIdentifiers:
        ids = identifiers_pb2.GatewayIdentifiers()
        ids.gateway_id = conn.gateway_id
        ids.eui = conn.eui
        return ids

    def _publish(
        self, definition: ev.EventDefinition, conn: Connection, now: int, data: Any, cids: tuple[str, ...],
        data_factory: Any = None,
    ) -> None:
        self.events.publish(definition.new(now, ((conn.gateway_id, conn.eui),), data, cids, data_factory=data_factory))

    def _publish_drop(self, conn: Connection, now: int, err: BaseException, cids: tuple[str, ...] = ()) -> None:
        self._publish(ev.GS_UP_DROP, conn, now, to_error_details(err), cids or (conn.correlation_id,))

    def _gateway_uplink(
        self, uplink: messages_pb2.UplinkMessage, entry: GatewayEntry
    ) -> messages_pb2.GatewayUplinkMessage:
        message = messages_pb2.GatewayUplinkMessage()
        message.message.CopyFrom(uplink)
        message.band_id = self._band_id(entry)
        return message

    def _band_id(self, entry: GatewayEntry) -> str:
        plans = self.frequency_plans
        if plans is None:
            return ""
        try:
            return plans.get(entry.frequency_plan_ids[0]).band_id
        except Exception:
            return ""

    # --- APIs -------------------------------------------------------------------------------------------------------

    def connection_stats(self, gateway_id: str) -> gateway_pb2.GatewayConnectionStats | None:
        conn = self.udp.get(gateway_id)
        if conn is not None:
            return self._stats_of(conn, time.time_ns())
        retained = self._retained.get(gateway_id) or self._retained_unregistered.get(gateway_id)
        if retained is not None:
            stats = gateway_pb2.GatewayConnectionStats()
            stats.CopyFrom(retained[0])
            return stats
        return None

    def _stats_of(self, conn: Connection, now: int) -> gateway_pb2.GatewayConnectionStats:
        stats = gateway_pb2.GatewayConnectionStats()
        _set_time(stats.connected_at, conn.connected_at_ns)
        stats.protocol = "udp"
        if conn.last_status is not None:
            stats.last_status.CopyFrom(conn.last_status)
            _set_time(stats.last_status_received_at, conn.last_status_ns)
        if conn.uplink_count:
            stats.uplink_count = conn.uplink_count
            _set_time(stats.last_uplink_received_at, conn.last_uplink_ns)
        if conn.downlink_count:
            stats.downlink_count = conn.downlink_count
            _set_time(stats.last_downlink_received_at, conn.last_downlink_ns)
        if conn.tx_ack_count:
            stats.tx_acknowledgment_count = conn.tx_ack_count
            _set_time(stats.last_tx_acknowledgment_received_at, conn.last_tx_ack_ns)
        stats.gateway_remote_address.ip = str(conn.host)
        if self.downlinks is not None:
            self.downlinks.fill_stats(conn, stats, now)
        return stats

    def connected_gateways(self) -> list[dict[str, Any]]:
        """A JSON-ready summary per live connection, for `gatewayserver gateways` and dashboards."""
        now = time.time_ns()
        out = []
        for conn in self.udp.connections():
            stats = self._stats_of(conn, now)
            rtt = stats.round_trip_times
            out.append(
                {
                    "gateway_id": conn.gateway_id,
                    "eui": conn.eui.hex().upper(),
                    "address": str(conn.host),
                    "connected_at": format_timestamp_ns(conn.connected_at_ns),
                    "last_uplink_received_at": (
                        format_timestamp_ns(conn.last_uplink_ns) if conn.last_uplink_ns else None
                    ),
                    "uplink_count": conn.uplink_count,
                    "downlink_count": conn.downlink_count,
                    "rtt_median_ms": (rtt.median.seconds * 1000 + rtt.median.nanos / 1e6) if rtt.count else None,
                    "sub_bands": [
                        {
                            "min_frequency": sb.min_frequency,
                            "max_frequency": sb.max_frequency,
                            # float32 fields: printed as float32 (0.001), not as the double they widen to
                            "utilization": float32_value(sb.downlink_utilization),
                            "limit": float32_value(sb.downlink_utilization_limit),
                        }
                        for sb in stats.sub_bands
                    ],
                }
            )
        out.sort(key=lambda item: str(item["gateway_id"]))
        return out

    def gateway_entry(self, gateway_id: str) -> GatewayEntry | None:
        conn = self.udp.get(gateway_id)
        if conn is not None:
            return conn.entry
        entry = self.registry.by_id(gateway_id)
        if entry is not None:
            return entry
        if gateway_id.startswith("eui-") and len(gateway_id) == 20:
            try:
                return self.registry.lookup(bytes.fromhex(gateway_id[4:]))
            except ValueError:
                return None
        return None

    def gateway_eui(self, gateway_id: str) -> bytes | None:
        entry = self.gateway_entry(gateway_id)
        return entry.eui if entry is not None else None

    def gateway_frequency_plans(self, gateway_id: str) -> list[Any]:
        """The gateway's frequency plans in registry order (all of one band; the registry checks that)."""
        entry = self.gateway_entry(gateway_id)
        if entry is None:
            raise GsError(
                "pkg/gatewayserver", "gateway_not_registered", "gateway `{gateway_uid}` is not registered",
                code=NOT_FOUND, attributes={"gateway_uid": gateway_id},
            )
        return [self.frequency_plans.get(plan_id) for plan_id in entry.frequency_plan_ids]

    async def schedule_downlink(self, message: messages_pb2.DownlinkMessage) -> Any:
        if self.downlinks is None:
            raise GsError("pkg/gatewayserver", "downlink_unavailable", "downlink is not available", code=UNAVAILABLE)
        return await self.downlinks.schedule(message)


def _call_error(error: BaseException) -> GsError:
    """A failed GsNs call as a typed cause: its gRPC code and the Network Server's message."""
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):  # grpc.aio.AioRpcError
        return GsError("pkg/gatewayserver/upstream", "call", str(details()), code=code().value[0])
    return GsError("pkg/gatewayserver/upstream", "call", str(error), code=UNKNOWN)


@functools.lru_cache(maxsize=4096)
def _registry_locations(entry: GatewayEntry) -> tuple[metadata_pb2.Location | None, ...]:
    """The registry location to put in uplink metadata: only when the operator made it public."""
    loc = entry.location
    if loc is None or not entry.location_public:
        return ()
    location = metadata_pb2.Location()
    location.latitude = loc.latitude
    location.longitude = loc.longitude
    location.altitude = loc.altitude
    if loc.accuracy:
        location.accuracy = loc.accuracy
    location.source = metadata_pb2.SOURCE_REGISTRY
    return (location,)

