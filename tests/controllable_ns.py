"""A real grpc.aio GsNs stand-in that can be told to answer, fail with a code, or hang; and be stopped/restarted.

Shared by tests/upstream (on the test's own loop) and tests/e2e (on a background loop, against a daemon in a
subprocess). It records an uplink only when its handler *completes*: a call that hangs and is cancelled by the
client never counts as arrived, which is what the exact shutdown accounting is checked against.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from google.protobuf import empty_pb2

from gatewayserver.ttnpb import messages_pb2, networkserver_pb2_grpc


class ControllableNs(networkserver_pb2_grpc.GsNsServicer):
    """`mode`: "ok", "hang" (until the mode changes, or forever) or a `grpc.StatusCode` to fail with."""

    def __init__(self) -> None:
        self.mode: Any = "ok"
        self.answer_first: int | None = None  # answer this many uplinks, then hang every further call
        self.received: list[messages_pb2.UplinkMessage] = []
        self.arrival_ages_ns: list[int] = []  # time.time_ns() at completion minus the uplink's received_at
        self.calls = 0  # every HandleUplink call that reached the handler, whatever its fate
        self._server: grpc.aio.Server | None = None
        self._changed: asyncio.Event | None = None

    def set_mode(self, mode: Any) -> None:
        """Call on the stand-in's loop: hanging calls see the change and follow it."""
        self.mode = mode
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def HandleUplink(self, request: Any, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self.calls += 1
        if self._changed is None:
            self._changed = asyncio.Event()
        while True:
            if self.answer_first is not None and len(self.received) >= self.answer_first:
                await asyncio.Event().wait()  # hang for good: the client's deadline or shutdown ends the call
            if self.mode == "hang":
                await self._changed.wait()
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:  # the client has given up: this call never arrived
                    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed while hanging")
                continue
            if isinstance(self.mode, grpc.StatusCode):
                await context.abort(self.mode, "stand-in told to fail")
            break
        received = request.received_at.seconds * 1_000_000_000 + request.received_at.nanos
        self.received.append(request)
        self.arrival_ages_ns.append(time.time_ns() - received)
        return empty_pb2.Empty()

    def fcnts(self) -> list[int]:
        return [m.payload.mac_payload.f_hdr.f_cnt for m in self.received]

    async def start(self, port: int = 0) -> int:
        server = grpc.aio.server()
        networkserver_pb2_grpc.add_GsNsServicer_to_server(self, server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        self._server = server
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
            self._server = None
