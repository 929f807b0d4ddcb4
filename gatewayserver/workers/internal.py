"""What one worker serves its peers: the handler table (`worker_handlers`) and the server on its Unix socket.

The receiving worker has already checked the caller's API key or cluster key and the rights before forwarding,
so this server trusts the worker secret alone: the transport refuses a connection that does not start with it
(`transport.FramedServer`: compared in constant time, never logged), and the handlers then answer from this
worker's own state, exactly as the public API would for a gateway this worker owns. The handlers know nothing of
the transport (`dispatch.Handlers`), so the same table can be mounted elsewhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import REGISTRY, generate_latest

from gatewayserver.events import metrics as events_metrics
from gatewayserver.events.bus import EventBus, Subscription
from gatewayserver.events.definitions import match_all
from gatewayserver.ttnpb import events_pb2, gatewayserver_pb2, messages_pb2

from . import wire
from .events import peer_stream_slot
from .dispatch import Handlers, Unary
from .spec import WorkerSpec, socket_path
from .transport import FramedServer, err_worker_auth

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.api.streams import StreamSlots
    from gatewayserver.server import GatewayServer

    from .links import LinkAnnouncer

log = logging.getLogger(__name__)

#: Bounds on what a peer may ask for (it is trusted, but a bug must not take the worker's memory).
MAX_STREAM_BUFFER = 1 << 16
MAX_STREAM_GATEWAYS = 100_000
#: sun_path holds 108 bytes on Linux, one of them the terminating NUL.
MAX_SOCKET_PATH = 107


class InternalServer:
    """Serves `worker_handlers` for the peers of `spec.index` on `socket_path(spec.runtime_dir, spec.index)`."""

    def __init__(
        self, spec: WorkerSpec, server: GatewayServer, bus: EventBus, links: LinkAnnouncer | None = None,
        stream_slots: StreamSlots | None = None,
    ) -> None:
        self.spec = spec
        self.path = socket_path(spec.runtime_dir, spec.index)
        self.handlers = worker_handlers(server, bus, links, stream_slots)
        self.transport = FramedServer(self.handlers, spec.secret.encode())

    async def start(self) -> None:
        """Bind the socket (a stale one from a previous run of this worker is replaced) with mode 0600."""
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            raise OSError(
                f"internal worker socket path {self.path} is {len(os.fsencode(self.path))} bytes, more than the "
                f"{MAX_SOCKET_PATH} a Unix socket address holds; use a shorter runtime directory"
            )
        os.makedirs(self.spec.runtime_dir, mode=0o700, exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            await self.transport.start(self.path)
        except OSError as exc:
            raise OSError(f"cannot bind the internal worker socket {self.path}: {exc.strerror or exc}") from None
        os.chmod(self.path, 0o600)

    async def stop(self, grace: float | None = 1.0) -> None:
        await self.transport.stop(grace)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def worker_handlers(
    server: GatewayServer, bus: EventBus, links: LinkAnnouncer | None = None, stream_slots: StreamSlots | None = None
) -> Handlers:
    """The internal API of one worker by method name (`wire.py`); `stream_slots`: the public API's open-stream
    counter, in which a peer's event stream holds a slot."""
    return _Handlers(server, bus, links, stream_slots).table()


class _Handlers:
    def __init__(
        self, server: GatewayServer, bus: EventBus, links: LinkAnnouncer | None, stream_slots: StreamSlots | None
    ) -> None:
        self.server = server
        self.bus = bus
        self.links = links
        self.stream_slots = stream_slots

    def table(self) -> Handlers:
        unary: dict[str, Unary] = {
            wire.SCHEDULE_DOWNLINK: self._schedule_downlink,
            wire.CONNECTION_STATS: self._connection_stats,
            wire.CONNECTIONS: self._connections,
            wire.GATEWAY_INFO: self._gateway_info,
            wire.RELATED: self._related,
            wire.METRICS: self._metrics,
        }
        if self.links is not None:
            unary[wire.LINKS] = self._links
        return Handlers(unary=unary, streams={wire.EVENTS: self._events})

    # --- unary -----------------------------------------------------------------------------------------------------

    async def _schedule_downlink(self, request: bytes) -> bytes:
        message = messages_pb2.DownlinkMessage.FromString(request)
        response = await self.server.schedule_downlink(message)
        return bytes(response.SerializeToString())

    async def _connection_stats(self, request: bytes) -> bytes:
        req = gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest.FromString(request)
        response = gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse()
        for ids in req.gateway_ids:
            stats = self.server.connection_stats(ids.gateway_id)
            if stats is not None:
                response.entries[ids.gateway_id].CopyFrom(stats)
        return bytes(response.SerializeToString())

    async def _connections(self, request: bytes) -> bytes:
        return orjson.dumps(self.server.connected_gateways())

    async def _gateway_info(self, request: bytes) -> bytes:
        """The frequency plans and EUI of a gateway only this worker knows (connected, not in the registry)."""
        gateway_id = request.decode()
        entry = self.server.gateway_entry(gateway_id)
        if entry is None:
            return orjson.dumps(None)
        return orjson.dumps(
            {"frequency_plan_ids": list(entry.frequency_plan_ids), "eui": entry.eui.hex() if entry.eui else None}
        )

    async def _related(self, request: bytes) -> bytes:
        response = events_pb2.FindRelatedEventsResponse()
        for event in self.bus.related(request.decode()):
            response.events.append(event.to_proto())
        return bytes(response.SerializeToString())

    async def _links(self, request: bytes) -> bytes:
        assert self.links is not None
        return self.links.apply(request)

    async def _metrics(self, request: bytes) -> bytes:
        return bytes(generate_latest(REGISTRY))

    # --- events ----------------------------------------------------------------------------------------------------

    async def _events(self, request: bytes) -> AsyncIterator[bytes]:
        """This worker's history for a peer's stream (already filtered by names and rights), a history-end frame,
        then live events until the peer cancels. History and subscription are taken in one step of the loop, so
        no event is both in the history and live, and none falls between them. A subscription that overflows
        (the peer reads too slowly) raises its `buffer_full`, which ends the peer's stream with that error.
        First of all the stream takes its slot under the peer's API key (`events.peer_stream_slot`), or is refused."""
        doc = orjson.loads(request)
        release = peer_stream_slot(self.stream_slots, doc)
        try:
            sub, history = self._open_events(doc)
        except BaseException:
            release()
            raise
        sub.add_close_callback(release)
        try:
            for frame in wire.event_frames(history):
                yield frame
            yield wire.FRAME_HISTORY_END
            while True:
                batch = await sub.next_batch()
                if not batch:
                    return
                # Not a delivery to a client (the receiving worker counts that one): next_batch counted it, take
                # it back in the same loop step so no scrape sees it.
                events_metrics.delivered.inc(-len(batch))
                for frame in wire.event_frames(batch):
                    yield frame
        finally:
            sub.close()

    def _open_events(self, doc: dict[str, Any]) -> tuple[Subscription, list[Any]]:
        gateway_ids = [str(g) for g in doc["gateway_ids"]][:MAX_STREAM_GATEWAYS]
        rights = {str(g): [str(r) for r in held] for g, held in dict(doc["rights"]).items()}
        names = doc.get("names")
        matcher = frozenset(str(n) for n in names).__contains__ if names is not None else match_all
        buffer = max(1, min(int(doc.get("buffer", 1024)), MAX_STREAM_BUFFER))
        sub = Subscription(gateway_ids, matcher, buffer, rights)
        tail = int(doc.get("tail", 0))
        after_ns = doc.get("after_ns")
        history: list[Any] = []
        if tail > 0 or after_ns is not None:
            history = self.bus.history(sub, tail=tail, after_ns=after_ns, now_ns=doc.get("now_ns"))
        self.bus.attach(sub, counted=False)
        return sub, history


__all__ = ["InternalServer", "err_worker_auth", "worker_handlers"]
