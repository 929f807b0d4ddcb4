"""Telling the peers which gateways are linked here, and learning which are linked there.

A `GtwGs.LinkGateway` stream is owned by the worker that accepted it, not by `owner_of_eui`: when this worker's
gRPC frontend links or unlinks a gateway, each peer is told over the internal `Links` call (fire-and-forget, short
deadline, failures logged and counted in `gs_worker_forwarded_calls_total{method="Links"}`). Each peer's
announcements are sent in order by one task per peer; the receiver keeps them in a bounded `LinkMap` that
`RoutedGatewayServer` consults before the EUI rule.

A second connection of a gateway on another worker replaces the first, whatever the two protocols, so the rule one
process applies (`GatewayCore.connect`) holds across workers; the older one is disconnected with reason `replaced`:
- a peer's newer link ("+") replaces the connection here, a link or a UDP forwarder;
- a UDP forwarder connecting here (this worker owns its EUI) replaces a peer's older link of the same gateway ID.
  UDP connections are not announced (tens of thousands of gateways, each reconnecting): only when the table says
  a peer holds a link of that gateway is that one peer sent a "u" op; it disconnects its link, and announces the
  end ("-") to everyone as for any link. The announcer observes the core (`GatewayCore.observe`) for this;
- a UDP forwarder renamed here by a registry reload (its EUI now maps to an id linked at a peer) takes that id as
  in one process: the peer is sent a "u" stamped with the time of the rename, so its link goes however new.

Restarts and dead peers: a worker starting sends each peer a *full* list (its own links: none yet, the APIs are
not up) and gets each peer's full list back, so a restarted worker's stale entries are dropped everywhere and it
learns the live links at once. A peer that refuses a forwarded call's connection is dead: its entries are
dropped (`forget_worker`), its streams having died with it. A lost announcement is only logged: the peer it did
not reach is down, and asks for every link when it starts again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson
from gatewayserver.errors import GsError

from . import wire
from .linkmap import MAX_LINKED, LinkMap
from .metrics import LINKS_DROPPED
from .peers import Peers
from .spec import WorkerSpec

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.core.connection import Connection
    from gatewayserver.server import GatewayServer

log = logging.getLogger(__name__)

PROTOCOL = "grpc"
#: Deadline of one announcement: short, a peer that cannot take it in this time is not waited for.
LINKS_DEADLINE = 2.0
#: Announcements waiting for one peer; beyond this the queue is replaced by one full list (still correct).
MAX_PENDING = 10_000

#: ["+", gateway_id, eui hex, connected_at] (linked here), ["-", gateway_id, connected_at] (that link ended), or,
#: to the one peer holding a link of the gateway, ["u", gateway_id, connected_at] (connected here otherwise).
Op = list[Any]


class LinkAnnouncer:
    """This worker's side of the link table: observer of the gRPC frontend and of the core, handler of the `Links`
    call."""

    def __init__(self, spec: WorkerSpec, server: GatewayServer, peers: Peers, cap: int = MAX_LINKED) -> None:
        self.spec = spec
        self.server = server
        self.peers = peers
        self.map = LinkMap(cap)
        self._pending: dict[int, deque[Op]] = {i: deque() for i in peers.others}
        self._resync: dict[int, bool] = {i: False for i in peers.others}
        self._wake: dict[int, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the senders, then exchange full lists with every peer that is up (one that is not will ask us
        when it starts)."""
        for index in self.peers.others:
            self._wake[index] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._sender(index)))
        self.server.core.observe(self)
        await asyncio.gather(*(self._sync(index) for index in self.peers.others))

    async def stop(self) -> None:
        self.server.core.unobserve(self)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _sync(self, index: int) -> None:
        try:
            raw = await self.peers.unary(
                index, wire.LINKS, self._doc(True, self._own_ops(index)), deadline=LINKS_DEADLINE
            )
        except GsError as exc:
            log.info("worker not up yet; it will send its links when it starts",
                     extra={"worker": index, "reason": exc.attributes.get("reason", exc.name)})
            return
        self.apply(raw)

    # --- this worker's links (the gRPC frontend's observer) --------------------------------------------------------

    def linked(self, conn: Connection) -> None:
        self._announce(["+", conn.gateway_id, conn.eui.hex(), conn.connected_at_ns])

    def unlinked(self, conn: Connection) -> None:
        self._announce(["-", conn.gateway_id, conn.connected_at_ns])

    # --- every connection made here (the core's observer) ----------------------------------------------------------

    def connected(self, conn: Connection, now: int) -> None:
        """A connection other than a link (those are announced by `linked`): if a peer announced an older link of
        the same gateway, tell that peer alone that this one replaces it. One dict lookup per connect."""
        if conn.protocol == PROTOCOL:
            return
        found = self.map.find(conn.gateway_id)
        if found is not None and found[1].version < (conn.connected_at_ns, self.spec.index):
            self._queue(found[1].worker, ["u", conn.gateway_id, conn.connected_at_ns])

    def disconnected(self, conn: Connection, reason: str, stats: object) -> None:
        """Nothing to tell: a peer learns of a link's end from `unlinked`, and never hears of other connections."""

    def renamed(self, conn: Connection, previous_gateway_id: str, now: int) -> None:
        """A registry reload gave a connection here another gateway id. In one process the renamed connection
        replaces whatever held that id, however old; across workers the same: a peer holding a link of the new id
        is sent a "u" stamped `now` (newer than any link it announced before this moment), so it ends the link
        whatever its age, and the link's entry is dropped here so that calls for the gateway come here at once
        instead of after the peer's "-"."""
        if conn.protocol == PROTOCOL:  # not made by the frontends (a link keeps the id it authenticated with)
            self._announce(["-", previous_gateway_id, conn.connected_at_ns])
            self.linked(conn)
            return
        found = self.map.find(conn.gateway_id)
        if found is not None:
            self._queue(found[1].worker, ["u", conn.gateway_id, now])
            self.map.unlinked(conn.gateway_id, found[1].worker, found[1].version[0])

    def _announce(self, op: Op) -> None:
        for index in self._pending:
            self._queue(index, op)

    def _queue(self, index: int, op: Op) -> None:
        pending = self._pending.get(index)
        if pending is None or self._resync[index]:
            return  # not a peer; or the full list about to be sent includes this change
        pending.append(op)
        if len(pending) > MAX_PENDING:
            pending.clear()
            self._resync[index] = True
            LINKS_DROPPED.labels("resync").inc()
        wake = self._wake.get(index)
        if wake is not None:
            wake.set()

    def _own_ops(self, index: int) -> list[Op]:
        """The full list for peer `index`: every link here, and a "u" for each other connection here that is newer
        than the link `index` announced of the same gateway (a "u" the overflow dropped is not lost)."""
        ops: list[Op] = []
        for conn in self.server.core.connections():
            if conn.protocol == PROTOCOL:
                ops.append(["+", conn.gateway_id, conn.eui.hex(), conn.connected_at_ns])
                continue
            found = self.map.find(conn.gateway_id)
            if found is not None and found[1].worker == index and found[1].version < (
                conn.connected_at_ns, self.spec.index
            ):
                ops.append(["u", conn.gateway_id, conn.connected_at_ns])
        return ops

    def _doc(self, full: bool, ops: list[Op]) -> bytes:
        return orjson.dumps({"worker": self.spec.index, "full": full, "ops": ops})

    async def _sender(self, index: int) -> None:
        """One peer's announcements, in order, one call per batch of whatever queued meanwhile."""
        wake, pending = self._wake[index], self._pending[index]
        while True:
            await wake.wait()
            wake.clear()
            while pending or self._resync[index]:
                if self._resync[index]:
                    self._resync[index] = False
                    pending.clear()
                    doc = self._doc(True, self._own_ops(index))
                else:
                    ops = list(pending)
                    pending.clear()
                    doc = self._doc(False, ops)
                try:
                    # Waiting for the channel: a peer that just restarted may still be in this channel's backoff.
                    await self.peers.unary(index, wire.LINKS, doc, deadline=LINKS_DEADLINE, wait_for_ready=True)
                except GsError as exc:
                    reason = str(exc.attributes.get("reason", exc.name))
                    if exc.name == "worker_unavailable":  # down: it asks for every link when it starts again
                        log.info("worker not answering; it learns the gateway links when it starts",
                                 extra={"worker": index, "reason": reason})
                    else:
                        log.warning("worker refused a gateway link announcement",
                                    extra={"worker": index, "reason": reason})

    # --- the peers' links ------------------------------------------------------------------------------------------

    def worker_of(self, gateway_id: str, eui: bytes = b"") -> int | None:
        """The worker holding the gateway's link: this one if linked here, a peer if one announced it, unless a
        connection here is newer (that peer was told to disconnect its link, and announces the end soon)."""
        conn = self.server.core.get(gateway_id) if gateway_id else None
        if conn is not None and conn.protocol == PROTOCOL:
            return self.spec.index
        found = self.map.find(gateway_id, eui)
        if found is None:
            return None
        gateway_id, entry = found
        conn = self.server.core.get(gateway_id)
        if conn is not None and (conn.connected_at_ns, self.spec.index) > entry.version:
            return self.spec.index
        return entry.worker

    def peer_dead(self, index: int) -> None:
        """A peer refused the connection: its process is gone, and its links with it."""
        if self.map.forget_worker(index):
            log.info("worker not answering: calls for the gateways linked there go by EUI", extra={"worker": index})

    def apply(self, raw: bytes) -> bytes:
        """A peer's announcement (or, at our start, its reply): applied in order. A full list replaces every entry
        of that peer. Returns this worker's own full list when asked with a full list (the peer just started)."""
        if not raw:
            return b""
        try:
            doc = orjson.loads(raw)
            worker = int(doc["worker"])
            full = bool(doc.get("full"))
            ops = list(doc["ops"])[:MAX_LINKED]
            if not 0 <= worker < self.spec.count or worker == self.spec.index:
                raise ValueError(f"worker {worker}")
        except (ValueError, KeyError, TypeError) as exc:
            LINKS_DROPPED.labels("invalid").inc()
            log.warning("malformed link announcement from a worker ignored", extra={"reason": str(exc)[:200]})
            return b""
        if full:
            self.map.forget_worker(worker)
        before = self.map.evicted
        for op in ops:
            try:
                if op[0] == "+":
                    self._peer_linked(str(op[1]), bytes.fromhex(str(op[2])), worker, int(op[3]))
                elif op[0] == "-":
                    self.map.unlinked(str(op[1]), worker, int(op[2]))
                elif op[0] == "u":
                    self._peer_connected(str(op[1]), worker, int(op[2]))
                else:
                    raise ValueError(str(op[0])[:20])
            except (ValueError, IndexError, TypeError):
                LINKS_DROPPED.labels("invalid").inc()
        if self.map.evicted > before:
            LINKS_DROPPED.labels("evicted").inc(self.map.evicted - before)
        return self._doc(True, self._own_ops(worker)) if full else b""

    def _peer_linked(self, gateway_id: str, eui: bytes, worker: int, connected_at: int) -> None:
        local = self.server.core.get(gateway_id)
        if local is not None:
            if (local.connected_at_ns, self.spec.index) > (connected_at, worker):
                if local.protocol == PROTOCOL:
                    return  # ours is the newer link: the peer disconnects its own when it hears of ours
                # Ours (a UDP forwarder, say) is newer but was never announced (the link crossed its connect):
                # remember the link, so routing and a full list compare against it, and tell its worker.
                if self.map.linked(gateway_id, eui, worker, connected_at):
                    self._queue(worker, ["u", gateway_id, local.connected_at_ns])
                return
            log.info("gateway linked at another worker, replacing the connection here",
                     extra={"gateway_id": gateway_id, "worker": worker, "protocol": local.protocol})
            self.server.core.disconnect(local, self.server.clock(), "replaced")
        self.map.linked(gateway_id, eui, worker, connected_at)

    def _peer_connected(self, gateway_id: str, worker: int, connected_at: int) -> None:
        """`worker` connected the gateway otherwise than by a link, after a link of it we announced: ours goes,
        unless it is the newer one (then that worker disconnects its own when it hears of ours)."""
        local = self.server.core.get(gateway_id)
        if local is None or (local.connected_at_ns, self.spec.index) > (connected_at, worker):
            return
        log.info("gateway connected at another worker, replacing the connection here",
                 extra={"gateway_id": gateway_id, "worker": worker, "protocol": local.protocol})
        self.server.core.disconnect(local, self.server.clock(), "replaced")


__all__ = ["LINKS_DEADLINE", "LinkAnnouncer"]
