"""The table of gateways linked at peers (`linkmap.LinkMap`) and how announcements change it (`links.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gatewayserver.workers.linkmap import LinkMap
from gatewayserver.workers.links import LinkAnnouncer
from gatewayserver.workers.metrics import LINKS_DROPPED
from gatewayserver.workers.routing import RoutedGatewayServer
from gatewayserver.workers.spec import WorkerSpec, owner_of_eui

EUI = bytes.fromhex("0016c00100000003")  # owner 0 of 3


def test_newest_link_wins_whatever_order_announcements_arrive_in() -> None:
    table = LinkMap()
    assert table.linked("gw", EUI, 1, 100)
    assert not table.linked("gw", EUI, 2, 50)  # an older link elsewhere, announced late
    assert table.worker_of("gw") == 1 and table.worker_of("", EUI) == 1
    assert not table.unlinked("gw", 2, 50)  # the end of that older link changes nothing
    assert table.linked("gw", EUI, 2, 200)
    assert not table.unlinked("gw", 1, 100)  # worker 1's link, replaced, ends later
    assert table.worker_of("gw") == 2
    assert table.unlinked("gw", 2, 200)
    assert table.worker_of("gw") is None and table.worker_of("", EUI) is None


def test_bounded_oldest_dropped_and_counted() -> None:
    table = LinkMap(cap=3)
    for n in range(5):
        table.linked(f"gw-{n}", bytes([0, 0, 0, 0, 0, 0, 0, n]), 1, n)
    assert len(table) == 3 and table.evicted == 2
    assert table.worker_of("gw-0") is None and table.worker_of("gw-4") == 1
    assert table.worker_of("", bytes([0, 0, 0, 0, 0, 0, 0, 0])) is None


def test_forget_worker_drops_only_its_entries() -> None:
    table = LinkMap()
    table.linked("a", b"", 1, 1)
    table.linked("b", b"", 2, 1)
    assert table.forget_worker(1) == 1
    assert table.worker_of("a") is None and table.worker_of("b") == 2


@dataclass
class Conn:
    gateway_id: str
    eui: bytes
    connected_at_ns: int
    protocol: str = "grpc"
    closed: bool = False


@dataclass
class Core:
    conns: dict[str, Conn] = field(default_factory=dict)
    disconnected: list[tuple[str, str]] = field(default_factory=list)
    observers: list[Any] = field(default_factory=list)

    def get(self, gateway_id: str) -> Conn | None:
        return self.conns.get(gateway_id)

    def connections(self) -> list[Conn]:
        return list(self.conns.values())

    def disconnect(self, conn: Conn, now: int, reason: str) -> None:
        del self.conns[conn.gateway_id]
        self.disconnected.append((conn.gateway_id, reason))

    def observe(self, observer: Any) -> None:
        self.observers.append(observer)

    def unobserve(self, observer: Any) -> None:
        self.observers.remove(observer)


class Server:
    def __init__(self) -> None:
        self.core = Core()

    def clock(self) -> int:
        return 0

    def gateway_eui(self, gateway_id: str) -> bytes | None:
        return EUI if gateway_id.startswith("gw") else None


class Peers:
    others = [0, 2]


def announcer(index: int = 1) -> tuple[LinkAnnouncer, Server]:
    server = Server()
    links = LinkAnnouncer(WorkerSpec(index, 3, "/nonexistent", "00"), server, Peers())  # type: ignore[arg-type]
    return links, server


def doc(worker: int, ops: list[Any], full: bool = False) -> bytes:
    return orjson.dumps({"worker": worker, "full": full, "ops": ops})


def test_routing_asks_the_link_table_before_the_eui_rule() -> None:
    links, server = announcer(1)
    routed = RoutedGatewayServer(server, links.spec, Peers(), links)  # type: ignore[arg-type]
    assert routed.owner_of_gateway("gw-a") == owner_of_eui(EUI, 3) == 0
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 10]]))
    assert routed.owner_of_gateway("gw-a") == 2 and routed.owner_of_gateway("", EUI) == 2
    server.core.conns["gw-b"] = Conn("gw-b", EUI, 5)
    assert routed.owner_of_gateway("gw-b") == 1  # linked here
    links.apply(doc(2, [["-", "gw-a", 10]]))
    assert routed.owner_of_gateway("gw-a") == 0


def test_a_newer_link_elsewhere_disconnects_ours_an_older_one_does_not() -> None:
    links, server = announcer(1)
    server.core.conns["gw-a"] = Conn("gw-a", EUI, 100)
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 50]]))  # older: ours stays, and routing keeps it here
    assert server.core.disconnected == [] and links.worker_of("gw-a") == 1
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 150]]))
    assert server.core.disconnected == [("gw-a", "replaced")] and links.worker_of("gw-a") == 2


def test_a_full_list_replaces_the_peers_entries_and_is_answered_with_ours() -> None:
    links, server = announcer(1)
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 10], ["+", "gw-b", "", 10]]))
    links.apply(doc(0, [["+", "gw-c", "", 10]]))
    server.core.conns["gw-mine"] = Conn("gw-mine", EUI, 7)
    reply = orjson.loads(links.apply(doc(2, [], full=True)))  # worker 2 restarted: it has no links
    assert reply == {"worker": 1, "full": True, "ops": [["+", "gw-mine", EUI.hex(), 7]]}
    assert links.worker_of("gw-a") is None and links.worker_of("gw-b") is None and links.worker_of("gw-c") == 0
    assert links.apply(doc(0, [["-", "gw-c", 10]])) == b""  # increments get no reply


def test_malformed_announcements_are_counted_and_change_nothing() -> None:
    links, _ = announcer(1)
    before = LINKS_DROPPED.labels("invalid")._value.get()
    for raw in (b"not json", doc(1, []), doc(7, []), orjson.dumps({"worker": 0})):
        assert links.apply(raw) == b""
    links.apply(doc(0, [["?", "x"], ["+", "gw-a"], ["+", "gw-b", "zz", 1], ["+", "gw-c", "", 1]]))
    assert LINKS_DROPPED.labels("invalid")._value.get() - before == 7
    assert links.worker_of("gw-c") == 0 and len(links.map) == 1


def test_peer_found_dead_loses_its_links() -> None:
    links, _ = announcer(1)
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 10]]))
    links.peer_dead(2)
    assert links.worker_of("gw-a") is None


class RecordingPeers:
    """Peers that take every call (or refuse it, as a dead worker does) and record what was sent."""

    others = [0, 2]

    def __init__(self, refuse: int | None = None) -> None:
        self.sent: list[tuple[int, dict[str, Any]]] = []
        self.refuse = refuse

    async def unary(self, index: int, method: str, request: bytes, **kw: Any) -> bytes:
        from gatewayserver.workers import wire

        assert method == wire.LINKS
        if index == self.refuse:
            raise wire.err_worker_unavailable(index, "UNAVAILABLE: failed to connect")
        self.sent.append((index, orjson.loads(request)))
        return orjson.dumps({"worker": index, "full": True, "ops": []})


async def test_announcements_reach_every_peer_in_order_and_an_overflow_becomes_a_full_list() -> None:
    import asyncio

    import gatewayserver.workers.links as links_module

    server = Server()
    peers = RecordingPeers(refuse=2)
    links = LinkAnnouncer(WorkerSpec(1, 3, "/nonexistent", "00"), server, peers)  # type: ignore[arg-type]
    links.apply(doc(2, [["+", "gw-z", EUI.hex(), 1]]))
    await links.start()  # full lists exchanged with the peers that are up
    assert peers.sent == [(0, {"worker": 1, "full": True, "ops": []})]
    first, second = Conn("gw-a", EUI, 10), Conn("gw-a", EUI, 20)
    links.linked(first)
    links.unlinked(first)
    links.linked(second)
    for _ in range(100):
        await asyncio.sleep(0)
    ops = [op for index, sent in peers.sent[1:] if index == 0 for op in sent["ops"]]
    assert ops == [["+", "gw-a", EUI.hex(), 10], ["-", "gw-a", 10], ["+", "gw-a", EUI.hex(), 20]]
    assert links.worker_of("gw-z") == 2  # a lost announcement only logs; a refused forward drops them
    peers.sent.clear()
    before = LINKS_DROPPED.labels("resync")._value.get()
    server.core.conns["gw-a"] = second
    old_max, links_module.MAX_PENDING = links_module.MAX_PENDING, 3
    try:
        for n in range(5):
            links.linked(Conn(f"gw-{n}", EUI, n))  # nothing sent yet: the sender runs once we yield
        for _ in range(100):
            await asyncio.sleep(0)
    finally:
        links_module.MAX_PENDING = old_max
        await links.stop()
    assert LINKS_DROPPED.labels("resync")._value.get() - before >= 1
    assert [(i, d["full"], d["ops"]) for i, d in peers.sent] == [(0, True, [["+", "gw-a", EUI.hex(), 20]])]


# --- a link and a connection of another protocol (UDP) of the same gateway on two workers --------------------------


def pending(links: LinkAnnouncer) -> dict[int, list[Any]]:
    return {index: list(ops) for index, ops in links._pending.items()}


def test_a_newer_link_elsewhere_replaces_a_udp_connection_here() -> None:
    links, server = announcer(1)
    server.core.conns["gw-a"] = Conn("gw-a", EUI, 100, protocol="udp")
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 150]]))
    assert server.core.disconnected == [("gw-a", "replaced")] and links.worker_of("gw-a") == 2
    assert pending(links) == {0: [], 2: []}  # nothing to tell: the link is the survivor


def test_an_older_link_announced_after_a_udp_connect_here_is_told_to_go() -> None:
    """The link's "+" crossed the UDP connect (no "u" could be sent then): the "+" itself makes us tell it."""
    links, server = announcer(1)
    server.core.conns["gw-a"] = Conn("gw-a", EUI, 100, protocol="udp")
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 50]]))
    assert server.core.disconnected == []
    assert pending(links) == {0: [], 2: [["u", "gw-a", 100]]}
    assert links.worker_of("gw-a") == 1 and links.worker_of("", EUI) == 1  # ours is the newer: routed here
    links.apply(doc(2, [["-", "gw-a", 50]]))  # worker 2 disconnected its link
    assert links.map.worker_of("gw-a") is None and links.worker_of("gw-a") is None  # the EUI rule


def test_a_udp_connect_tells_only_the_peer_holding_an_older_link_of_that_gateway() -> None:
    links, server = announcer(1)
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 10], ["+", "gw-new", EUI.hex(), 500]]))
    links.connected(Conn("gw-a", EUI, 20, protocol="udp"), 20)  # type: ignore[arg-type]
    links.connected(Conn("gw-other", EUI, 20, protocol="udp"), 20)  # type: ignore[arg-type]  # no link anywhere
    links.connected(Conn("gw-a", EUI, 30), 30)  # type: ignore[arg-type]  # a link: announced by `linked` instead
    links.connected(Conn("gw-new", EUI, 400, protocol="udp"), 400)  # type: ignore[arg-type]  # the link is newer
    assert pending(links) == {0: [], 2: [["u", "gw-a", 20]]}
    links.disconnected(Conn("gw-a", EUI, 20, protocol="udp"), "expired", None)  # type: ignore[arg-type]
    assert pending(links) == {0: [], 2: [["u", "gw-a", 20]]}


def test_a_u_op_replaces_an_older_connection_here_and_only_an_older_one() -> None:
    links, server = announcer(1)
    server.core.conns["gw-a"] = Conn("gw-a", EUI, 10)
    links.apply(doc(0, [["u", "gw-a", 5]]))  # older than our link: the sender hears of our link and yields
    links.apply(doc(0, [["u", "gw-a", 10]]))  # same time: the worker index decides, (10, 1) > (10, 0)
    links.apply(doc(0, [["u", "gw-unknown", 99]]))
    assert server.core.disconnected == []
    links.apply(doc(2, [["u", "gw-a", 10]]))  # (10, 2) > (10, 1)
    assert server.core.disconnected == [("gw-a", "replaced")]
    assert links.map.worker_of("gw-a") is None  # a "u" names no link: nothing remembered


def test_malformed_u_ops_are_counted_as_invalid_and_the_rest_applied() -> None:
    links, server = announcer(1)
    server.core.conns["gw-a"] = Conn("gw-a", EUI, 10)
    before = LINKS_DROPPED.labels("invalid")._value.get()
    links.apply(doc(2, [["u"], ["u", "gw-a"], ["u", "gw-a", "soon"], ["u", "gw-a", None], ["u", "gw-a", 20]]))
    assert LINKS_DROPPED.labels("invalid")._value.get() - before == 4
    assert server.core.disconnected == [("gw-a", "replaced")]  # the well-formed one after them still applies


def test_a_full_list_repeats_the_u_ops_still_owed_to_that_peer() -> None:
    """An overflow replaces the queue by a full list: a "u" still owed is rebuilt from the table, not lost."""
    links, server = announcer(1)
    links.apply(doc(2, [["+", "gw-a", EUI.hex(), 10], ["+", "gw-b", EUI.hex(), 10]]))
    links.apply(doc(0, [["+", "gw-c", EUI.hex(), 10]]))
    server.core.conns["gw-a"] = Conn("gw-a", EUI, 20, protocol="udp")
    server.core.conns["gw-c"] = Conn("gw-c", EUI, 20, protocol="udp")
    server.core.conns["gw-mine"] = Conn("gw-mine", EUI, 7)
    assert links._own_ops(2) == [["u", "gw-a", 20], ["+", "gw-mine", EUI.hex(), 7]]
    assert links._own_ops(0) == [["u", "gw-c", 20], ["+", "gw-mine", EUI.hex(), 7]]


def test_a_udp_connection_renamed_to_a_linked_id_tells_that_peer_and_routes_here_at_once() -> None:
    """One process lets a renamed connection replace whatever held the id, however new: so do the workers. The
    "u" carries the rename's time (a peer compares it with its link's), not the older connect time."""
    links, server = announcer(1)
    links.apply(doc(2, [["+", "gw-b", EUI.hex(), 500]]))
    conn = Conn("gw-b", EUI, 20, protocol="udp")  # connected as gw-a at 20, renamed gw-b at 900
    server.core.conns["gw-b"] = conn
    links.renamed(conn, "gw-a", 900)  # type: ignore[arg-type]
    assert pending(links) == {0: [], 2: [["u", "gw-b", 900]]}
    # Routed by the EUI rule at once (to the forwarder's worker, this one), not to the link until the peer's "-".
    assert links.worker_of("gw-b") is None and links.map.find("gw-b") is None
    links.apply(doc(2, [["-", "gw-b", 500]]))  # the peer's link ended: nothing left to drop
    assert links.worker_of("gw-b") is None
    links.renamed(Conn("gw-c", EUI, 20, protocol="udp"), "gw-b", 950)  # type: ignore[arg-type]  # not linked
    assert pending(links) == {0: [], 2: [["u", "gw-b", 900]]}


def test_a_peer_ends_its_link_on_a_rename_u_op_however_new_the_link() -> None:
    links, server = announcer(2)
    server.core.conns["gw-b"] = Conn("gw-b", EUI, 500)
    links.apply(doc(1, [["u", "gw-b", 900]]))  # the rename at worker 1 came after our link's connect
    assert server.core.disconnected == [("gw-b", "replaced")]


def test_a_link_renamed_is_announced_as_the_old_ending_and_the_new_starting() -> None:
    links, _ = announcer(1)
    links.renamed(Conn("gw-new", EUI, 30), "gw-old", 40)  # type: ignore[arg-type]
    assert pending(links) == {i: [["-", "gw-old", 30], ["+", "gw-new", EUI.hex(), 30]] for i in (0, 2)}
