"""UDP gateway connections, sans-I/O.

A Semtech forwarder has no session: a "connection" is our belief that an EUI is alive at some address. This module
holds that belief for every gateway and decides, per datagram and given `now`, whether to accept it, what to ack,
and when connections and downlink paths expire. It never touches a socket or a clock; the asyncio frontend feeds it
datagrams and the time, and asks `next_deadline()` when it needs waking.

The reference Gateway Server's semantics: connect on the first accepted datagram, downlink path = address of the
latest PULL_DATA (or TX_ACK), path expiry after 90 s, connection expiry after 3 min of silence, a per-EUI flood
guard, and an optional block on address changes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...events.event import new_ulid
from ...registry import GatewayEntry, GatewayRegistry
from .packets import (
    PULL_ACK,
    PULL_DATA,
    PUSH_ACK,
    PUSH_DATA,
    TX_ACK,
    Datagram,
    PacketError,
    encode_ack,
    parse_datagram,
)

Address = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    connection_expires_ns: int = 180_000_000_000
    downlink_path_expires_ns: int = 90_000_000_000
    flood_datagrams: int = 10
    flood_window_ns: int = 10_000_000
    address_change_block_ns: int = 0
    # Unregistered gateways are admitted by default, so an attacker cycling EUIs could otherwise grow the table
    # without bound until expiry; past this many live connections new EUIs are refused and counted.
    max_connections: int = 100_000


class Connection:
    """One gateway's live state. Slots keep an idle gateway to a few hundred bytes."""

    __slots__ = (
        "entry",
        "gateway_id",
        "eui",
        "correlation_id",
        "connected_at_ns",
        "last_seen_ns",
        "host",
        "up_addr",
        "down_addr",
        "down_seen_ns",
        "version",
        "_flood",
        "_flood_index",
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
        "has_jit_queue",
        "next_pull_resp_token",
        "pending_tx",
        "downlink",
        "translator",
        "transmit",
        "closed",
    )

    def __init__(self, entry: GatewayEntry, addr: Address, now: int, flood_datagrams: int) -> None:
        self.entry = entry
        self.gateway_id = entry.gateway_id
        self.eui = entry.eui
        self.correlation_id = "gs:conn:" + new_ulid(now)
        self.connected_at_ns = now
        self.last_seen_ns = now
        self.host = addr[0]
        self.up_addr: Address | None = None
        self.down_addr: Address | None = None
        self.down_seen_ns = 0
        self.version = 2
        self._flood: list[int] | None = [-(1 << 62)] * flood_datagrams if flood_datagrams else None
        self._flood_index = 0
        self.last_uplink_key: Any = None
        self.uplink_count = 0
        self.last_uplink_ns = 0
        self.downlink_count = 0
        self.last_downlink_ns = 0
        self.tx_ack_count = 0
        self.last_tx_ack_ns = 0
        self.last_status: Any = None
        self.last_status_ns = 0
        self.status_count = 0
        self.has_jit_queue = False
        # Tokens of PULL_RESP we sent; the forwarder echoes them in TX_ACK. Starts at a fixed non-zero value so a
        # stray TX_ACK with token 0 (protocol v1 zeroes tokens) is never mistaken for ours.
        self.next_pull_resp_token = 1
        # PULL_RESP token -> whatever the downlink layer needs to report the TX_ACK (bounded by the caller).
        self.pending_tx: dict[int, Any] = {}
        # Per-gateway downlink state (scheduler, clock, RTT), created lazily by the downlink layer.
        self.downlink: Any = None
        # The connection's uplink translator, built at its first uplink (status-only gateways never need one).
        self.translator: Any = None
        # How datagrams reach this gateway: the send function of the listener it talks to.
        self.transmit: Callable[[bytes, Address], None] | None = None
        self.closed = False

    def flood_check(self, now: int, window_ns: int) -> bool:
        """True when this datagram may pass: the N-th previous one is older than the window."""
        ring = self._flood
        if ring is None:
            return True
        index = self._flood_index
        if now - ring[index] < window_ns:
            return False
        ring[index] = now
        self._flood_index = (index + 1) % len(ring)
        return True

    def downlink_path(self, now: int, expires_ns: int) -> Address | None:
        """Where a PULL_RESP must go, or None when the gateway stopped pulling."""
        if self.down_addr is None or now - self.down_seen_ns > expires_ns:
            return None
        return self.down_addr

    def take_pull_resp_token(self) -> int:
        token = self.next_pull_resp_token
        self.next_pull_resp_token = 1 if token >= 0xFFFF else token + 1
        return token


@dataclass(slots=True)
class Accepted:
    """A datagram that passed the header checks; `ack` must be sent before anything else is done."""

    datagram: Datagram
    connection: Connection
    ack: bytes | None
    new_connection: bool
    replaced: Connection | None


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str
    eui: bytes | None = None


class UdpConnections:
    """All UDP gateway connections of one daemon, keyed by EUI."""

    def __init__(self, registry: GatewayRegistry, settings: ConnectionSettings | None = None) -> None:
        self.registry = registry
        self.settings = settings or ConnectionSettings()
        self._by_eui: dict[bytes, Connection] = {}
        self._by_id: dict[str, Connection] = {}
        # One (deadline, eui) entry per connection, pushed at connect and re-armed lazily when it fires for a
        # gateway that has been heard since: per-datagram work stays O(1).
        self._expiry: list[tuple[int, int, Connection]] = []
        self._expiry_seq = 0

    def __len__(self) -> int:
        return len(self._by_eui)

    def get(self, gateway_id: str) -> Connection | None:
        return self._by_id.get(gateway_id)

    def connections(self) -> list[Connection]:
        return list(self._by_eui.values())

    def accept(self, data: bytes, addr: Address, now: int) -> Accepted | Rejected:
        """Check a datagram's header and its gateway; connect, refresh and ack it."""
        try:
            datagram = parse_datagram(data)
        except PacketError as exc:
            return Rejected(exc.reason, str(exc))
        eui = datagram.eui
        if eui is None:  # an ack or PULL_RESP sent to us: only gateway-to-server types carry an EUI
            return Rejected("unexpected_type", "server-to-gateway datagram received")
        settings = self.settings
        conn = self._by_eui.get(eui)
        replaced: Connection | None = None
        new_connection = False
        if conn is not None and conn.host != addr[0]:
            if settings.address_change_block_ns and now - conn.last_seen_ns < settings.address_change_block_ns:
                return Rejected("address_changed", f"EUI {eui.hex().upper()} moved to {addr[0]} while blocked", eui)
            replaced = conn
            self._remove(conn)
            conn = None
        if conn is None:
            if len(self._by_eui) >= settings.max_connections:
                return Rejected(
                    "connection_limit", f"{len(self._by_eui)} gateways connected; EUI {eui.hex().upper()} refused", eui
                )
            entry = self.registry.lookup(eui)
            if entry is None:
                return Rejected("unregistered", f"EUI {eui.hex().upper()} is not registered", eui)
            existing = self._by_id.get(entry.gateway_id)
            if existing is not None:  # same gateway id under another EUI (registry edited): one connection only
                replaced = replaced or existing
                self._remove(existing)
            conn = Connection(entry, addr, now, settings.flood_datagrams)
            self._by_eui[eui] = conn
            self._by_id[entry.gateway_id] = conn
            new_connection = True
        elif not conn.flood_check(now, settings.flood_window_ns):
            return Rejected(
                "flood", f"EUI {eui.hex().upper()} exceeds {settings.flood_datagrams} datagrams per window", eui
            )
        if new_connection:
            conn.flood_check(now, settings.flood_window_ns)
        conn.last_seen_ns = now
        conn.version = datagram.version
        kind = datagram.type
        ack: bytes | None = None
        if kind == PUSH_DATA:
            conn.up_addr = addr
            ack = encode_ack(datagram.version, datagram.token, PUSH_ACK)
        elif kind == PULL_DATA:
            conn.down_addr = addr
            conn.down_seen_ns = now
            ack = encode_ack(datagram.version, datagram.token, PULL_ACK)
        elif kind == TX_ACK:
            # Some vendor forwarders send TX_ACK from the up socket; it proves the gateway is alive, but only a
            # PULL_DATA defines where downlinks go.
            if conn.down_addr is not None:
                conn.down_seen_ns = now
            conn.has_jit_queue = True
        if new_connection:
            self._arm(conn, now + settings.connection_expires_ns)
        return Accepted(datagram, conn, ack, new_connection, replaced)

    def _arm(self, conn: Connection, deadline: int) -> None:
        self._expiry_seq += 1
        heapq.heappush(self._expiry, (deadline, self._expiry_seq, conn))

    def _remove(self, conn: Connection) -> None:
        conn.closed = True
        if self._by_eui.get(conn.eui) is conn:
            del self._by_eui[conn.eui]
        if self._by_id.get(conn.gateway_id) is conn:
            del self._by_id[conn.gateway_id]

    def expire(self, now: int) -> list[Connection]:
        """Remove and return the connections silent for longer than the expiry."""
        expired: list[Connection] = []
        heap = self._expiry
        limit = self.settings.connection_expires_ns
        while heap and heap[0][0] <= now:
            conn = heapq.heappop(heap)[2]
            if conn.closed:
                continue
            if now - conn.last_seen_ns >= limit:
                self._remove(conn)
                expired.append(conn)
            else:
                self._arm(conn, conn.last_seen_ns + limit)
        return expired

    def next_deadline(self) -> int | None:
        """When `expire` may next have work, or None when there are no connections."""
        return self._expiry[0][0] if self._expiry else None

    def close_all(self) -> list[Connection]:
        conns = list(self._by_eui.values())
        for conn in conns:
            self._remove(conn)
        self._expiry.clear()
        return conns

    def on_each(self, func: Callable[[Connection], None]) -> None:
        for conn in list(self._by_eui.values()):
            func(conn)
