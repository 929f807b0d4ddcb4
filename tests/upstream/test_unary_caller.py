"""`UnaryCaller` against a real grpc.aio server: the direct Cython path must behave exactly like the stub."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from gatewayserver.ttnpb import messages_pb2, networkserver_pb2_grpc
from gatewayserver.upstream.ns import CHANNEL_OPTIONS
from gatewayserver.upstream.unary import UnaryCaller

PATH = "/ttn.lorawan.v3.GsNs/HandleUplink"
METADATA = (("authorization", "ClusterKey 00112233"),)


class _Ns(networkserver_pb2_grpc.GsNsServicer):
    def __init__(self) -> None:
        self.received: list[tuple[messages_pb2.UplinkMessage, dict[str, str]]] = []
        self.mode = "ok"
        self.cancelled = asyncio.Event()

    async def HandleUplink(self, request: Any, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self.received.append((request, dict(context.invocation_metadata())))
        if self.mode == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "ns is restarting")
        if self.mode == "slow":
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return empty_pb2.Empty()


@pytest.fixture
async def ns_channel():
    ns = _Ns()
    server = grpc.aio.server()
    networkserver_pb2_grpc.add_GsNsServicer_to_server(ns, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)  # the daemon's own options
    try:
        yield ns, channel
    finally:
        await channel.close()
        await server.stop(None)


def _uplink() -> messages_pb2.UplinkMessage:
    m = messages_pb2.UplinkMessage()
    m.raw_payload = b"\x40\x34\x12\x01\x26\x00\x01\x00\x01hello1234"
    m.settings.frequency = 868_100_000
    m.correlation_ids.append("gs:uplink:01TEST")
    return m


def test_the_installed_grpcio_takes_the_direct_path():
    async def check() -> bool:
        channel = grpc.aio.insecure_channel("127.0.0.1:9")
        try:
            return UnaryCaller(channel, PATH).direct
        finally:
            await channel.close()

    # If this fails, a grpcio upgrade moved the internals: every uplink silently takes the slower stub path.
    assert asyncio.run(check()) is True


@pytest.mark.parametrize("direct", [True, False])
async def test_message_and_metadata_arrive(ns_channel, direct):
    ns, channel = ns_channel
    caller = UnaryCaller(channel, PATH, allow_direct=direct)
    assert caller.direct is direct
    await caller(_uplink(), METADATA, 5.0)
    await caller(_uplink().SerializeToString(), METADATA, 5.0)  # pre-serialized requests are sent as they are
    assert [m for m, _ in ns.received] == [_uplink(), _uplink()]
    assert ns.received[0][1]["authorization"] == "ClusterKey 00112233"


@pytest.mark.parametrize("direct", [True, False])
async def test_server_errors_raise_the_same_aio_rpc_error(ns_channel, direct):
    ns, channel = ns_channel
    ns.mode = "unavailable"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await UnaryCaller(channel, PATH, allow_direct=direct)(_uplink(), METADATA, 5.0)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "ns is restarting"


@pytest.mark.parametrize("direct", [True, False])
async def test_deadline_exceeded(ns_channel, direct):
    ns, channel = ns_channel
    ns.mode = "slow"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await UnaryCaller(channel, PATH, allow_direct=direct)(_uplink(), METADATA, 0.2)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("direct", [True, False])
async def test_cancelling_the_caller_cancels_the_rpc(ns_channel, direct):
    ns, channel = ns_channel
    ns.mode = "slow"
    task = asyncio.create_task(UnaryCaller(channel, PATH, allow_direct=direct)(_uplink(), METADATA, 30.0))
    while not ns.received:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(ns.cancelled.wait(), 5)


async def test_unreachable_server_is_unavailable():
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await UnaryCaller(channel, PATH)(_uplink(), METADATA, 2.0)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
