"""A gateway linked over `GtwGs.LinkGateway` is owned by the worker that accepted its stream (issue 12 item 2).

Three worker processes as in test_workers_api_e2e.py. Each gateway links to a worker that is NOT its EUI owner,
and its downlinks and stats are asked of the third worker, so only the cross-worker link table can route them.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from gatewayserver.simulator_grpc import LinkedGateway
from gatewayserver.ttnpb import gatewayserver_pb2_grpc
from gatewayserver.workers.peers import peer_error

from downlink.downlink_support import class_a, token_of
from test_workers_api_e2e import sample
from workers_support import CLUSTER_KEY, NetworkServerThread, WorkerProcesses, Worker, eui_owned_by, http_json

COUNT = 3
# Every gateway's EUI is owned by worker 0; each links to worker 1 and is asked about at worker 2.
GATEWAYS = [(f"gw-linked-{n}", eui_owned_by(0, COUNT, salt=n + 1)) for n in range(4)]
CLUSTER_METADATA = (("authorization", "ClusterKey " + CLUSTER_KEY),)


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory, ns: NetworkServerThread) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(tmp_path_factory.mktemp("links"), COUNT, ns.port, GATEWAYS).start()
    for _, eui in GATEWAYS:
        assert workers.owner(eui) is workers.workers[0]
    yield workers
    workers.stop()


async def link(group: WorkerProcesses, worker: Worker, gateway_id: str) -> LinkedGateway:
    return await LinkedGateway.connect(worker.grpc_target, gateway_id, group.admin_key)


async def stats(group: WorkerProcesses, worker: Worker, gateway_id: str) -> tuple[int, Any]:
    return await asyncio.to_thread(
        http_json, f"{worker.http}/api/v3/gs/gateways/{gateway_id}/connection/stats", group.admin_key
    )


async def wait_linked_everywhere(group: WorkerProcesses, gateway_id: str, timeout: float = 30.0) -> None:
    """Until every worker answers the gateway's stats as a live gRPC link (the announcements are asynchronous)."""
    deadline = time.monotonic() + timeout
    for worker in group.workers:
        while True:
            status, body = await stats(group, worker, gateway_id)
            if status == 200 and body.get("protocol") == "grpc" and "disconnected_at" not in body:
                break
            assert time.monotonic() < deadline, (worker.spec.index, status, body)
            await asyncio.sleep(0.1)


def scrape(worker: Worker) -> str:
    with urllib.request.urlopen(worker.http + "/metrics", timeout=20) as response:
        return str(response.read().decode())


async def uplink_token(ns: NetworkServerThread, gw: LinkedGateway) -> bytes:
    await gw.send_uplink(tmst=gw.tmst())
    while True:
        up, _ = await asyncio.to_thread(ns.ns.uplinks.get, True, 15.0)
        if up.rx_metadata[0].gateway_ids.gateway_id == gw.gateway_id:
            return token_of(up)


async def schedule(worker: Worker, message: Any) -> Any:
    async with grpc.aio.insecure_channel(worker.grpc_target) as channel:
        stub = gatewayserver_pb2_grpc.NsGsStub(channel)
        return await stub.ScheduleDownlink(message, metadata=CLUSTER_METADATA, timeout=15)


async def next_ack(ns: NetworkServerThread, gateway_id: str) -> Any:
    while True:
        ack = await asyncio.to_thread(ns.ns.tx_acks.get, True, 15.0)
        if ack.gateway_ids.gateway_id == gateway_id:
            return ack


async def test_class_a_downlink_at_a_third_worker_reaches_the_linked_gateway_and_its_ack_the_ns(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    gateway_id, _ = GATEWAYS[0]
    gw = await link(group, group.workers[1], gateway_id)
    try:
        await wait_linked_everywhere(group, gateway_id)
        token = await uplink_token(ns, gw)
        response = await schedule(group.workers[2], class_a(token, cids=("ns:linked-routed",)))
        assert response.rx1
        async with asyncio.timeout(15):
            down = await gw.received_downlinks.get()
        assert down.scheduled.frequency == 868_100_000
        ack = await next_ack(ns, gateway_id)
        assert "ns:linked-routed" in ack.tx_ack.correlation_ids
    finally:
        await gw.close()


async def test_connection_stats_of_a_linked_gateway_from_every_worker(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    gateway_id, _ = GATEWAYS[1]
    gw = await link(group, group.workers[1], gateway_id)
    try:
        await wait_linked_everywhere(group, gateway_id)
        await uplink_token(ns, gw)
        for worker in group.workers:
            status, body = await stats(group, worker, gateway_id)
            assert status == 200 and body["protocol"] == "grpc" and int(body["uplink_count"]) >= 1, body
        for worker in group.workers:  # and in the merged batch
            status, body = await asyncio.to_thread(
                http_json, f"{worker.http}/api/v3/gs/gateways/connection/stats", group.admin_key,
                {"gateway_ids": [{"gateway_id": gateway_id}]},
            )
            assert status == 200 and body["entries"][gateway_id]["protocol"] == "grpc", body
        # The link counts for the worker that accepted it, whichever worker is scraped.
        for worker in group.workers:
            text = await asyncio.to_thread(scrape, worker)
            assert (sample(text, "gs_worker_gateways_connected", worker="1") or 0) >= 1, text
    finally:
        await gw.close()


async def test_after_the_stream_closes_a_downlink_at_another_worker_is_not_connected(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    gateway_id, _ = GATEWAYS[2]
    gw = await link(group, group.workers[1], gateway_id)
    closed = False
    try:
        await wait_linked_everywhere(group, gateway_id)
        token = await uplink_token(ns, gw)
        assert (await schedule(group.workers[2], class_a(token))).rx1  # routed to the link while it is up
        await gw.close()
        closed = True
        deadline = time.monotonic() + 30
        while True:
            try:
                await schedule(group.workers[2], class_a(token))
            except grpc.aio.AioRpcError as exc:
                error = peer_error(0, exc)
                (details,) = error.details
                causes = [p.cause.name for p in details.path_errors]
                if causes == ["not_connected"]:
                    break
                last = (error.name, causes)
            else:
                last = ("scheduled", [])
            assert time.monotonic() < deadline, f"the closed link still took downlinks: {last}"
            await asyncio.sleep(0.2)
    finally:
        if not closed:
            await gw.close()


async def test_a_second_link_on_another_worker_replaces_the_first(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    gateway_id, _ = GATEWAYS[3]
    first = await link(group, group.workers[1], gateway_id)
    second: LinkedGateway | None = None
    try:
        await wait_linked_everywhere(group, gateway_id)
        second = await link(group, group.workers[2], gateway_id)
        async with asyncio.timeout(30):
            await first.closed.wait()  # the first worker ended its stream when told of the newer link
        assert first.error is not None and first.error.code() == grpc.StatusCode.ABORTED, first.error
        assert not second.closed.is_set()
        # Every worker now routes to the second link: a downlink asked at worker 0 (the EUI owner) reaches it.
        await wait_linked_everywhere(group, gateway_id)
        token = await uplink_token(ns, second)
        assert (await schedule(group.workers[0], class_a(token, cids=("ns:second",)))).rx1
        async with asyncio.timeout(15):
            await second.received_downlinks.get()
        ack = await next_ack(ns, gateway_id)
        assert "ns:second" in ack.tx_ack.correlation_ids
        assert first.received_downlinks.empty()
    finally:
        await first.close()
        if second is not None:
            await second.close()
