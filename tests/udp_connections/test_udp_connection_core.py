"""The sans-I/O connection table, driven by `now`: room, eviction, flood budgets, downlink path hold, reloads."""

from __future__ import annotations

from pathlib import Path

from gatewayserver.io.udp.connection import (
    MAX_FLOOD_SOURCES,
    Accepted,
    ConnectionSettings,
    Rejected,
    UdpConnections,
)
from gatewayserver.registry import GatewayEntry, GatewayRegistry

MS = 1_000_000
S = 1_000_000_000
T0 = 1_800_000_000 * S

GATEWAY = ("127.0.0.1", 40_000)
GATEWAY_DOWN = ("127.0.0.1", 40_001)
OTHER_PORT = ("127.0.0.1", 50_000)


def _datagram(kind: int, eui: bytes, token: int = 1) -> bytes:
    return bytes([2]) + token.to_bytes(2, "big") + bytes([kind]) + eui


def push(eui: bytes, token: int = 1) -> bytes:
    return _datagram(0, eui, token) + b'{"stat":{}}'


def pull(eui: bytes, token: int = 1) -> bytes:
    return _datagram(2, eui, token)


def tx_ack(eui: bytes, token: int = 1) -> bytes:
    return _datagram(5, eui, token)


def eui_of(n: int) -> bytes:
    return (0xBAD0000000000000 + n).to_bytes(8, "big")


REGISTERED = bytes.fromhex("0102030405060708")


def registry(*euis: bytes, require_registered: bool = False) -> GatewayRegistry:
    entries = [GatewayEntry(f"gw-{e.hex()}", e, ("EU_863_870",)) for e in euis]
    return GatewayRegistry(entries, require_registered=require_registered)


def accepted(result: Accepted | Rejected) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


def rejected(result: Accepted | Rejected, reason: str) -> Rejected:
    assert isinstance(result, Rejected), result
    assert result.reason == reason, result
    return result


# --- room: registered gateways are never refused, unregistered ones are evicted least recently active first ------


def test_registered_gateway_evicts_the_least_recently_active_unregistered_one() -> None:
    table = UdpConnections(registry(REGISTERED), ConnectionSettings(max_connections=3))
    for n in range(3):
        accepted(table.accept(pull(eui_of(n)), ("10.0.0.1", 1000 + n), T0 + n * S))
    # eui 0 is heard again, so eui 1 is now the least recently active.
    accepted(table.accept(pull(eui_of(0)), ("10.0.0.1", 1000), T0 + 10 * S))
    result = accepted(table.accept(pull(REGISTERED), GATEWAY, T0 + 11 * S))
    assert result.new_connection and result.evicted is not None
    assert result.evicted.eui == eui_of(1) and result.evicted.closed
    assert len(table) == 3 and table.get("gw-" + REGISTERED.hex()) is result.connection
    assert table.get("eui-" + eui_of(1).hex()) is None


def test_unregistered_newcomer_evicts_too_so_a_stale_table_cannot_lock_gateways_out() -> None:
    table = UdpConnections(registry(), ConnectionSettings(max_connections=2))
    accepted(table.accept(pull(eui_of(0)), GATEWAY, T0))
    accepted(table.accept(pull(eui_of(1)), GATEWAY, T0 + S))
    result = accepted(table.accept(pull(eui_of(2)), GATEWAY, T0 + 2 * S))
    assert result.evicted is not None and result.evicted.eui == eui_of(0)
    assert len(table) == 2 and table.unregistered_count() == 2


def test_table_full_of_registered_gateways_refuses_unregistered_but_admits_registered() -> None:
    euis = [bytes([1, 0, 0, 0, 0, 0, 0, n]) for n in range(4)]
    table = UdpConnections(registry(*euis), ConnectionSettings(max_connections=2))
    for n in range(2):
        accepted(table.accept(pull(euis[n]), GATEWAY, T0))
    rejected(table.accept(pull(eui_of(0)), GATEWAY, T0), "connection_limit")
    # Registered gateways beyond the bound are still admitted: the registry bounds them, not the table.
    for n in range(2, 4):
        result = accepted(table.accept(pull(euis[n]), GATEWAY, T0))
        assert result.new_connection and result.evicted is None
    assert len(table) == 4 and table.unregistered_count() == 0


def test_a_flood_of_new_euis_never_grows_the_table_or_its_expiry_heap() -> None:
    bound = 50
    table = UdpConnections(registry(REGISTERED), ConnectionSettings(max_connections=bound))
    evicted = 0
    for n in range(20_000):
        # From many (spoofed) hosts: one host alone would meet the per-source budget for new gateways first.
        host = f"198.18.{n // 256 % 256}.{n % 256}"
        result = accepted(table.accept(pull(eui_of(n)), (host, 5000), T0 + n * MS))
        evicted += result.evicted is not None
    assert evicted == 20_000 - bound
    assert len(table) == bound
    # Removed connections wait in the expiry heap until their deadline unless the heap is compacted.
    assert table.expiry_entries() <= 2 * bound + 64 + 1
    accepted(table.accept(pull(REGISTERED), GATEWAY, T0 + 30 * S))
    assert table.get("gw-" + REGISTERED.hex()) is not None
    # Expiry still finds every live connection after the compactions.
    expired = table.expire(T0 + 30 * S + ConnectionSettings().connection_expires_ns)
    assert len(expired) == bound and len(table) == 0 and table.next_deadline() is None


# --- flood guard: each source address of an EUI has its own budget ------------------------------------------------


def test_a_flood_from_another_address_does_not_use_up_the_gateways_own_budget() -> None:
    settings = ConnectionSettings(flood_datagrams=10, flood_window_ns=10 * MS)
    table = UdpConnections(registry(REGISTERED), settings)
    accepted(table.accept(pull(REGISTERED), GATEWAY_DOWN, T0))
    now = T0 + S
    victim_passed = flood_refused = 0
    for step in range(3_000):  # 3,000 spoofed datagrams per second for a second, one per 0.33 ms
        now += 333_333
        result = table.accept(pull(REGISTERED), OTHER_PORT, now)
        flood_refused += isinstance(result, Rejected) and result.reason == "flood"
        if step % 10 == 0:  # the gateway's own uplinks, 300 per second
            victim_passed += isinstance(table.accept(push(REGISTERED), GATEWAY, now), Accepted)
    assert victim_passed == 300
    assert flood_refused > 1_500  # the flooding address is held to its own budget


def test_a_flooding_forwarder_is_still_limited_on_its_own_socket() -> None:
    table = UdpConnections(registry(), ConnectionSettings(flood_datagrams=10, flood_window_ns=10 * MS))
    results = [table.accept(push(eui_of(1)), GATEWAY, T0 + n * 100_000) for n in range(30)]  # 30 in 3 ms
    assert sum(isinstance(r, Accepted) for r in results) == 10
    assert all(r.reason == "flood" for r in results if isinstance(r, Rejected))
    assert isinstance(table.accept(push(eui_of(1)), GATEWAY, T0 + 11 * MS), Accepted)  # the window moved on


def test_flood_state_per_eui_is_bounded_however_many_addresses_send() -> None:
    table = UdpConnections(registry(), ConnectionSettings(flood_datagrams=10, flood_window_ns=10 * MS))
    for port in range(1_000):
        table.accept(push(eui_of(1)), ("127.0.0.1", 20_000 + port), T0 + port)
    conn = table.get("eui-" + eui_of(1).hex())
    assert conn is not None and conn.flood_sources() == MAX_FLOOD_SOURCES


# --- the downlink path is held while kept alive, when address changes are blocked ---------------------------------


def test_pull_data_from_another_port_cannot_take_a_live_downlink_path_when_blocked() -> None:
    settings = ConnectionSettings(address_change_block_ns=30 * S)
    table = UdpConnections(registry(REGISTERED), settings)
    conn = accepted(table.accept(pull(REGISTERED), GATEWAY_DOWN, T0)).connection
    rejected(table.accept(pull(REGISTERED, 7), OTHER_PORT, T0 + S), "address_changed")
    assert conn.downlink_path(T0 + S, settings.downlink_path_expires_ns) == GATEWAY_DOWN
    # Keep-alives every 10 s hold the path; a TX_ACK or PUSH_DATA from elsewhere does not move or hold it.
    for n in range(1, 6):
        accepted(table.accept(pull(REGISTERED), GATEWAY_DOWN, T0 + n * 10 * S))
        accepted(table.accept(tx_ack(REGISTERED), OTHER_PORT, T0 + n * 10 * S + S))
        accepted(table.accept(push(REGISTERED), OTHER_PORT, T0 + n * 10 * S + S))
        rejected(table.accept(pull(REGISTERED), OTHER_PORT, T0 + n * 10 * S + 9 * S), "address_changed")
    assert conn.down_addr == GATEWAY_DOWN


def test_after_nat_rebinding_the_new_port_takes_over_once_the_old_path_fell_silent_for_the_block() -> None:
    settings = ConnectionSettings(address_change_block_ns=30 * S)
    table = UdpConnections(registry(REGISTERED), settings)
    conn = accepted(table.accept(pull(REGISTERED), GATEWAY_DOWN, T0)).connection
    rebound = ("127.0.0.1", 41_001)
    # The forwarder's keep-alives now come from the new port: refused while the old path is within the block.
    for n in range(1, 3):
        rejected(table.accept(pull(REGISTERED), rebound, T0 + n * 10 * S), "address_changed")
    result = accepted(table.accept(pull(REGISTERED), rebound, T0 + 30 * S))
    assert result.ack is not None and not result.new_connection and result.connection is conn
    assert conn.down_addr == rebound


def test_without_the_block_pull_data_moves_the_path_like_the_reference() -> None:
    table = UdpConnections(registry(REGISTERED), ConnectionSettings())
    conn = accepted(table.accept(pull(REGISTERED), GATEWAY_DOWN, T0)).connection
    accepted(table.accept(pull(REGISTERED), OTHER_PORT, T0 + S))
    assert conn.down_addr == OTHER_PORT


def test_block_still_refuses_another_ip_after_the_path_is_held() -> None:
    table = UdpConnections(registry(REGISTERED), ConnectionSettings(address_change_block_ns=30 * S))
    conn = accepted(table.accept(pull(REGISTERED), GATEWAY_DOWN, T0)).connection
    rejected(table.accept(pull(REGISTERED), ("127.0.0.9", 40_001), T0 + S), "address_changed")
    assert table.get(conn.gateway_id) is conn and not conn.closed


# --- registry reloads apply to live connections ---------------------------------------------------------------------


def _registry_file(path: Path, entries: list[tuple[bytes, str, str]]) -> Path:
    lines = ["gateways:" if entries else "gateways: []"]
    for eui, gateway_id, plan in entries:
        lines += [f"  - eui: '{eui.hex()}'", f"    gateway_id: {gateway_id}", f"    frequency_plan_id: {plan}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reload_removes_gateways_no_longer_admitted_and_updates_the_rest(tmp_path: Path) -> None:
    a, b, c = (bytes([0xA0, 0, 0, 0, 0, 0, 0, n]) for n in range(3))
    path = _registry_file(tmp_path / "gw.yml", [(a, "gw-a", "EU_863_870"), (b, "gw-b", "EU_863_870")])
    reg = GatewayRegistry.from_file(path, require_registered=True)
    table = UdpConnections(reg)
    conn_a = accepted(table.accept(pull(a), GATEWAY, T0)).connection
    conn_b = accepted(table.accept(pull(b), GATEWAY, T0)).connection
    rejected(table.accept(pull(c), GATEWAY, T0), "unregistered")

    _registry_file(path, [(b, "gw-b-renamed", "EU_863_870_TTN"), (c, "gw-c", "EU_863_870")])
    reg.reload()
    changes = table.apply_registry()
    assert changes.removed == [(conn_a, "unregistered")] and conn_a.closed
    assert [(conn, old.gateway_id) for conn, old in changes.changed] == [(conn_b, "gw-b")]
    assert conn_b.gateway_id == "gw-b-renamed" and conn_b.entry.frequency_plan_ids == ("EU_863_870_TTN",)
    assert table.get("gw-b-renamed") is conn_b and table.get("gw-b") is None and table.get("gw-a") is None
    rejected(table.accept(push(a), GATEWAY, T0 + S), "unregistered")
    accepted(table.accept(pull(c), GATEWAY, T0 + S))
    # Nothing changed: nothing to do.
    assert table.apply_registry().removed == [] and table.apply_registry().changed == []


def test_reload_moves_gateways_in_and_out_of_the_evictable_set(tmp_path: Path) -> None:
    a = bytes([0xA0, 0, 0, 0, 0, 0, 0, 1])
    path = _registry_file(tmp_path / "gw.yml", [])
    reg = GatewayRegistry.from_file(path)
    table = UdpConnections(reg, ConnectionSettings(max_connections=2))
    conn = accepted(table.accept(pull(a), GATEWAY, T0)).connection
    assert table.unregistered_count() == 1 and conn.gateway_id == "eui-" + a.hex()

    _registry_file(path, [(a, "gw-a", "EU_863_870")])
    reg.reload()
    table.apply_registry()
    assert conn.registered and conn.gateway_id == "gw-a" and table.unregistered_count() == 0
    # Registered now: newcomers cannot evict it.
    for n in range(5):
        result = accepted(table.accept(pull(eui_of(n)), GATEWAY, T0 + n * S))
        assert result.evicted is None or result.evicted is not conn
    assert table.get("gw-a") is conn

    _registry_file(path, [])
    reg.reload()
    table.apply_registry()  # registration not required: it stays, as an unregistered (evictable) gateway
    assert not conn.registered and conn.gateway_id == "eui-" + a.hex() and table.get(conn.gateway_id) is conn
    assert table.unregistered_count() == 2


def test_reload_swapping_ids_keeps_both_and_a_claimed_generated_id_goes_to_the_registered_gateway(
    tmp_path: Path,
) -> None:
    a, b, stranger = (bytes([0xA0, 0, 0, 0, 0, 0, 0, n]) for n in range(3))
    path = _registry_file(tmp_path / "gw.yml", [(a, "gw-a", "EU_863_870"), (b, "gw-b", "EU_863_870")])
    reg = GatewayRegistry.from_file(path)
    table = UdpConnections(reg)
    conn_a = accepted(table.accept(pull(a), GATEWAY, T0)).connection
    conn_b = accepted(table.accept(pull(b), GATEWAY, T0)).connection
    conn_s = accepted(table.accept(pull(stranger), GATEWAY, T0)).connection
    # a and b swap ids; b takes the id the unregistered stranger is connected under.
    _registry_file(path, [(a, "gw-b", "EU_863_870"), (b, "eui-" + stranger.hex(), "EU_863_870")])
    reg.reload()
    changes = table.apply_registry()
    assert changes.removed == [(conn_s, "replaced")] and conn_s.closed
    assert table.get("gw-b") is conn_a and table.get("eui-" + stranger.hex()) is conn_b
    assert table.get("gw-a") is None and len(table) == 2 and table.unregistered_count() == 0


def test_one_source_may_bring_only_so_many_new_unregistered_gateways_per_second() -> None:
    table = UdpConnections(registry(REGISTERED), ConnectionSettings(new_gateways_per_source=3))
    for n in range(3):
        accepted(table.accept(pull(eui_of(n)), GATEWAY, T0 + n))
    rejected(table.accept(pull(eui_of(3)), GATEWAY, T0 + 10), "source_limit")
    # Another host has its own budget, registered gateways are never counted, known gateways keep talking.
    accepted(table.accept(pull(eui_of(4)), ("192.0.2.9", 1700), T0 + 11))
    accepted(table.accept(pull(REGISTERED), GATEWAY, T0 + 12))
    accepted(table.accept(push(eui_of(0)), GATEWAY, T0 + 13))
    # The next second brings a fresh budget.
    accepted(table.accept(pull(eui_of(3)), GATEWAY, T0 + S))
    assert len(table) == 6


def test_an_unregistered_gateway_moving_to_a_host_over_its_budget_keeps_its_old_connection() -> None:
    table = UdpConnections(registry(), ConnectionSettings(new_gateways_per_source=1))
    accepted(table.accept(pull(eui_of(0)), ("192.0.2.1", 1700), T0))
    accepted(table.accept(pull(eui_of(1)), GATEWAY, T0))
    rejected(table.accept(pull(eui_of(0)), GATEWAY, T0 + 1), "source_limit")
    conn = table.get(f"eui-{eui_of(0).hex()}")
    assert conn is not None and conn.host == "192.0.2.1"


def test_source_budget_zero_means_no_limit() -> None:
    table = UdpConnections(registry(), ConnectionSettings(new_gateways_per_source=0))
    for n in range(500):
        accepted(table.accept(pull(eui_of(n)), GATEWAY, T0 + n))
    assert len(table) == 500
