"""NsGs.ScheduleDownlink through the real gRPC API: cluster-key auth, the response, and error details on the wire."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from downlink_support import CLUSTER_METADATA, class_a, token_of

from gatewayserver.api.errors import STATUS_DETAILS_KEY, decode_rpc_status
from gatewayserver.ttnpb import error_pb2, gatewayserver_pb2


async def test_schedule_downlink_over_grpc(harness) -> None:
    stub = await harness.ns_gs()
    gw = await harness.gateway()
    up, tmst = await harness.uplink(gw)
    response = await stub.ScheduleDownlink(class_a(token_of(up)), metadata=CLUSTER_METADATA, timeout=5)
    assert response.rx1 and not response.rx2
    assert response.downlink_path.uplink_token == token_of(up)
    async with asyncio.timeout(3.0):
        down = await gw.received_downlinks.get()
    assert down.txpk["tmst"] == (tmst + 1_000_000) % (1 << 32)


async def test_schedule_downlink_errors_over_grpc(harness) -> None:
    stub = await harness.ns_gs()
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    await stub.ScheduleDownlink(class_a(token_of(up), rx2_frequency=0), metadata=CLUSTER_METADATA, timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ScheduleDownlink(class_a(token_of(up), rx2_frequency=0), metadata=CLUSTER_METADATA, timeout=5)
    exc = info.value
    assert exc.code() == grpc.StatusCode.ABORTED
    trailers = dict(exc.trailing_metadata() or ())
    code, _, details = decode_rpc_status(trailers[STATUS_DETAILS_KEY])
    assert code == grpc.StatusCode.ABORTED.value[0]
    top = error_pb2.ErrorDetails()
    assert details[0].Unpack(top)
    assert (top.namespace, top.name) == ("pkg/gatewayserver", "schedule")
    per_path = gatewayserver_pb2.ScheduleDownlinkErrorDetails()
    assert top.details[0].Unpack(per_path)
    tx_schedule = per_path.path_errors[0].cause
    windows = gatewayserver_pb2.ScheduleDownlinkErrorDetails()
    assert tx_schedule.details[0].Unpack(windows)
    assert [w.cause.name for w in windows.path_errors] == ["conflict", "rx_empty"]


async def test_schedule_downlink_needs_cluster_key(harness) -> None:
    stub = await harness.ns_gs()
    gw = await harness.gateway()
    up, _ = await harness.uplink(gw)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ScheduleDownlink(class_a(token_of(up)), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ScheduleDownlink(
            class_a(token_of(up)), metadata=(("authorization", "ClusterKey " + "ff" * 16),), timeout=5
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await asyncio.sleep(0.3)
    assert gw.received_downlinks.empty()
