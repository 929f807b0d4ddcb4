"""Telling the peers which gateways are linked here, and learning which are linked there.

A `GtwGs.LinkGateway` stream is owned by the worker that accepted it, not by `owner_of_eui`: when this worker's
gRPC frontend links or unlinks a gateway, each peer is told over the internal `Links` call (fire-and-forget, short
deadline, failures logged and counted in `gs_worker_forwarded_calls_total{method="Links"}`). Each peer's
announcements are sent in order by one task per peer; the receiver keeps them in a bounded `LinkMap` that
`RoutedGatewayServer` consults before the EUI rule.

A second link of a gateway on another worker replaces the first: the worker holding the older link disconnects it
(reason `replaced`) when told of the newer one, so the rule one process applies holds across workers.

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

Op = list[Any]  # ["+", gateway_id, eui hex, connected_at] or ["-", gateway_id, connected_at]


class LinkAnnouncer:
    """This worker's side of the link table: observer of the gRPC frontend, handler of the `Links` call."""

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
        await asyncio.gather(*(self._sync(index) for index in self.peers.others))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _sync(self, index: int) -> None:
        try:
            raw = await self.peers.unary(index, wire.LINKS, self._doc(True, self._own_ops()), deadline=LINKS_DEADLINE)
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

    def _announce(self, op: Op) -> None:
        for index, pending in self._pending.items():
            if self._resync[index]:
                continue  # the full list about to be sent includes this change
            pending.append(op)
            if len(pending) > MAX_PENDING:
                pending.clear()
                self._resync[index] = True
                LINKS_DROPPED.labels("resync").inc()
            wake = self._wake.get(index)
            if wake is not None:
                wake.set()

    def _own_ops(self) -> list[Op]:
        return [
            ["+", conn.gateway_id, conn.eui.hex(), conn.connected_at_ns]
            for conn in self.server.core.connections()
            if conn.protocol == PROTOCOL
        ]

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
                    doc = self._doc(True, self._own_ops())
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
        """The worker holding the gateway's link: this one if linked here, a peer if one announced it."""
        conn = self.server.core.get(gateway_id) if gateway_id else None
        if conn is not None and conn.protocol == PROTOCOL:
            return self.spec.index
        return self.map.worker_of(gateway_id, eui)

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
                else:
                    raise ValueError(str(op[0])[:20])
            except (ValueError, IndexError, TypeError):
                LINKS_DROPPED.labels("invalid").inc()
        if self.map.evicted > before:
            LINKS_DROPPED.labels("evicted").inc(self.map.evicted - before)
        return self._doc(True, self._own_ops()) if full else b""

    def _peer_linked(self, gateway_id: str, eui: bytes, worker: int, connected_at: int) -> None:
        local = self.server.core.get(gateway_id)
        if local is not None and local.protocol == PROTOCOL:
            if (local.connected_at_ns, self.spec.index) > (connected_at, worker):
                return  # ours is the newer link: the peer disconnects its own when it hears of ours
            log.info("gateway linked at another worker, replacing the link here",
                     extra={"gateway_id": gateway_id, "worker": worker})
            self.server.core.disconnect(local, self.server.clock(), "replaced")
        self.map.linked(gateway_id, eui, worker, connected_at)


__all__ = ["LINKS_DEADLINE", "LinkAnnouncer"]
