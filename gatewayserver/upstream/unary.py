"""One unary gRPC call on a grpc.aio channel, with less Python around it.

`stub.HandleUplink(msg)` builds a `UnaryUnaryCall` per call: an extra asyncio Task to drive it, metadata objects,
an observability hook, done-callback bookkeeping. On the uplink path that wrapper costs about as much as our whole
translation. Underneath, the call is the same grpc.aio Cython call object, which we can drive directly from the
caller's own coroutine: same channel, same HTTP/2 stream, same wire bytes, same status codes.

The Cython layer is not a public API, so `UnaryCaller.direct` is only true when the installed grpcio still has the
pieces we use; otherwise every call goes through the public stub and nothing else changes. Tests run both ways.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

log = logging.getLogger(__name__)

try:  # private grpc.aio internals; verified per channel below
    from grpc._cython import cygrpc as _cygrpc
    from grpc.aio._call import _create_rpc_error
    from grpc.aio._metadata import Metadata as _Metadata
except ImportError:  # pragma: no cover - a grpcio that moved them: the public path is used
    _cygrpc = None


class UnaryCaller:
    """Calls one unary method of a grpc.aio channel; raises `grpc.aio.AioRpcError` exactly like the stub would."""

    __slots__ = ("_multicallable", "_cchannel", "_method", "_handle", "direct")

    def __init__(self, channel: grpc.aio.Channel, path: str, *, allow_direct: bool = True) -> None:
        # Requests arrive serialized (bytes) or as messages; responses are ignored (GsNs answers with Empty).
        self._multicallable: Callable[..., Any] = channel.unary_unary(
            path, request_serializer=_serialize, response_deserializer=None, _registered_method=True
        )
        self._cchannel = getattr(channel, "_channel", None)
        self._method = getattr(self._multicallable, "_method", None)
        self._handle = getattr(self._multicallable, "_registered_call_handle", 0)
        self.direct = bool(
            allow_direct
            and _cygrpc is not None
            and isinstance(self._cchannel, _cygrpc.AioChannel)
            and isinstance(self._method, bytes)
            and not getattr(self._multicallable, "_interceptors", None)
        )

    async def __call__(self, request: Any, metadata: tuple[tuple[str, str], ...], timeout: float) -> None:
        if not self.direct:
            await self._multicallable(request, metadata=metadata, timeout=timeout)
            return
        payload = request if request.__class__ is bytes else request.SerializeToString()
        call = self._cchannel.call(self._method, time.time() + timeout, None, None, self._handle)  # type: ignore[union-attr]
        try:
            await call.unary_unary(payload, metadata, None)
        except asyncio.CancelledError:
            if not call.done():
                call.cancel("cancelled by the Gateway Server")
            raise
        if not call.is_ok():
            if call.is_locally_cancelled():
                raise asyncio.CancelledError()
            raise _create_rpc_error(_Metadata(), await call.status())


def _serialize(request: Any) -> bytes:
    return request if request.__class__ is bytes else request.SerializeToString()
