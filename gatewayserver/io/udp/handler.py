"""The Semtech UDP frontend's translation between accepted datagrams and the core; sans-I/O.

`UdpConnections` (in `connection.py`) decides per datagram whether it is accepted and what to ack; the asyncio shell
(`frontend.py`) sends the ack and hands the accepted datagram here with the time it was read. This module turns
it into calls on the gateway's core `Connection`: a new UDP connection connects the gateway to the core (and a
replaced one disconnects it), PUSH_DATA becomes `handle_up` per translated rxpk and `handle_status` for its stat,
TX_ACK becomes `handle_tx_ack` with the downlink id its token stands for. Silent connections expire through
`next_deadline()` / `handle_timer(now)`. Nothing here reads a clock or touches a socket; every datagram's work is
bounded by the translation's own limits.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, cast

import orjson

from ...core.connection import Connection as CoreConnection
from ...core.gateways import GatewayCore
from ...errors import INVALID_ARGUMENT, NOT_FOUND, GsError
from ...logs import format_address
from ...metrics import UPLINKS_DROPPED
from ...registry import GatewayEntry
from ...ttnpb import messages_pb2, metadata_pb2
from . import metrics as udp_metrics
from .connection import Accepted, Connection, Rejected, UdpConnections
from .link import UdpLink
from .packets import PULL_DATA, PUSH_DATA, TX_ACK, TYPE_NAMES, PacketError, parse_tx_ack
from .translate import DroppedUplink, TranslateError, UplinkTranslator, status_from_stat

log = logging.getLogger(__name__)

Address = tuple[Any, ...]
_NS_UDP = "pkg/gatewayserver/io/udp"

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

# Resolved once: `.labels()` takes a lock and a dict look-up that the per-datagram path should not pay.
_RECEIVED_BY_TYPE = {kind: udp_metrics.DATAGRAMS_RECEIVED.labels(name) for kind, name in TYPE_NAMES.items()}


class UdpHandler:
    """Accepted datagrams into the core; the UDP connections' expiry."""

    def __init__(
        self,
        core: GatewayCore,
        udp: UdpConnections,
        *,
        schedule_late_ns: int = 800_000_000,
        max_rxpk_per_datagram: int = DEFAULT_MAX_RXPK,
    ) -> None:
        self.core = core
        self.udp = udp
        self.schedule_late_ns = schedule_late_ns
        self.max_rxpk_per_datagram = max_rxpk_per_datagram
        self.on_deadline: Callable[[], None] | None = None

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
        udp = acc.connection
        if acc.replaced is not None and acc.replaced.core is not None:
            self.core.disconnect(acc.replaced.core, now, "replaced")
        if acc.evicted is not None and acc.evicted.core is not None:
            self.core.disconnect(acc.evicted.core, now, "evicted")
        if acc.new_connection or udp.core is None:
            self._connect(udp, addr, now)
        core = udp.core
        assert core is not None
        kind = acc.datagram.type
        _RECEIVED_BY_TYPE[kind].inc()
        try:
            if kind == PUSH_DATA:
                self._push_data(udp, core, acc.datagram.body, addr, now)
            elif kind == TX_ACK:
                self._tx_ack(udp, core, acc.datagram.token, acc.datagram.body, now)
            elif kind == PULL_DATA:
                pass  # the downlink path was refreshed (by `UdpConnections`); nothing is queued server-side
        except Exception:  # a bug in one gateway's handling must not stop the receive loop
            log.exception("datagram handling failed", extra={"gateway_id": udp.gateway_id})
            udp_metrics.DATAGRAMS_DROPPED.labels("internal").inc()

    def _connect(self, udp: Connection, addr: Address, now: int) -> None:
        link = UdpLink(udp, self.udp.settings.downlink_path_expires_ns, self.schedule_late_ns)
        link.on_disconnect = self._core_disconnected
        udp.core = self.core.connect(udp.entry, link, now, remote=format_address(addr))
        if self.on_deadline is not None:
            self.on_deadline()  # the new connection's expiry may be the earliest deadline

    def _core_disconnected(self, udp: Connection, reason: str) -> None:
        """The core ended the gateway's connection (e.g. a gRPC link replaced it): forget its UDP state too."""
        if reason in ("expired", "shutdown") or udp.closed:
            return
        self.udp.remove(udp)

    def _push_data(self, udp: Connection, core: CoreConnection, body: bytes, addr: Address, now: int) -> None:
        max_values = self.max_rxpk_per_datagram * _VALUES_PER_RXPK + _VALUES_BESIDES_RXPK
        if len(body) > max_values:
            values = len(body) - len(body.translate(None, b",{"))
            if values > max_values:
                self._too_many_values(udp, core, values, max_values, now)
                return
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            log.info("PUSH_DATA with invalid JSON", extra={"gateway_id": udp.gateway_id})
            return
        if not isinstance(doc, dict):
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            return
        rxpk = doc.get("rxpk")
        # The one per-datagram bound everything else hangs on: translation, events and uplinks grow with the
        # number of rxpk, and a 65 KB datagram holds 32,000 of them. A forwarder never sends more than 16, so a
        # PUSH_DATA beyond the bound is refused whole and counted once, whatever its entries are.
        if type(rxpk) is list and len(rxpk) > self.max_rxpk_per_datagram:
            self._too_many_rxpk(udp, core, len(rxpk), now)
            return
        if rxpk:
            self._uplinks(udp, core, rxpk, now)
        stat = doc.get("stat")
        if stat:
            self._status(udp, core, stat, addr, now)

    def _uplinks(self, udp: Connection, core: CoreConnection, rxpk: Any, now: int) -> None:
        if not isinstance(rxpk, list):
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            return
        translator = udp.translator
        if translator is None:
            entry = udp.entry
            # Without tokens: the core issues them, from the clock it keeps for the gateway.
            translator = udp.translator = UplinkTranslator(
                core.ids,
                drop_crc_failed=False,
                antenna_locations=_registry_locations(entry),
                downlink_path_constraint=entry.downlink_path_constraint,
            )
        drops: list[DroppedUplink] = []
        uplinks = translator.translate(rxpk, now, drops)
        if drops:
            self._rxpk_dropped(udp, core, drops, len(rxpk), now)
        for uplink in uplinks:
            core.handle_up(uplink, now)

    def _too_many_rxpk(self, udp: Connection, core: CoreConnection, count: int, now: int) -> None:
        udp_metrics.DATAGRAMS_DROPPED.labels("too_many_rxpk").inc()
        log.info(
            "PUSH_DATA refused: too many rxpk (raise max_rxpk_per_datagram if a real forwarder sends this many)",
            extra={"gateway_id": udp.gateway_id, "rxpk": count, "max_rxpk_per_datagram": self.max_rxpk_per_datagram},
        )
        err = GsError(
            _NS_UDP, "too_many_rxpk", "PUSH_DATA with {count} rxpk entries; at most {max} are accepted",
            code=INVALID_ARGUMENT, attributes={"count": count, "max": self.max_rxpk_per_datagram},
        )
        core.drop_uplink(err, now)

    def _too_many_values(self, udp: Connection, core: CoreConnection, values: int, max_values: int, now: int) -> None:
        udp_metrics.DATAGRAMS_DROPPED.labels("too_many_values").inc()
        log.info(
            "PUSH_DATA refused unparsed: more JSON values than max_rxpk_per_datagram rxpk can hold",
            extra={"gateway_id": udp.gateway_id, "values": values, "max_values": max_values,
                   "max_rxpk_per_datagram": self.max_rxpk_per_datagram},
        )
        err = GsError(
            _NS_UDP, "too_many_values",
            "PUSH_DATA body with {values} JSON values (commas and braces); {max} rxpk need at most {max_values}",
            code=INVALID_ARGUMENT,
            attributes={"values": values, "max_values": max_values, "max": self.max_rxpk_per_datagram},
        )
        core.drop_uplink(err, now)

    def _rxpk_dropped(
        self, udp: Connection, core: CoreConnection, drops: list[DroppedUplink], total: int, now: int
    ) -> None:
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
            log.info("rxpk dropped", extra={"gateway_id": udp.gateway_id, "reason": first.reason,
                                            "detail": first.detail, "dropped": len(drops), "rxpk": total})
        if len(drops) == 1:
            drop = drops[0]
            err = GsError(_NS_UDP, drop.reason, drop.detail or drop.reason, code=INVALID_ARGUMENT)
        else:
            reasons = ",".join(f"{reason}:{counts[reason]}" for reason in sorted(counts))
            err = GsError(
                _NS_UDP, "rxpk_dropped", "{dropped} of {total} rxpk entries dropped ({reasons})",
                code=INVALID_ARGUMENT, attributes={"dropped": len(drops), "total": total, "reasons": reasons},
            )
        core.drop_uplink(err, now)

    def _status(self, udp: Connection, core: CoreConnection, stat: Any, addr: Address, now: int) -> None:
        if not isinstance(stat, dict):
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            return
        try:
            status = status_from_stat(stat, now, str(addr[0]))
        except TranslateError as exc:
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_status").inc()
            log.info("unusable stat object", extra={"gateway_id": udp.gateway_id, "error": str(exc)})
            return
        core.handle_status(status, now)

    def _tx_ack(self, udp: Connection, core: CoreConnection, token_bytes: bytes, body: bytes, now: int) -> None:
        try:
            ack = parse_tx_ack(body)
        except PacketError as exc:
            udp_metrics.DATAGRAMS_DROPPED.labels("bad_json").inc()
            log.info("unusable TX_ACK", extra={"gateway_id": udp.gateway_id, "error": str(exc)})
            core.drop_tx_ack(GsError(_NS_UDP, "tx_ack", str(exc), code=INVALID_ARGUMENT), now)
            return
        token = int.from_bytes(token_bytes, "big")
        link = core.link
        downlink_id = link.downlink_id(token) if isinstance(link, UdpLink) else None
        if downlink_id is None:
            log.info("TX_ACK for an unknown downlink", extra={"gateway_id": udp.gateway_id, "token": token})
            core.drop_tx_ack(
                GsError(_NS_UDP, "tx_ack_token", "TX_ACK for unknown token `{token}`", code=NOT_FOUND,
                        attributes={"token": token}),
                now,
            )
            return
        # The UDP codec keeps Result numbers as plain ints (it imports no protobuf); they are Result values.
        result = cast(Result, ack.result if ack.result in _RESULTS else Result.UNKNOWN_ERROR)
        core.handle_tx_ack(messages_pb2.TxAcknowledgment(correlation_ids=[downlink_id], result=result), now)

    # --- time -------------------------------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When a silent UDP connection may expire."""
        return self.udp.next_deadline()

    def handle_timer(self, now: int) -> None:
        for udp in self.udp.expire(now):
            if udp.core is not None:
                self.core.disconnect(udp.core, now, "expired")

    def registry_reloaded(self, now: int) -> None:
        """Apply a reloaded registry to live UDP connections at once (SIGHUP).

        Gateways no longer admitted are disconnected (reason `unregistered`); the others take their new entry. A
        changed entry rebuilds what was derived from the old one: the uplink translator (ids, location) at the
        next uplink, and in the core the downlink state when the plans or the duty-cycle setting changed.
        """
        changes = self.udp.apply_registry()
        for udp, reason in changes.removed:
            if udp.core is not None:
                self.core.disconnect(udp.core, now, reason)
        for udp, _old in changes.changed:
            udp.translator = None
            if udp.core is not None:
                self.core.entry_changed(udp.core, udp.entry, now)

    def close_all(self, now: int) -> None:
        for udp in self.udp.close_all():
            if udp.core is not None:
                self.core.disconnect(udp.core, now, "shutdown")


Result = messages_pb2.TxAcknowledgment.Result
_RESULTS = frozenset(Result.values())


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
