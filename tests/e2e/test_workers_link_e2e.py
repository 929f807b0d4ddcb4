"""`gatewayserver run --workers 2` with gateways linked over `GtwGs.LinkGateway` through the one shared gRPC port.

The kernel hands each link's TCP connection, and each Network Server call's, to either worker; the gateways have
no registry entry and so no EUI, so only the link table can tell a worker where a link is. Every downlink asked
over a fresh connection must reach its gateway, and every gateway's stats must say `grpc`, whichever worker the
call lands on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from gatewayserver.api.keys import create_key
from gatewayserver.simulator_grpc import LinkedGateway
from gatewayserver.ttnpb import gatewayserver_pb2_grpc, identifiers_pb2
from gatewayserver.workers.peers import peer_error

from downlink.downlink_support import class_a, token_of
from test_workers_e2e import NetworkServerThread, Workers

CLUSTER_KEY = "00112233445566778899aabbccddeeff"
LINKS = 4
CALLS = 4  # per gateway, each over its own connection


def test_linked_gateways_are_found_from_either_worker(tmp_path: Path) -> None:
    keys_file = str(tmp_path / "keys.json")
    link_key, _ = create_key(keys_file, "link", ["RIGHT_GATEWAY_LINK", "RIGHT_GATEWAY_STATUS_READ"])
    with NetworkServerThread() as ns:
        workers = Workers(tmp_path, 2, ns.port, "--keys-file", keys_file, "--cluster-key", CLUSTER_KEY)
        try:
            asyncio.run(exercise(workers, ns, link_key))
        finally:
            workers.kill()


def fresh_channel(target: str) -> grpc.aio.Channel:
    """A channel with its own TCP connection (grpc shares connections between a process's channels by default),
    so the kernel picks a worker for each."""
    return grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


async def exercise(workers: Workers, ns: NetworkServerThread, key: str) -> None:
    target = f"127.0.0.1:{workers.grpc_port}"
    gateways = [
        LinkedGateway(fresh_channel(target), f"gw-sup-{n}", key, own_channel=True) for n in range(LINKS)
    ]
    try:
        metadata = (("authorization", f"Bearer {key}"),)
        for gw in gateways:
            # Linked and known to both workers: stats over fresh connections until enough in a row say grpc.
            in_a_row = 0
            async with asyncio.timeout(60):
                while in_a_row < 2 * CALLS:
                    async with fresh_channel(target) as channel:
                        try:
                            stats = await gatewayserver_pb2_grpc.GsStub(channel).GetGatewayConnectionStats(
                                identifiers_pb2.GatewayIdentifiers(gateway_id=gw.gateway_id), metadata=metadata,
                                timeout=15,
                            )
                        except grpc.aio.AioRpcError as exc:
                            assert exc.code() == grpc.StatusCode.NOT_FOUND, exc  # not linked or announced yet
                            in_a_row = 0
                            await asyncio.sleep(0.1)
                            continue
                    assert stats.protocol == "grpc"
                    in_a_row += 1
        for call in range(CALLS):
            if call:
                await asyncio.sleep(2.5)  # past the previous round's transmissions: one radio per gateway
            for gw in gateways:
                await gw.send_uplink(tmst=gw.tmst())
            tokens = {}
            while len(tokens) < LINKS:
                up, _ = await asyncio.to_thread(ns.ns.uplinks.get, True, 30.0)
                tokens[up.rx_metadata[0].gateway_ids.gateway_id] = token_of(up)
            for gw in gateways:
                async with fresh_channel(target) as channel:  # a fresh connection: either worker
                    try:
                        await gatewayserver_pb2_grpc.NsGsStub(channel).ScheduleDownlink(
                            class_a(tokens[gw.gateway_id], cids=(f"ns:{gw.gateway_id}:{call}",)),
                            metadata=(("authorization", "ClusterKey " + CLUSTER_KEY),), timeout=15,
                        )
                    except grpc.aio.AioRpcError as exc:
                        error = peer_error(0, exc)
                        raise AssertionError(f"{gw.gateway_id} round {call}: {error.details}") from None
            for gw in gateways:
                async with asyncio.timeout(30):
                    down = await gw.received_downlinks.get()
                assert f"ns:{gw.gateway_id}:{call}" in down.correlation_ids
    finally:
        for gw in gateways:
            await gw.close()
