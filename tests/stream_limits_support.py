"""Opening event streams against a daemon's public APIs, for the tests of the stream bounds over several workers.

`open_stream` returns an open stream (its start event read) or the refusal as (status, error name), over HTTP or
gRPC; each HTTP request and gRPC channel uses its own TCP connection, so with `--workers N` the kernel picks the
worker afresh for each one.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import orjson

from gatewayserver.api.errors import STATUS_DETAILS_KEY, decode_rpc_status
from gatewayserver.ttnpb import error_pb2, events_pb2, events_pb2_grpc

GATEWAY_ID = "gw-stream-limits"
BODY = {"identifiers": [{"gateway_ids": {"gateway_id": GATEWAY_ID}}]}
#: Generous: two cores shared with other tests, and a stream waits for every worker's history.
TIMEOUT = 30.0


@dataclass
class Refused:
    status: int  # HTTP status, or the gRPC code's name
    name: str  # the error's name (`too_many_streams_per_key`, ...)


class OpenStream:
    """A stream that was admitted; `close()` ends it from the client's side."""

    def __init__(self, closer: Any) -> None:
        self._closer = closer

    async def close(self) -> None:
        await self._closer()


async def open_http(http: str, key: str) -> OpenStream | Refused:
    """`POST /api/v3/events` on a connection of its own."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    try:
        response = await session.post(
            f"{http}/api/v3/events", headers={"Authorization": f"Bearer {key}"}, data=orjson.dumps(BODY),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None, connect=TIMEOUT),
        )
        if response.status != 200:
            body = orjson.loads(await asyncio.wait_for(response.read(), TIMEOUT))
            await session.close()
            return Refused(response.status, body["details"][0]["name"] if body.get("details") else "")
        first = orjson.loads(await asyncio.wait_for(response.content.readline(), TIMEOUT))
        assert first["result"]["name"] == "events.stream.start", first
    except BaseException:
        await session.close()
        raise

    async def close() -> None:
        response.close()
        await session.close()

    return OpenStream(close)


def _error_name(exc: grpc.aio.AioRpcError) -> str:
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            _, _, items = decode_rpc_status(value)
            for item in items:
                details = error_pb2.ErrorDetails()
                if item.Unpack(details):
                    return details.name
    return ""


async def open_grpc(target: str, key: str) -> OpenStream | Refused:
    """`Events.Stream` on a channel (and so a TCP connection) of its own."""
    channel = grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    request = events_pb2.StreamEventsRequest()
    request.identifiers.add().gateway_ids.gateway_id = GATEWAY_ID
    call = events_pb2_grpc.EventsStub(channel).Stream(request, metadata=(("authorization", f"Bearer {key}"),))
    try:
        start = await asyncio.wait_for(call.read(), TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        await channel.close()
        code = exc.code()
        return Refused(code.name if code else "UNKNOWN", _error_name(exc))
    except BaseException:
        await channel.close()
        raise
    assert start.name == "events.stream.start", start

    async def close() -> None:
        call.cancel()
        await channel.close()

    return OpenStream(close)


async def open_stream(api: str, address: str, key: str) -> OpenStream | Refused:
    """`api` "http" (address: base URL) or "grpc" (address: host:port)."""
    return await (open_http(address, key) if api == "http" else open_grpc(address, key))


async def eventually_open(api: str, address: str, key: str, timeout: float = TIMEOUT) -> OpenStream:
    """Open a stream, retrying while it is refused: slots are given back at the other workers shortly after a
    stream closes (the close crosses a socket), not in the same instant."""
    deadline = time.monotonic() + timeout
    while True:
        result = await open_stream(api, address, key)
        if isinstance(result, OpenStream):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still refused after {timeout} s: {result}")
        await asyncio.sleep(0.2)


def refused_total(http: str, reason: str) -> float:
    """`gs_event_streams_refused_total{reason}` from `/metrics` (with workers: summed over every worker)."""
    with urllib.request.urlopen(f"{http}/metrics", timeout=TIMEOUT) as response:
        text = response.read().decode()
    prefix = f'gs_event_streams_refused_total{{reason="{reason}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0
