"""UDP gateway connections, sans-I/O.

A Semtech forwarder has no session: a "connection" is our belief that an EUI is alive at some address. This module
holds that belief for every gateway and decides, per datagram and given `now`, whether to accept it, what to ack,
and when connections and downlink paths expire. It never touches a socket or a clock; the asyncio frontend feeds it
datagrams and the time, and asks `next_deadline()` when it needs waking.

The reference Gateway Server's semantics: connect on the first accepted datagram, downlink path = address of the
latest PULL_DATA (or TX_ACK), path expiry after 90 s, connection expiry after 3 min of silence, a flood guard, and
an optional block on address changes. Where following the reference literally let one sender hurt another gateway,
this module departs from it, each time for a stated reason:

- Flood guard per (EUI, source address), not per EUI. The reference counts every datagram carrying an EUI against
  that EUI, so anyone who can send a datagram with a victim's EUI (spoofing needs no secret) could use up the
  victim's budget and have its own datagrams dropped. Here each source address (IP and port) of an EUI has its
  own budget: a forwarder that floods from its socket is still limited, and another address's flood never costs
  the gateway's own sockets their traffic. Per EUI at most `MAX_FLOOD_SOURCES` addresses are remembered, the
  oldest forgotten first; forgetting an address only ever gives it a fresh budget.
- With the address-change block on, the block also holds the downlink path: while PULL_DATA keeps arriving from
  the current path, a PULL_DATA from another address *or port* of the same IP is refused (the reference compares
  only IPs, so one spoofed PULL_DATA from another port moved the victim's downlinks there).
- Room: registered gateways are never refused for lack of room. When the table is full, the least recently active
  unregistered connection is evicted to make room; only when none is left is a newcomer refused, and only an
  unregistered one.
- A registry reload applies to live connections (`apply_registry`): gateways no longer allowed are removed, the
  others get their new entry.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ...core.connection import Connection as CoreConnection

Address = tuple[Any, ...]

# Source addresses per EUI that keep a flood budget of their own: a gateway uses two sockets (up and down), so a
# few more leave room for a NAT change and a stray sender without letting one EUI hold unbounded state.
MAX_FLOOD_SOURCES = 4
_NEVER = -(1 << 62)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    connection_expires_ns: int = 180_000_000_000
    downlink_path_expires_ns: int = 90_000_000_000
    flood_datagrams: int = 10
    flood_window_ns: int = 10_000_000
    address_change_block_ns: int = 0
    # Unregistered gateways are admitted by default, so an attacker cycling EUIs could otherwise grow the table
    # without bound until expiry. Past this many live connections the least recently active unregistered one is
    # evicted for a newcomer; registered gateways are admitted even beyond it (the registry bounds them).
    max_connections: int = 100_000
    # New unregistered gateways one source host may bring per second. Each costs a connection (~100 µs and a few
    # hundred bytes), so one host cycling EUIs at line rate would otherwise starve every gateway sharing the
    # socket; refused ones cost a dict look-up. Registered gateways are not counted. 0: no limit.
    new_gateways_per_source: int = 100


_SOURCE_WINDOW_NS = 1_000_000_000
_MAX_SOURCES = 10_000


class Connection:
    """One gateway's live state. Slots keep an idle gateway to a few hundred bytes."""

    __slots__ = (
        "entry",
        "gateway_id",
        "eui",
        "last_seen_ns",
        "host",
        "up_addr",
        "down_addr",
        "down_seen_ns",
        "last_pull_ns",
        "version",
        "registered",
        "_flood",
        "_flood_size",
        "has_jit_queue",
        "next_pull_resp_token",
        "translator",
        "transmit",
        "closed",
        "core",
    )

    def __init__(self, entry: GatewayEntry, addr: Address, now: int, flood_datagrams: int) -> None:
        self.entry = entry
        self.gateway_id = entry.gateway_id
        self.eui = entry.eui
        self.last_seen_ns = now
        self.host = addr[0]
        self.up_addr: Address | None = None
        self.down_addr: Address | None = None
        self.down_seen_ns = 0
        # Last PULL_DATA (always from `down_addr`): what keeps the path held against takeover when blocking.
        self.last_pull_ns = 0
        self.version = 2
        self.registered = entry.registered
        # Source address -> ring of the last `flood_datagrams` accept times, its write index in the extra last slot.
        self._flood: dict[Address, list[int]] | None = {} if flood_datagrams > 0 else None
        self._flood_size = flood_datagrams
        self.has_jit_queue = False
        # Tokens of PULL_RESP we sent; the forwarder echoes them in TX_ACK. Starts at a fixed non-zero value so a
        # stray TX_ACK with token 0 (protocol v1 zeroes tokens) is never mistaken for ours.
        self.next_pull_resp_token = 1
        # The connection's uplink translator, built at its first uplink (status-only gateways never need one).
        self.translator: Any = None
        # How datagrams reach this gateway: the send function of the listener it talks to.
        self.transmit: Callable[[bytes, Address], None] | None = None
        self.closed = False
        # The gateway's frontend-neutral connection (`gatewayserver.core.connection.Connection`): identity, plans,
        # scheduler, clock, counters. Set by the UDP handler when the connection is made.
        self.core: CoreConnection | None = None

    def flood_check(self, addr: Address, now: int, window_ns: int) -> bool:
        """True when this datagram may pass: the N-th previous one from the same source address is older than the
        window. Each source address of the EUI has its own budget (see the module docstring for why)."""
        rings = self._flood
        if rings is None:
            return True
        ring = rings.get(addr)
        size = self._flood_size
        if ring is None:
            if len(rings) >= MAX_FLOOD_SOURCES:
                del rings[next(iter(rings))]
            ring = rings[addr] = [_NEVER] * size + [0]
        index = ring[size]
        if now - ring[index] < window_ns:
            return False
        ring[index] = now
        ring[size] = index + 1 if index + 1 < size else 0
        return True

    def flood_sources(self) -> int:
        """How many source addresses hold a flood budget (bounded by `MAX_FLOOD_SOURCES`)."""
        return len(self._flood) if self._flood is not None else 0

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
    # An unregistered connection removed to make room for this one (least recently active first).
    evicted: Connection | None = None


@dataclass(slots=True)
class RegistryChanges:
    """What a registry reload did to live connections."""

    removed: list[tuple[Connection, str]] = field(default_factory=list)  # (connection, disconnect reason)
    changed: list[tuple[Connection, GatewayEntry]] = field(default_factory=list)  # (connection, its old entry)


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
        # Unregistered connections, least recently active first: who makes room when the table is full.
        self._unregistered: OrderedDict[bytes, Connection] = OrderedDict()
        # Source host -> [start of its current one-second window, new unregistered gateways in it], oldest first.
        self._new_by_source: OrderedDict[Any, list[int]] = OrderedDict()

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
        evicted: Connection | None = None
        new_connection = False
        block_ns = settings.address_change_block_ns
        entry: GatewayEntry | None = None
        if conn is None or conn.host != addr[0]:
            entry = self.registry.lookup(eui)
            if entry is not None and not entry.registered and not self._admit_from(addr[0], now):
                return Rejected(
                    "source_limit",
                    f"{addr[0]} brought more than {settings.new_gateways_per_source} new unregistered gateways "
                    f"this second; EUI {eui.hex().upper()} refused",
                    eui,
                )
        if conn is not None and conn.host != addr[0]:
            if block_ns and now - conn.last_seen_ns < block_ns:
                return Rejected("address_changed", f"EUI {eui.hex().upper()} moved to {addr[0]} while blocked", eui)
            replaced = conn
            self._remove(conn)
            conn = None
        if conn is None:
            if entry is None:
                return Rejected("unregistered", f"EUI {eui.hex().upper()} is not registered", eui)
            if len(self._by_eui) >= settings.max_connections:
                if self._unregistered:
                    evicted = self._unregistered.popitem(last=False)[1]
                    self._remove(evicted)
                elif not entry.registered:
                    return Rejected(
                        "connection_limit",
                        f"{len(self._by_eui)} registered gateways connected; "
                        f"unregistered EUI {eui.hex().upper()} refused",
                        eui,
                    )
            existing = self._by_id.get(entry.gateway_id)
            if existing is not None:  # same gateway id under another EUI (registry edited): one connection only
                replaced = replaced or existing
                self._remove(existing)
            conn = Connection(entry, addr, now, settings.flood_datagrams)
            self._by_eui[eui] = conn
            self._by_id[entry.gateway_id] = conn
            if not entry.registered:
                self._unregistered[eui] = conn
            new_connection = True
            conn.flood_check(addr, now, settings.flood_window_ns)
        else:
            if (
                block_ns
                and datagram.type == PULL_DATA
                and conn.down_addr is not None
                and addr != conn.down_addr
                and now - conn.last_pull_ns < block_ns
            ):
                # The downlink path is alive: a PULL_DATA from elsewhere must not take it over (see module doc).
                return Rejected(
                    "address_changed", f"EUI {eui.hex().upper()} PULL_DATA from {addr[0]}:{addr[1]} while the downlink "
                    f"path {conn.down_addr[0]}:{conn.down_addr[1]} is live and changes are blocked", eui,
                )
            if not conn.flood_check(addr, now, settings.flood_window_ns):
                return Rejected(
                    "flood", f"EUI {eui.hex().upper()} from {addr[0]}:{addr[1]} exceeds {settings.flood_datagrams} "
                    "datagrams per window", eui,
                )
            if not conn.registered:
                self._unregistered.move_to_end(eui)
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
            conn.last_pull_ns = now
            ack = encode_ack(datagram.version, datagram.token, PULL_ACK)
        elif kind == TX_ACK:
            # Some vendor forwarders send TX_ACK from the up socket; it proves the gateway is alive, but only a
            # PULL_DATA defines where downlinks go.
            if conn.down_addr is not None:
                conn.down_seen_ns = now
            conn.has_jit_queue = True
        if new_connection:
            self._arm(conn, now + settings.connection_expires_ns)
        return Accepted(datagram, conn, ack, new_connection, replaced, evicted)

    def _admit_from(self, host: Any, now: int) -> bool:
        """Count one new unregistered gateway from `host`; False once the host used up this second's budget."""
        limit = self.settings.new_gateways_per_source
        if not limit:
            return True
        sources = self._new_by_source
        window = sources.get(host)
        if window is None or now - window[0] >= _SOURCE_WINDOW_NS:
            sources[host] = [now, 1]
            sources.move_to_end(host)
            while len(sources) > _MAX_SOURCES:  # forgetting a host only gives it a fresh budget
                sources.popitem(last=False)
            return True
        if window[1] >= limit:
            return False
        window[1] += 1
        return True

    def _arm(self, conn: Connection, deadline: int) -> None:
        self._expiry_seq += 1
        heap = self._expiry
        heapq.heappush(heap, (deadline, self._expiry_seq, conn))
        # Removed connections stay in the heap until their deadline; with evictions or replacements churning the
        # table that could be many more than are live. Rebuild from the live ones when they are under half.
        if len(heap) > 2 * len(self._by_eui) + 64:
            live = [item for item in heap if not item[2].closed]
            heapq.heapify(live)
            self._expiry = live

    def remove(self, conn: Connection) -> None:
        """Forget a connection the core ended for another reason (another frontend took the gateway over)."""
        self._remove(conn)

    def _remove(self, conn: Connection) -> None:
        conn.closed = True
        if self._by_eui.get(conn.eui) is conn:
            del self._by_eui[conn.eui]
        if self._by_id.get(conn.gateway_id) is conn:
            del self._by_id[conn.gateway_id]
        if self._unregistered.get(conn.eui) is conn:
            del self._unregistered[conn.eui]

    def expiry_entries(self) -> int:
        """Entries in the expiry heap, live or not: bounded by about twice the live connections."""
        return len(self._expiry)

    def unregistered_count(self) -> int:
        return len(self._unregistered)

    def apply_registry(self) -> RegistryChanges:
        """Bring live connections in line with a reloaded registry.

        A gateway the registry no longer admits (registration required and its EUI gone) is removed; one whose
        entry changed gets the new entry, id included, and moves into or out of the evictable set. A gateway id
        now claimed by two live connections keeps the registered one.
        """
        changes = RegistryChanges()
        ids_changed = False
        registry = self.registry
        # One pass over the registry, then a dict look-up per connection: with 100,000 unregistered connections,
        # generating and comparing an entry for each (registry.lookup) held the loop for most of a second.
        registered = {entry.eui: entry for entry in registry.entries()}
        for conn in list(self._by_eui.values()):
            entry = registered.get(conn.eui)
            if entry is None:
                if registry.require_registered:
                    self._remove(conn)
                    changes.removed.append((conn, "unregistered"))
                    continue
                if not conn.registered:  # still unregistered: its generated entry cannot have changed
                    continue
                entry = registry.lookup(conn.eui)
                assert entry is not None  # registration is not required, so unknown EUIs get a generated entry
            if entry == conn.entry:
                continue
            old = conn.entry
            conn.entry = entry
            conn.registered = entry.registered
            if entry.gateway_id != conn.gateway_id:
                conn.gateway_id = entry.gateway_id
                ids_changed = True
            if entry.registered:
                self._unregistered.pop(conn.eui, None)
            elif conn.eui not in self._unregistered:
                self._unregistered[conn.eui] = conn
            changes.changed.append((conn, old))
        if ids_changed:
            by_id: dict[str, Connection] = {}
            for conn in sorted(self._by_eui.values(), key=lambda c: not c.registered):
                if conn.gateway_id in by_id:
                    self._remove(conn)
                    changes.removed.append((conn, "replaced"))
                else:
                    by_id[conn.gateway_id] = conn
            self._by_id = by_id
        return changes

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
        self._unregistered.clear()
        return conns

    def on_each(self, func: Callable[[Connection], None]) -> None:
        for conn in list(self._by_eui.values()):
            func(conn)
