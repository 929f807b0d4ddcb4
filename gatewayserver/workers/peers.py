"""Calling the other workers: one gRPC channel per peer over its Unix socket, the secret on every call, a deadline
on every unary call, and every failure turned into an error that names the worker.

A peer that is down (restarting, crashed) refuses the connection at once: the caller gets UNAVAILABLE
`worker_unavailable` naming the worker within the deadline, never a hang. An error the peer itself raised (the
gateway is not connected, the downlink cannot be scheduled) comes back as that same error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

import grpc

from gatewayserver.api.errors import STATUS_DETAILS_KEY, decode_rpc_status
from gatewayserver.errors import GsError
from gatewayserver.ttnpb import error_pb2

from . import metrics, wire
from .spec import AUTH_SCHEME, WorkerSpec, socket_path

log = logging.getLogger(__name__)

#: Deadline of a forwarded unary call (ScheduleDownlink, stats, configuration, the gateway list).
CALL_DEADLINE = 5.0
#: Deadline for a peer's metrics at scrape time: short, so one stuck worker cannot fail the scrape.
METRICS_DEADLINE = 2.0
#: How long an event stream waits for a peer's history before ending with `worker_unavailable`.
HISTORY_DEADLINE = 10.0

_CHANNEL_OPTIONS = [
    # Reconnect quickly after a worker restart instead of grpc's default backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 << 20),
]


def peer_error(index: int, exc: grpc.aio.AioRpcError) -> GsError:
    """The error a failed internal call stands for: the peer's own typed error if it sent one, else
    `worker_unavailable` with grpc's reason (connection refused, deadline exceeded)."""
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                _, _, items = decode_rpc_status(value)
                for item in items:
                    details = error_pb2.ErrorDetails()
                    if item.Unpack(details):
                        return wire.error_from_details(details)
            except Exception:  # a malformed trailer is the peer's bug; report the call as failed
                log.exception("unreadable error from worker", extra={"worker": index})
    code = exc.code()
    return wire.err_worker_unavailable(index, f"{code.name if code else 'UNKNOWN'}: {exc.details() or ''}".strip())


class Peers:
    """Channels to every other worker of the group, opened on first use and kept."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._channels: dict[int, grpc.aio.Channel] = {}
        # Building a multi-callable costs about as much as a small call's own client work: keep one per method.
        self._unary: dict[tuple[int, str], grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        # Never logged: the repr of this tuple is not used anywhere.
        self._metadata = (("authorization", f"{AUTH_SCHEME} {spec.secret}"),)

    @property
    def others(self) -> list[int]:
        return [i for i in range(self.spec.count) if i != self.spec.index]

    def channel(self, index: int) -> grpc.aio.Channel:
        channel = self._channels.get(index)
        if channel is None:
            target = "unix:" + socket_path(self.spec.runtime_dir, index)
            channel = self._channels[index] = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        return channel

    async def unary(
        self, index: int, method: str, request: bytes, *, deadline: float = CALL_DEADLINE, wait_for_ready: bool = False
    ) -> bytes:
        """Call `method` on worker `index`; raises the peer's `GsError`, or `worker_unavailable`.

        `wait_for_ready`: wait (within the deadline) for a channel still backing off after the peer was down,
        instead of failing at once; for calls that must reach a peer that just came back."""
        call = self._unary.get((index, method))
        if call is None:
            call = self._unary[(index, method)] = self.channel(index).unary_unary(
                method, request_serializer=wire.identity, response_deserializer=wire.identity
            )
        label = method.rpartition("/")[2]
        try:
            response: bytes = await call(
                request, metadata=self._metadata, timeout=deadline, wait_for_ready=wait_for_ready
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            metrics.forwarded.labels(label, code.name if code else "UNKNOWN").inc()
            raise peer_error(index, exc) from None
        metrics.forwarded.labels(label, "OK").inc()
        return response

    async def stream(self, index: int, method: str, request: bytes) -> AsyncGenerator[bytes, None]:
        """A server stream from worker `index` (no overall deadline: event streams live as long as the client's);
        failures as in `unary`."""
        call = self.channel(index).unary_stream(method, request_serializer=wire.identity,
                                                response_deserializer=wire.identity)
        stream = call(request, metadata=self._metadata)
        try:
            async for frame in stream:
                yield frame
        except grpc.aio.AioRpcError as exc:
            raise peer_error(index, exc) from None
        finally:
            stream.cancel()

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        self._unary.clear()
        for channel in channels.values():
            await channel.close()


__all__ = ["CALL_DEADLINE", "HISTORY_DEADLINE", "METRICS_DEADLINE", "Peers", "peer_error"]
