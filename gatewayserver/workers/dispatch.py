"""What a worker answers to its peers, apart from how the call reached it: a table of method name → handler.

A unary handler takes the request bytes and returns the response bytes; a stream handler takes the request bytes
and yields response bytes until it returns (the stream ends) or raises (it ends with that error). Handlers raise
`GsError` for anything the caller should see; the transport turns it into the public API's `ErrorDetails`, so the
caller rebuilds the same error (`wire.error_from_details`).

Handlers neither authenticate nor know the transport: `transport.FramedServer` serves the table on a worker's Unix
socket after checking the worker secret, and the same table can be mounted on any other transport that checks its
own credentials first (`grpc_handler` below: a gRPC service for forwarding between instances, say, behind a
cluster key), with the same method names (`wire.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Unary = Callable[[bytes], Awaitable[bytes]]
Streaming = Callable[[bytes], AsyncIterator[bytes]]


@dataclass(frozen=True)
class Handlers:
    """Method name (`wire.SCHEDULE_DOWNLINK`, ...) → handler."""

    unary: Mapping[str, Unary] = field(default_factory=dict)
    streams: Mapping[str, Streaming] = field(default_factory=dict)


def grpc_handler(
    handlers: Handlers, service: str, check: Callable[[Any], Awaitable[None]]
) -> Any:
    """The table as a grpc.aio generic handler for `service` (method names `/<service>/<Name>`), raw bytes in and
    out. `check(context)` runs before every handler and raises `GsError` to refuse the call; errors end the call
    with the public API's status and `ErrorDetails` trailer, as every public gRPC method does."""
    import grpc

    from gatewayserver.api.errors import grpc_status

    status_by_code = {status.value[0]: status for status in grpc.StatusCode}
    prefix = f"/{service}/"

    async def abort(context: Any, exc: BaseException) -> None:
        code, message, trailers = grpc_status(exc)
        await context.abort(status_by_code.get(code, grpc.StatusCode.UNKNOWN), message, trailing_metadata=trailers)

    def unary(call: Unary) -> Callable[[bytes, Any], Awaitable[bytes]]:
        async def handler(request: bytes, context: Any) -> bytes:
            try:
                await check(context)
                return await call(request)
            except Exception as exc:
                await abort(context, exc)
                raise  # unreachable: abort raises

        return handler

    def streaming(call: Streaming) -> Callable[[bytes, Any], AsyncIterator[bytes]]:
        async def handler(request: bytes, context: Any) -> AsyncIterator[bytes]:
            try:
                await check(context)
                async for item in call(request):
                    yield item
            except Exception as exc:
                await abort(context, exc)

        return handler

    def identity(data: bytes) -> bytes:
        return data

    methods: dict[str, grpc.RpcMethodHandler] = {}
    for name, call in handlers.unary.items():
        if name.startswith(prefix):
            methods[name[len(prefix):]] = grpc.unary_unary_rpc_method_handler(
                unary(call), request_deserializer=identity, response_serializer=identity
            )
    for name, stream in handlers.streams.items():
        if name.startswith(prefix):
            methods[name[len(prefix):]] = grpc.unary_stream_rpc_method_handler(
                streaming(stream), request_deserializer=identity, response_serializer=identity
            )
    return grpc.method_handlers_generic_handler(service, methods)


__all__ = ["Handlers", "Streaming", "Unary", "grpc_handler"]
