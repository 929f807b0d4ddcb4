"""The asyncio shell of the gRPC gateway frontend: serves one `LinkGateway` stream per connected gateway.

The API server authenticates the call (metadata `id` and a key with `RIGHT_GATEWAY_LINK` for that gateway) and
hands the stream here. `GrpcFrontend.serve` connects the gateway to the core (replacing an older link of the same
gateway), then runs a reader (each `GatewayUp` stamped with the time it was read and handed to the core) and a
writer (the core's outbox, through a bounded send queue) until the gateway closes the stream, a newer link
replaces it, the daemon shuts down, or the gateway stops reading: when the send queue is full, the downlink is
dropped and counted and the gateway disconnected, so a gateway that does not read cannot grow the daemon's memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc

from ...core.connection import Connection
from ...core.gateways import GatewayCore
from ...downlink.planner import Planned
from ...errors import NOT_FOUND, UNAVAILABLE, GsError
from ...metrics import UPLINKS_DROPPED
from ...registry import GatewayEntry, GatewayRegistry
from ...ttnpb import gatewayserver_pb2
from . import translate
from .metrics import MESSAGES_DROPPED

log = logging.getLogger(__name__)

PROTOCOL = "grpc"
SEND_QUEUE = 256
_EUI_ID = re.compile(r"eui-([0-9a-f]{16})")
_STATUS = {
    "replaced": grpc.StatusCode.ABORTED,
    "unregistered": grpc.StatusCode.PERMISSION_DENIED,
    "send_queue_full": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "shutdown": grpc.StatusCode.UNAVAILABLE,
}


def err_gateway_not_registered(gateway_id: str) -> GsError:
    return GsError(
        "pkg/gatewayserver", "gateway_not_registered", "gateway `{gateway_uid}` is not registered", code=NOT_FOUND,
        attributes={"gateway_uid": gateway_id},
    )


def err_link_closed() -> GsError:
    return GsError("pkg/gatewayserver/io/grpc", "link_closed", "gateway link closed", code=UNAVAILABLE)


def _peer_ip(peer: str) -> str:
    """`ipv4:127.0.0.1:5000` / `ipv6:[::1]:5000` → the address alone."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].partition("]")[0]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return rest or peer


class GrpcLink:
    """The core's view of one stream (`core.connection.Link`), and the stream's bounded send queue."""

    protocol = PROTOCOL

    def __init__(self, remote: str, send_queue: int = SEND_QUEUE) -> None:
        self._remote = remote
        self.send_queue = send_queue
        self.conn: Connection | None = None
        self.queue: deque[gatewayserver_pb2.GatewayDown] = deque()
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_reason: str | None = None
        self.dropped = 0

    def remote_ip(self) -> str:
        return self._remote

    def downlink_path_error(self, now: int) -> GsError | None:
        return err_link_closed() if self.close_reason is not None else None

    def release_at(self, planned: Planned, now: int) -> int:
        return now  # a streaming gateway has its own just-in-time queue: hand it everything at once

    def wake(self) -> None:
        conn = self.conn
        if conn is None:
            return
        for tx in conn.drain():
            if len(self.queue) >= self.send_queue or self.close_reason is not None:
                self.dropped += 1
                MESSAGES_DROPPED.labels("send_queue_full").inc()
                self.close("send_queue_full")
                continue
            self.queue.append(translate.gateway_down(tx.message))
        self.ready.set()

    def disconnected(self, reason: str) -> None:
        self.close(reason)

    def close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self.closed.set()


def deliver(conn: Connection, up: gatewayserver_pb2.GatewayUp, now: int) -> None:
    """One `GatewayUp` read at `now`, into the core: uplinks, then the status, then the TX acknowledgment."""
    drops: list[translate.Dropped] = []
    messages = translate.uplinks(up, conn.ids, conn.entry, now, drops)
    for drop in drops:  # counted as dropped only: `gs_uplinks_received_total` counts uplinks that were ones
        UPLINKS_DROPPED.labels(drop.reason).inc()
        if drop.reason != "duplicate":
            log.info("uplink dropped", extra={"gateway_id": conn.gateway_id, "reason": drop.reason,
                                              "detail": drop.detail})
        conn.drop_uplink(GsError("pkg/gatewayserver/io/grpc", drop.reason, drop.detail or drop.reason, code=3), now)
    for message in messages:
        conn.handle_up(message, now)
    status = translate.status(up)
    if isinstance(status, translate.Dropped):
        MESSAGES_DROPPED.labels(status.reason).inc()
        log.info("gateway status dropped", extra={"gateway_id": conn.gateway_id, "reason": status.reason})
    elif status is not None:
        conn.handle_status(status, now)
    ack = translate.tx_acknowledgment(up)
    if isinstance(ack, translate.Dropped):
        MESSAGES_DROPPED.labels(ack.reason).inc()
        conn.drop_tx_ack(GsError("pkg/gatewayserver/io/grpc", ack.reason, ack.detail, code=3), now)
    elif ack is not None:
        conn.handle_tx_ack(ack, now)


class LinkObserver(Protocol):
    def linked(self, conn: Connection) -> None: ...

    def unlinked(self, conn: Connection) -> None: ...


class GrpcFrontend:
    """Serves `LinkGateway` streams for the core; the API server calls `entry_for` and `serve`."""

    def __init__(
        self,
        core: GatewayCore,
        registry: GatewayRegistry,
        *,
        send_queue: int = SEND_QUEUE,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.core = core
        self.registry = registry
        self.send_queue = send_queue
        self.clock = clock
        #: Told of every link made and ended here (with several workers: the peers are told, `workers/links.py`).
        self.observer: LinkObserver | None = None

    def entry_for(self, gateway_id: str) -> GatewayEntry:
        """The registry's entry for a linking gateway (as for UDP: unknown ones are admitted unless registration
        is required, with the fallback plan); raises `gateway_not_registered` (NOT_FOUND) otherwise."""
        registry = self.registry
        entry = registry.by_id(gateway_id)
        if entry is not None:
            return entry
        match = _EUI_ID.fullmatch(gateway_id)
        if match is not None:
            entry = registry.lookup(bytes.fromhex(match.group(1)))
            if entry is not None and entry.gateway_id == gateway_id:
                return entry
        elif not registry.require_registered:
            return GatewayEntry(gateway_id, b"", (registry.fallback_frequency_plan,), registered=False)
        raise err_gateway_not_registered(gateway_id)

    def registry_reloaded(self, now: int) -> None:
        """Apply a reloaded registry to the live links, as the UDP frontend does to its connections.

        A linked gateway the registry no longer admits is disconnected (reason `unregistered`, which ends its
        stream); one whose entry changed takes the new entry.
        """
        for conn in self.core.connections():
            if conn.protocol != PROTOCOL:
                continue
            try:
                entry = self.entry_for(conn.gateway_id)
            except GsError:
                self.core.disconnect(conn, now, "unregistered")
                continue
            if entry != conn.entry:
                self.core.entry_changed(conn, entry, now)

    async def serve(
        self,
        entry: GatewayEntry,
        requests: AsyncIterator[gatewayserver_pb2.GatewayUp],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        """Run one link until it ends; ends the RPC with a status saying why when the server ended it."""
        link = GrpcLink(_peer_ip(context.peer()), self.send_queue)
        conn = self.core.connect(entry, link, self.clock())
        link.conn = conn
        observer = self.observer
        if observer is not None:
            observer.linked(conn)
        tasks = [
            asyncio.ensure_future(self._read(conn, link, requests)),
            asyncio.ensure_future(self._write(link, context)),
            asyncio.ensure_future(link.closed.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            link.close("closed")
            self.core.disconnect(conn, self.clock(), link.close_reason or "closed")
            if observer is not None:
                observer.unlinked(conn)
        status = _STATUS.get(link.close_reason or "")
        if status is not None:
            await context.abort(status, f"gateway link ended: {link.close_reason}")

    async def _read(
        self, conn: Connection, link: GrpcLink, requests: AsyncIterator[gatewayserver_pb2.GatewayUp]
    ) -> None:
        async for up in requests:
            if link.close_reason is not None:
                return
            try:
                deliver(conn, up, self.clock())
            except Exception:  # one message's bug must not end the link
                log.exception("gateway link message handling failed", extra={"gateway_id": conn.gateway_id})
                MESSAGES_DROPPED.labels("internal").inc()

    async def _write(self, link: GrpcLink, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        while True:
            await link.ready.wait()
            link.ready.clear()
            while link.queue:
                await context.write(link.queue.popleft())
