"""`ttn.lorawan.v3.GtwGs` unary calls over real gRPC and HTTP: who may call, and what the gateway is told."""

from __future__ import annotations

import aiohttp
import grpc
import pytest
from google.protobuf import empty_pb2

from gatewayserver.ttnpb import gatewayserver_pb2_grpc, identifiers_pb2

from conftest import Env
from test_api_grpc import error_details


def link(env: Env, key: str, gateway_id: str | None) -> tuple[tuple[str, str], ...]:
    metadata = [("authorization", f"Bearer {env.keys[key]}")]
    if gateway_id is not None:
        metadata.append(("id", gateway_id))
    return tuple(metadata)


async def test_concentrator_config_of_a_linked_gateway(env: Env) -> None:
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        gtwgs = gatewayserver_pb2_grpc.GtwGsStub(channel)
        config = await gtwgs.GetConcentratorConfig(empty_pb2.Empty(), metadata=link(env, "link_gtw1", "gtw1"))
    # EU_863_870: the default channels on radio 1 and five more on radio 0, SF7BW250 standard channel, FSK.
    assert [(c.frequency, c.radio) for c in config.channels] == [
        (868_100_000, 1), (868_300_000, 1), (868_500_000, 1), (867_100_000, 0),
        (867_300_000, 0), (867_500_000, 0), (867_700_000, 0), (867_900_000, 0),
    ]
    std = config.lora_standard_channel
    assert (std.frequency, std.radio, std.bandwidth, std.spreading_factor) == (868_300_000, 1, 250_000, 7)
    assert (config.fsk_channel.frequency, config.fsk_channel.radio) == (868_800_000, 1)
    assert [(r.frequency, r.enable, r.tx_configuration.min_frequency) for r in config.radios] == [
        (867_500_000, True, 863_000_000), (868_500_000, True, 0)
    ]
    assert config.ping_slot.frequency == 869_525_000
    assert config.clock_source == 1


async def test_concentrator_config_combines_every_plan(env: Env) -> None:
    """A 16-channel US gateway: both FSBs' channels, each pointing at its own concentrator's radios."""
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        gtwgs = gatewayserver_pb2_grpc.GtwGsStub(channel)
        config = await gtwgs.GetConcentratorConfig(empty_pb2.Empty(), metadata=link(env, "link_gtw1", "gtw-us16"))
    assert len(config.radios) == 4
    # Each FSB: eight 125 kHz channels, in plan order (the 500 kHz channel is the LoRa standard channel).
    fsb1, fsb2 = config.channels[:8], config.channels[8:]
    assert [c.frequency for c in fsb1][:2] == [902_300_000, 902_500_000] and len(fsb2) == 8
    assert [c.frequency for c in fsb2][:2] == [903_900_000, 904_100_000]
    assert {c.radio for c in fsb1} == {0, 1} and {c.radio for c in fsb2} == {2, 3}
    assert config.lora_standard_channel.frequency == 903_000_000  # the first plan's 500 kHz channel


@pytest.mark.parametrize(
    ("key", "gateway_id", "code", "name"),
    [
        (None, "gtw1", grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"),
        ("link_gtw1", None, grpc.StatusCode.INVALID_ARGUMENT, "no_gateway_id"),
        ("link_gtw1", "gtw-us", grpc.StatusCode.PERMISSION_DENIED, "no_gateway_rights"),  # another gateway's
        ("info", "gtw1", grpc.StatusCode.PERMISSION_DENIED, "insufficient_gateway_rights"),  # lacks the link right
    ],
)
async def test_concentrator_config_refusals(
    env: Env, key: str | None, gateway_id: str | None, code: grpc.StatusCode, name: str
) -> None:
    metadata = link(env, key, gateway_id) if key else ((("id", gateway_id),) if gateway_id else ())
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        gtwgs = gatewayserver_pb2_grpc.GtwGsStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gtwgs.GetConcentratorConfig(empty_pb2.Empty(), metadata=metadata)
    assert info.value.code() == code
    assert error_details(info.value).name == name


async def test_mqtt_connection_info_over_grpc(env: Env) -> None:
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        gtwgs = gatewayserver_pb2_grpc.GtwGsStub(channel)
        ids = identifiers_pb2.GatewayIdentifiers(gateway_id="gtw1")
        info = await gtwgs.GetMQTTConnectionInfo(ids, metadata=link(env, "link_gtw1", None))  # LINK implies INFO
        assert (info.public_address, info.public_tls_address, info.username) == (
            "mqtt.example.com:1882", "mqtt.example.com:8882", "gtw1"
        )
        with pytest.raises(grpc.aio.AioRpcError) as v2:
            await gtwgs.GetMQTTV2ConnectionInfo(ids, metadata=link(env, "info", None))
        assert v2.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert error_details(v2.value).name == "no_configuration_provider"
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await gtwgs.GetMQTTConnectionInfo(ids, metadata=link(env, "status", None))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_mqtt_connection_info_over_http(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{env.http}/api/v3/gs/gateways/gtw1/mqtt-connection-info"
        async with session.get(url, headers=env.auth("info")) as response:
            assert response.status == 200
            assert await response.json() == {
                "public_address": "mqtt.example.com:1882",
                "public_tls_address": "mqtt.example.com:8882",
                "username": "gtw1",
            }
        async with session.get(url.replace("mqtt-", "mqttv2-"), headers=env.auth("info")) as response:
            assert response.status == 501
            assert (await response.json())["details"][0]["name"] == "no_configuration_provider"
        async with session.get(url, headers=env.auth("traffic")) as response:
            assert response.status == 403
        async with session.get(url) as response:
            assert response.status == 401
