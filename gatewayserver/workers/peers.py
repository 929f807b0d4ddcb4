"""Calling the other workers: one framed connection per peer over its Unix socket (`transport.py`), the secret
at the start of each connection, a deadline on every unary call, and every failure turned into an error that
names the worker.

A peer that is down (restarting, crashed) refuses the connection at once: the caller gets UNAVAILABLE
`worker_unavailable` naming the worker, never a hang; the next call dials again, so a restarted worker is reached
as soon as it listens. A peer that dies mid-call fails every call on its connection at once. An error the peer
itself raised (the gateway is not connected, the downlink cannot be scheduled) comes back as that same error.

`peer_error` reads the same errors from a gRPC status (the public API's shape), for clients of the public API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import grpc
from prometheus_client import Counter

from gatewayserver.api.errors import STATUS_DETAILS_KEY, decode_rpc_status
from gatewayserver.errors import GsError
from gatewayserver.ttnpb import error_pb2

from . import metrics, wire
from .spec import WorkerSpec, socket_path
from .transport import ClientConnection, connect

log = logging.getLogger(__name__)

#: Deadline of a forwarded unary call (ScheduleDownlink, stats, configuration, the gateway list).
CALL_DEADLINE = 5.0
#: Deadline for a peer's metrics at scrape time: short, so one stuck worker cannot fail the scrape.
METRICS_DEADLINE = 2.0
#: How long an event stream waits for a peer's history before ending with `worker_unavailable`.
HISTORY_DEADLINE = 10.0
#: `wait_for_ready`: how often a refused connection is dialled again until the call's deadline.
REDIAL_INTERVAL = 0.1

_CODE_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}


def typed_error_of(exc: grpc.aio.AioRpcError, **where: object) -> GsError | None:
    """The typed error a gRPC server of ours sent in the status's `ErrorDetails` trailer, else None (none sent, or
    a malformed one, logged with `where`: which worker or instance sent it)."""
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                _, _, items = decode_rpc_status(value)
                for item in items:
                    details = error_pb2.ErrorDetails()
                    if item.Unpack(details):
                        return wire.error_from_details(details)
            except Exception:  # a malformed trailer is the server's bug; report the call as failed
                log.exception("unreadable error in a gRPC status", extra=where)
    return None


def peer_error(index: int, exc: grpc.aio.AioRpcError) -> GsError:
    """The error a failed gRPC call stands for: the server's own typed error if it sent one (the `ErrorDetails`
    trailer), else `worker_unavailable` with grpc's reason (connection refused, deadline exceeded)."""
    typed = typed_error_of(exc, worker=index)
    if typed is not None:
        return typed
    code = exc.code()
    return wire.err_worker_unavailable(index, f"{code.name if code else 'UNKNOWN'}: {exc.details() or ''}".strip())


class Peers:
    """Connections to every other worker of the group, opened on first use and kept until they fail."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._secret = spec.secret.encode()  # never logged
        self._connections: dict[int, ClientConnection] = {}
        self._dialling: dict[int, asyncio.Task[ClientConnection]] = {}
        self._methods: dict[str, tuple[bytes, str]] = {}
        self._counted: dict[tuple[str, str], Counter] = {}

    @property
    def others(self) -> list[int]:
        return [i for i in range(self.spec.count) if i != self.spec.index]

    async def _connection(self, index: int, deadline: float, wait_for_ready: bool) -> ClientConnection:
        """The open connection to `index`, dialling it (once for every concurrent caller) when there is none."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline
        while True:
            conn = self._connections.get(index)
            if conn is not None and not conn.closed:
                return conn
            task = self._dialling.get(index)
            if task is None:
                task = self._dialling[index] = loop.create_task(self._dial(index))
            try:
                async with asyncio.timeout(max(give_up - loop.time(), 0.0)):
                    return await asyncio.shield(task)
            except TimeoutError:
                raise wire.err_worker_unavailable(index, "DEADLINE_EXCEEDED: no connection within the deadline") \
                    from None
            except GsError:
                if not wait_for_ready or loop.time() + REDIAL_INTERVAL >= give_up:
                    raise
            await asyncio.sleep(REDIAL_INTERVAL)

    async def _dial(self, index: int) -> ClientConnection:
        try:
            conn = await connect(index, socket_path(self.spec.runtime_dir, index), self._secret)
            self._connections[index] = conn
            return conn
        finally:
            del self._dialling[index]

    def _count(self, label: str, code: str) -> None:
        counter = self._counted.get((label, code))
        if counter is None:
            counter = self._counted[(label, code)] = metrics.forwarded.labels(label, code)
        counter.inc()

    async def unary(
        self, index: int, method: str, request: bytes, *, deadline: float = CALL_DEADLINE, wait_for_ready: bool = False
    ) -> bytes:
        """Call `method` on worker `index`; raises the peer's `GsError`, or `worker_unavailable`.

        `wait_for_ready`: dial again (within the deadline) while the peer refuses connections, instead of failing
        at once; for calls that must reach a peer that is just coming back."""
        encoded = self._methods.get(method)
        if encoded is None:
            encoded = self._methods[method] = (method.encode(), method.rpartition("/")[2])
        name, label = encoded
        try:
            conn = self._connections.get(index)
            if conn is None or conn.closed:
                conn = await self._connection(index, deadline, wait_for_ready)
            response = await conn.call(name, request, deadline)
        except GsError as exc:
            self._count(label, _code_label(exc))
            raise
        self._count(label, "OK")
        return response

    async def stream(self, index: int, method: str, request: bytes) -> AsyncGenerator[bytes, None]:
        """A server stream from worker `index` (no overall deadline: event streams live as long as the client's);
        failures as in `unary`. Closing the generator cancels the stream at the peer."""
        conn = self._connections.get(index)
        if conn is None or conn.closed:
            conn = await self._connection(index, CALL_DEADLINE, False)
        items = conn.stream(method.encode(), request)
        try:
            async for item in items:
                yield item
        finally:
            await items.aclose()

    async def close(self) -> None:
        for task in list(self._dialling.values()):
            task.cancel()
        connections, self._connections = self._connections, {}
        for conn in connections.values():
            conn.close()


def _code_label(exc: GsError) -> str:
    """The `code` label of a failed forward: the status name, or for a peer that did not answer the reason's
    (UNAVAILABLE: refused or lost, DEADLINE_EXCEEDED: no answer in time)."""
    if exc.name == "worker_unavailable" and exc.namespace == wire.NS:
        return str(exc.attributes.get("reason", "UNAVAILABLE")).partition(":")[0]
    return _CODE_NAMES.get(exc.code, "UNKNOWN")


__all__ = ["CALL_DEADLINE", "HISTORY_DEADLINE", "METRICS_DEADLINE", "Peers", "peer_error", "typed_error_of"]
