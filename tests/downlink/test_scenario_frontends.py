"""One scenario through both gateway frontends, compared: everything but the protocol must come out the same.

A Semtech UDP forwarder and a gateway linked through `GtwGs.LinkGateway` each send two uplinks and a status, get a
class A downlink (answered, and the TX acknowledgment checked at the Network Server stand-in) and a class C
downlink, over real sockets against one daemon. What the Network Server, the events and the connection stats saw
is reduced to plain values per gateway; the two reductions must be equal once the protocol field is set aside.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from gatewayserver.simulator import SimulatedGateway
from gatewayserver.ttnpb import gatewayserver_pb2_grpc, messages_pb2

from downlink_support import CLUSTER_KEY, class_a, class_c
from test_link_gateway import GATEWAY, Env, start

UDP_GATEWAY, UDP_EUI = "gw-udp", bytes.fromhex("0016c001ff0000cc")
PAYLOADS = (b"\x40\x01\x02\x03\x04\x00\x01\x00\x01" + bytes(8), b"\x40\x01\x02\x03\x04\x00\x02\x00\x01" + bytes(8))
AUTH = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)


async def wait_uplink(env: Env) -> messages_pb2.UplinkMessage:
    async with asyncio.timeout(10):
        return await env.ns.uplinks.get()


async def wait_ack(env: Env) -> messages_pb2.GatewayTxAcknowledgment:
    async with asyncio.timeout(10):
        return await env.ns.tx_acks.get()


async def scenario(env: Env, gateway_id: str, nsgs: Any, send_uplink: Any, send_status: Any) -> dict[str, Any]:
    uplinks = []
    for payload in PAYLOADS:
        await send_uplink(payload)
        uplinks.append(await wait_uplink(env))
    await send_status()
    async with asyncio.timeout(10):
        while (stats := env.daemon.server.connection_stats(gateway_id)) is None or not stats.HasField("last_status"):
            await asyncio.sleep(0.01)
    first = uplinks[0]
    response_a = await nsgs.ScheduleDownlink(class_a(first.rx_metadata[0].uplink_token), metadata=AUTH)
    ack_a = await wait_ack(env)
    response_c = await nsgs.ScheduleDownlink(class_c(gateway_id), metadata=AUTH)
    ack_c = await wait_ack(env)
    async with asyncio.timeout(10):
        while len([e for e in env.events.of("gs.txack.forward") if e.gateway_ids[0][0] == gateway_id]) < 2:
            await asyncio.sleep(0.01)
    stats = env.daemon.server.connection_stats(gateway_id)
    assert stats is not None
    events = Counter(e.name for e in env.events.events if e.gateway_ids and e.gateway_ids[0][0] == gateway_id)
    return {
        "protocol": stats.protocol,
        "uplinks": [
            (
                up.raw_payload, up.settings.frequency, up.settings.data_rate.lora.spreading_factor,
                [md.gateway_ids.gateway_id for md in up.rx_metadata], bool(up.rx_metadata[0].uplink_token),
                up.received_at.seconds > 0,
            )
            for up in uplinks
        ],
        "class_a": (
            response_a.rx1, ack_a.gateway_ids.gateway_id, ack_a.tx_ack.result,
            "ns:downlink:test" in ack_a.tx_ack.correlation_ids,
            (ack_a.tx_ack.downlink_message.scheduled.timestamp - first.rx_metadata[0].timestamp) % (1 << 32),
            ack_a.tx_ack.downlink_message.scheduled.frequency,
        ),
        "class_c": (
            response_c.rx2, ack_c.gateway_ids.gateway_id, ack_c.tx_ack.result,
            ack_c.tx_ack.downlink_message.scheduled.frequency, bool(ack_c.tx_ack.downlink_message.scheduled.timestamp),
        ),
        "stats": (
            stats.uplink_count, stats.downlink_count, stats.tx_acknowledgment_count, stats.HasField("last_status"),
            stats.round_trip_times.count,
        ),
        "events": dict(sorted(events.items())),
    }


def same_gateway(result: dict[str, Any], gateway_id: str) -> dict[str, Any]:
    """The result with the gateway's own name taken out, so two gateways' results can be compared."""
    def scrub(value: Any) -> Any:
        if value == gateway_id:
            return "<gateway>"
        if isinstance(value, (list, tuple)):
            return type(value)(scrub(v) for v in value)
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        return value

    return {k: scrub(v) for k, v in result.items() if k != "protocol"}


async def test_the_same_scenario_through_udp_and_grpc(tmp_path: Path) -> None:
    env = await start(tmp_path, extra_gateways=[{"eui": UDP_EUI.hex(), "gateway_id": UDP_GATEWAY,
                                                 "frequency_plan_id": "EU_863_870"}])
    channel = grpc.aio.insecure_channel(env.target)
    nsgs = gatewayserver_pb2_grpc.NsGsStub(channel)
    udp = await SimulatedGateway.connect(env.daemon.udp_addresses[0], UDP_EUI)
    try:
        await udp.pull_data()
        assert await udp.wait_for_acks(5.0)

        async def udp_uplink(payload: bytes) -> None:
            await udp.send_uplink(payload, freq=868.1, datr="SF7BW125", rssi=-60)

        async def udp_status() -> None:
            await udp.send_status()

        by_udp = await scenario(env, UDP_GATEWAY, nsgs, udp_uplink, udp_status)

        linked = await env.link()

        async def grpc_uplink(payload: bytes) -> None:
            await linked.send_uplink(payload, freq=868.1, sf=7, rssi=-60)

        async def grpc_status() -> None:
            await linked.send_status()

        by_grpc = await scenario(env, GATEWAY, nsgs, grpc_uplink, grpc_status)
        await linked.close()
    finally:
        await udp.close()
        await channel.close()
        await env.events.close()
        await env.daemon.shutdown()
        await env.ns.stop()
    print("UDP :", by_udp)
    print("gRPC:", by_grpc)
    assert (by_udp["protocol"], by_grpc["protocol"]) == ("udp", "grpc")
    assert by_udp["stats"] == (2, 2, 2, True, 2)
    assert by_udp["class_a"][4] == 1_000_000  # RX1: one second after the uplink, in concentrator µs
    assert same_gateway(by_udp, UDP_GATEWAY) == same_gateway(by_grpc, GATEWAY)
