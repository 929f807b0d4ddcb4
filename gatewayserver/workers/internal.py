"""The internal gRPC server of one worker: what its peers forward to it, on a Unix socket, secret required.

The receiving worker has already checked the caller's API key or cluster key and the rights before forwarding,
so this server trusts the worker secret alone: it refuses any call without `authorization: GsWorker <secret>`
(compared in constant time; the secret is never logged) and then answers from this worker's own state, exactly
as the public API would for a gateway this worker owns.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import orjson
from prometheus_client import REGISTRY, generate_latest

from gatewayserver.api.errors import grpc_status
from gatewayserver.errors import PERMISSION_DENIED, UNAUTHENTICATED, GsError
from gatewayserver.events import metrics as events_metrics
from gatewayserver.events.bus import EventBus, Subscription
from gatewayserver.events.definitions import match_all
from gatewayserver.ttnpb import events_pb2, gatewayserver_pb2, messages_pb2

from . import metrics, wire
from .spec import AUTH_SCHEME, WorkerSpec, socket_path

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.server import GatewayServer

    from .links import LinkAnnouncer

log = logging.getLogger(__name__)

#: Bounds on what a peer may ask for (it is trusted, but a bug must not take the worker's memory).
MAX_STREAM_BUFFER = 1 << 16
MAX_STREAM_GATEWAYS = 100_000
#: sun_path holds 108 bytes on Linux, one of them the terminating NUL.
MAX_SOCKET_PATH = 107

_STATUS_BY_CODE = {status.value[0]: status for status in grpc.StatusCode}


def err_worker_auth(reason: str) -> GsError:
    return GsError(
        wire.NS, "worker_auth", "internal worker call refused: {reason} worker secret",
        code=UNAUTHENTICATED if reason == "missing" else PERMISSION_DENIED, attributes={"reason": reason},
    )


class InternalServer:
    """Serves `wire.SERVICE` for the peers of `spec.index` on `socket_path(spec.runtime_dir, spec.index)`."""

    def __init__(
        self, spec: WorkerSpec, server: GatewayServer, bus: EventBus, links: LinkAnnouncer | None = None
    ) -> None:
        self.spec = spec
        self.server = server
        self.bus = bus
        self.path = socket_path(spec.runtime_dir, spec.index)
        self._expected = f"{AUTH_SCHEME} {spec.secret}".encode()
        self.grpc = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        unary: dict[str, Callable[[bytes], Awaitable[bytes]]] = {
            "ScheduleDownlink": self._schedule_downlink,
            "ConnectionStats": self._connection_stats,
            "Connections": self._connections,
            "GatewayInfo": self._gateway_info,
            "Related": self._related,
            "Metrics": self._metrics,
        }
        if links is not None:
            unary["Links"] = self._links(links)
        handlers: dict[str, grpc.RpcMethodHandler] = {
            name: grpc.unary_unary_rpc_method_handler(
                self._guarded(name, call), request_deserializer=wire.identity, response_serializer=wire.identity
            )
            for name, call in unary.items()
        }
        handlers["Events"] = grpc.unary_stream_rpc_method_handler(
            self._events, request_deserializer=wire.identity, response_serializer=wire.identity
        )
        self.grpc.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(wire.SERVICE, handlers),))

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
        old_umask = os.umask(0o177)  # the socket is created 0600 from the start, not chmod-ed after
        try:
            bound = self.grpc.add_insecure_port("unix:" + self.path)
        except RuntimeError as exc:  # grpc's way of saying the bind failed, without errno
            raise OSError(f"cannot bind the internal worker socket {self.path}: {exc}") from None
        finally:
            os.umask(old_umask)
        if not bound:
            raise OSError(f"cannot bind the internal worker socket {self.path}")
        await self.grpc.start()
        os.chmod(self.path, 0o600)

    async def stop(self, grace: float | None = 1.0) -> None:
        await self.grpc.stop(grace)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    # --- authentication -------------------------------------------------------------------------------------------

    def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        presented: bytes | None = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                presented = value.encode() if isinstance(value, str) else bytes(value)
        if presented is None:
            reason = "missing"
        elif hmac.compare_digest(presented, self._expected):
            return
        else:
            reason = "wrong"
        metrics.refused.labels(reason).inc()
        log.warning("internal worker call refused", extra={"reason": f"{reason} worker secret", "peer": context.peer()})
        raise err_worker_auth(reason)

    def _guarded(
        self, name: str, call: Callable[[bytes], Awaitable[bytes]]
    ) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                self._authenticate(context)
                return await call(request)
            except Exception as exc:
                await _abort(context, exc)
                raise  # unreachable: abort raises

        handler.__name__ = name
        return handler

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

    @staticmethod
    def _links(links: LinkAnnouncer) -> Callable[[bytes], Awaitable[bytes]]:
        async def call(request: bytes) -> bytes:
            return links.apply(request)

        return call

    async def _metrics(self, request: bytes) -> bytes:
        return bytes(generate_latest(REGISTRY))

    # --- events ----------------------------------------------------------------------------------------------------

    async def _events(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        """This worker's history for a peer's stream (already filtered by names and rights), a history-end frame,
        then live events until the peer cancels. History and subscription are taken in one step of the loop, so
        no event is both in the history and live, and none falls between them."""
        try:
            self._authenticate(context)
            sub, history = self._open_events(orjson.loads(request))
        except Exception as exc:
            await _abort(context, exc)
            return
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
        except GsError as exc:  # buffer_full: the peer's stream ends with the same error a local one would
            await _abort(context, exc)
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


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code, message, trailers = grpc_status(exc)
    await context.abort(_STATUS_BY_CODE.get(code, grpc.StatusCode.UNKNOWN), message, trailing_metadata=trailers)


__all__ = ["InternalServer", "err_worker_auth"]
