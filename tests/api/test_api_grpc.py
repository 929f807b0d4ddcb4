"""The gRPC API over a real socket with generated stubs."""

from __future__ import annotations

import asyncio

import grpc
import orjson
import pytest
from conftest import CLUSTER_KEY, EUI1, Env, now_ns
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gatewayserver.api.errors import STATUS_DETAILS_KEY, decode_rpc_status
from gatewayserver.events.definitions import GS_UP_RECEIVE
from gatewayserver.ttnpb import (
    error_pb2,
    events_pb2,
    events_pb2_grpc,
    gateway_configuration_pb2,
    gateway_configuration_pb2_grpc,
    gatewayserver_pb2,
    gatewayserver_pb2_grpc,
    identifiers_pb2,
    messages_pb2,
)


def error_details(err: grpc.aio.AioRpcError) -> error_pb2.ErrorDetails:
    trailers = dict(err.trailing_metadata() or ())
    code, message, details = decode_rpc_status(trailers[STATUS_DETAILS_KEY])
    assert code == err.code().value[0]
    assert message == err.details()
    out = error_pb2.ErrorDetails()
    assert details[0].Unpack(out)
    return out


def bearer(env: Env, name: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {env.keys[name]}"),)


async def test_gs_connection_stats(env: Env) -> None:
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        gs = gatewayserver_pb2_grpc.GsStub(channel)
        stats = await gs.GetGatewayConnectionStats(
            identifiers_pb2.GatewayIdentifiers(gateway_id="gtw1"), metadata=bearer(env, "status")
        )
        assert stats.protocol == "udp" and stats.uplink_count == 42

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gs.GetGatewayConnectionStats(
                identifiers_pb2.GatewayIdentifiers(gateway_id="gtw9"), metadata=bearer(env, "status")
            )
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "error:pkg/gatewayserver:not_connected (gateway `gtw9` not connected)"
        details = error_details(info.value)
        assert (details.namespace, details.name, details.code) == ("pkg/gatewayserver", "not_connected", 5)
        assert dict(details.attributes) == {"gateway_uid": "gtw9"}

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gs.GetGatewayConnectionStats(identifiers_pb2.GatewayIdentifiers(gateway_id="gtw1"))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gs.GetGatewayConnectionStats(
                identifiers_pb2.GatewayIdentifiers(gateway_id="gtw1"), metadata=bearer(env, "traffic")
            )
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED

        req = gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest()
        req.gateway_ids.add(gateway_id="gtw1")
        req.field_mask.paths.append("uplink_count")
        batch = await gs.BatchGetGatewayConnectionStats(req, metadata=bearer(env, "admin"))
        assert batch.entries["gtw1"].uplink_count == 42 and not batch.entries["gtw1"].protocol


def downlink() -> messages_pb2.DownlinkMessage:
    msg = messages_pb2.DownlinkMessage(raw_payload=b"\x60\x01")
    msg.request.downlink_paths.add().uplink_token = b"token"
    msg.correlation_ids.append("ns:downlink:1")
    return msg


@pytest.mark.parametrize(
    ("metadata", "code", "name"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "no_cluster_key"),
        ((("authorization", "ClusterKey " + "00" * 16),), grpc.StatusCode.PERMISSION_DENIED, "cluster_key"),
        ((("authorization", "ClusterKey zz"),), grpc.StatusCode.PERMISSION_DENIED, "cluster_key"),
        ((("authorization", "Bearer " + CLUSTER_KEY.hex()),), grpc.StatusCode.INVALID_ARGUMENT, "auth_type"),
    ],
)
async def test_nsgs_cluster_key_rejections(env: Env, metadata: tuple, code: grpc.StatusCode, name: str) -> None:
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gatewayserver_pb2_grpc.NsGsStub(channel).ScheduleDownlink(downlink(), metadata=metadata)
    assert info.value.code() == code
    details = error_details(info.value)
    assert (details.namespace, details.name) == ("pkg/auth/cluster", name)
    assert not env.gs.scheduled


async def test_nsgs_schedule_downlink_delegates(env: Env) -> None:
    metadata = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        stub = gatewayserver_pb2_grpc.NsGsStub(channel)
        response = await stub.ScheduleDownlink(downlink(), metadata=metadata)
        assert response.rx1 and response.delay.ToNanoseconds() == 1_500_000_000
        assert env.gs.scheduled[0].raw_payload == b"\x60\x01"
        failing = downlink()
        failing.correlation_ids.append("fail")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ScheduleDownlink(failing, metadata=metadata)
        assert info.value.code() == grpc.StatusCode.ABORTED
        assert error_details(info.value).name == "schedule"


async def test_events_stream_over_grpc(env: Env) -> None:
    request = events_pb2.StreamEventsRequest(names=["/^gs\\.up\\./"])
    request.identifiers.add().gateway_ids.gateway_id = "gtw1"
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        call = events_pb2_grpc.EventsStub(channel).Stream(request, metadata=bearer(env, "traffic"))
        start = await asyncio.wait_for(call.read(), 5)
        assert start.name == "events.stream.start"
        event = GS_UP_RECEIVE.new(now_ns(), (("gtw1", EUI1),), messages_pb2.GatewayUplinkMessage(band_id="EU_863_870"))
        env.bus.publish(event)
        got = await asyncio.wait_for(call.read(), 5)
        assert got.name == "gs.up.receive" and got.unique_id == event.unique_id
        assert got.identifiers[0].gateway_ids.eui == EUI1
        data = messages_pb2.GatewayUplinkMessage()
        assert got.data.Unpack(data) and data.band_id == "EU_863_870"
        assert list(got.visibility.rights) == [35]
        call.cancel()

        bad = events_pb2.StreamEventsRequest(names=["nope"])
        bad.identifiers.add().gateway_ids.gateway_id = "gtw1"
        call = events_pb2_grpc.EventsStub(channel).Stream(bad, metadata=bearer(env, "traffic"))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(info.value).name == "unknown_event_name"


async def test_gateway_configuration_over_grpc(env: Env) -> None:
    req = gateway_configuration_pb2.GetGatewayConfigurationRequest(format="semtechudp", filename="global_conf.json")
    req.gateway_ids.gateway_id = "gtw1"
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        stub = gateway_configuration_pb2_grpc.GatewayConfigurationServiceStub(channel)
        response = await stub.GetGatewayConfiguration(req, metadata=bearer(env, "info"))
        conf = orjson.loads(response.contents)
        assert conf["gateway_conf"]["gateway_ID"] == "B827EBFFFE8DB887"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetGatewayConfiguration(req, metadata=bearer(env, "status"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_health_and_reflection(env: Env) -> None:
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "ttn.lorawan.v3.NsGs", "ttn.lorawan.v3.Events"):
            response = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        response = await call.read()
        await call.done_writing()
        names = {s.name for s in response.list_services_response.service}
        assert {"ttn.lorawan.v3.Gs", "ttn.lorawan.v3.NsGs", "ttn.lorawan.v3.Events",
                "ttn.lorawan.v3.GatewayConfigurationService", "grpc.health.v1.Health"} <= names


async def test_find_related_over_grpc(env: Env) -> None:
    env.bus.publish(GS_UP_RECEIVE.new(now_ns(), (("gtw1", EUI1),), None, ("gs:uplink:related-test",)))
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        stub = events_pb2_grpc.EventsStub(channel)
        request = events_pb2.FindRelatedEventsRequest(correlation_id="gs:uplink:related-test")
        response = await stub.FindRelated(request, metadata=bearer(env, "traffic"))
        assert [e.name for e in response.events] == ["gs.up.receive"]
        assert response.events[0].identifiers[0].gateway_ids.gateway_id == "gtw1"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.FindRelated(events_pb2.FindRelatedEventsRequest(), metadata=bearer(env, "traffic"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
