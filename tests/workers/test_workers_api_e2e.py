"""One API over several worker processes (issue 12, items 2-4), over real sockets.

Three workers run as separate processes with their own UDP ports (each gateway's datagrams are sent to its owner,
as the kernel's steering will do) and a shared runtime directory; every API call is made to a worker that does NOT
own the gateway concerned, so only forwarding, merging or an internal stream can answer it.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gatewayserver.errors import PERMISSION_DENIED, UNAUTHENTICATED, GsError
from gatewayserver.simulator import SimulatedGateway
from gatewayserver.ttnpb import error_pb2, gatewayserver_pb2, gatewayserver_pb2_grpc, identifiers_pb2
from gatewayserver.workers import framing, transport, wire
from gatewayserver.workers.peers import peer_error
from gatewayserver.workers.spec import socket_path

from downlink.downlink_support import class_a, token_of
from workers_support import CLUSTER_KEY, NetworkServerThread, WorkerProcesses, eui_owned_by, http_json

COUNT = 3
GATEWAYS = [(f"gw-owned-by-{i}", eui_owned_by(i, COUNT)) for i in range(COUNT)]
CLUSTER_METADATA = (("authorization", "ClusterKey " + CLUSTER_KEY),)


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory, ns: NetworkServerThread) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(tmp_path_factory.mktemp("workers"), COUNT, ns.port, GATEWAYS).start()
    yield workers
    workers.stop()


def other_than(group: WorkerProcesses, eui: bytes) -> Any:
    """A worker that does not own `eui`."""
    owner = group.owner(eui)
    return next(w for w in group.workers if w is not owner)


def next_uplink(ns: NetworkServerThread, timeout: float = 15.0) -> Any:
    up, _ = ns.ns.uplinks.get(timeout=timeout)
    return up


async def connect(group: WorkerProcesses, gateway: tuple[str, bytes]) -> SimulatedGateway:
    gw = await SimulatedGateway.connect(group.owner(gateway[1]).udp_address, gateway[1])
    await gw.pull_data()
    assert await gw.wait_for_acks(10.0)
    return gw


async def test_class_a_downlink_requested_at_a_non_owner_reaches_the_gateway_and_its_ack_the_ns(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    gateway_id, eui = GATEWAYS[1]
    gw = await connect(group, GATEWAYS[1])
    try:
        await gw.send_uplink(tmst=gw.tmst())
        up = await asyncio.to_thread(next_uplink, ns)
        assert up.rx_metadata[0].gateway_ids.gateway_id == gateway_id
        front = other_than(group, eui)
        async with grpc.aio.insecure_channel(front.grpc_target) as channel:
            stub = gatewayserver_pb2_grpc.NsGsStub(channel)
            response = await stub.ScheduleDownlink(
                class_a(token_of(up), cids=("ns:routed",)), metadata=CLUSTER_METADATA, timeout=15
            )
        assert response.rx1
        async with asyncio.timeout(15):
            down = await gw.received_downlinks.get()
        assert down.txpk["freq"] == 868.1
        ack = await asyncio.to_thread(ns.ns.tx_acks.get, True, 15.0)
        assert ack.gateway_ids.gateway_id == gateway_id
        assert "ns:routed" in ack.tx_ack.correlation_ids
    finally:
        await gw.close()


async def test_schedule_errors_from_the_owner_reach_the_ns_unchanged(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    """The owner's own reason (a frequency outside the plan's sub-bands), not the front's `not_connected`."""
    gateway_id, eui = GATEWAYS[2]
    gw = await connect(group, GATEWAYS[2])
    try:
        await gw.send_uplink(tmst=gw.tmst())
        up = await asyncio.to_thread(next_uplink, ns)
        message = class_a(token_of(up), rx1_frequency=868_650_000, rx2_frequency=0)
        async with grpc.aio.insecure_channel(other_than(group, eui).grpc_target) as channel:
            stub = gatewayserver_pb2_grpc.NsGsStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ScheduleDownlink(message, metadata=CLUSTER_METADATA, timeout=15)
            assert info.value.code() == grpc.StatusCode.ABORTED
            error = peer_error(0, info.value)  # the client's view: the status and its ErrorDetails trailer
            (details,) = error.details
            path_error = details.path_errors[0]
            assert (path_error.name, path_error.attributes["gateway_uid"]) == ("schedule_path", gateway_id)
            windows = gatewayserver_pb2.ScheduleDownlinkErrorDetails()
            assert path_error.cause.details[0].Unpack(windows)
            assert windows.path_errors[0].cause.name == "sub_band_not_found"
            # Without the cluster key the front worker refuses before anything is forwarded.
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ScheduleDownlink(message, timeout=15)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await gw.close()


async def test_connection_stats_single_and_batch_from_any_worker(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    gws = [await connect(group, g) for g in GATEWAYS]
    try:
        for gw in gws:
            await gw.send_uplink(tmst=gw.tmst())
        for _ in gws:
            await asyncio.to_thread(next_uplink, ns)
        for gateway_id, _ in GATEWAYS:
            for worker in group.workers:
                status, body = await asyncio.to_thread(
                    http_json, f"{worker.http}/api/v3/gs/gateways/{gateway_id}/connection/stats", group.admin_key
                )
                assert status == 200, body
                assert int(body.get("uplink_count", 0)) >= 1
        ids = [{"gateway_id": g} for g, _ in GATEWAYS] + [{"gateway_id": "never-seen"}]
        for worker in group.workers:
            status, body = await asyncio.to_thread(
                http_json, f"{worker.http}/api/v3/gs/gateways/connection/stats", group.admin_key,
                {"gateway_ids": ids},
            )
            assert status == 200, body
            assert sorted(body["entries"]) == sorted(g for g, _ in GATEWAYS)
        # gRPC, with a field mask, at a non-owner.
        async with grpc.aio.insecure_channel(group.workers[0].grpc_target) as channel:
            stub = gatewayserver_pb2_grpc.GsStub(channel)
            metadata = (("authorization", f"Bearer {group.admin_key}"),)
            stats = await stub.GetGatewayConnectionStats(
                identifiers_pb2.GatewayIdentifiers(gateway_id=GATEWAYS[1][0]), metadata=metadata, timeout=15
            )
            assert stats.uplink_count >= 1 and stats.protocol == "udp"
            request = gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest()
            for gateway_id, _ in GATEWAYS:
                request.gateway_ids.add().gateway_id = gateway_id
            request.field_mask.paths.append("uplink_count")
            batch = await stub.BatchGetGatewayConnectionStats(request, metadata=metadata, timeout=15)
            assert sorted(batch.entries) == sorted(g for g, _ in GATEWAYS)
            assert all(e.uplink_count >= 1 and not e.protocol for e in batch.entries.values())
        # global_conf.json of a gateway owned elsewhere.
        with urllib.request.urlopen(
            urllib.request.Request(
                f"{group.workers[0].http}/api/v3/gcs/gateways/{GATEWAYS[1][0]}/semtechudp/global_conf.json",
                headers={"Authorization": f"Bearer {group.admin_key}"},
            ),
            timeout=15,
        ) as response:
            conf = json.loads(response.read())
        assert conf["gateway_conf"]["gateway_ID"].lower() == GATEWAYS[1][1].hex()
        # The gateway list merges every worker's connections.
        for worker in group.workers:
            status, body = await asyncio.to_thread(
                http_json, f"{worker.http}/api/v3/gs/gateways/connections", group.admin_key
            )
            assert status == 200, body
            assert [g["gateway_id"] for g in body["gateways"]] == sorted(g for g, _ in GATEWAYS)
    finally:
        for gw in gws:
            await gw.close()


async def test_events_tail_and_live_from_any_worker(group: WorkerProcesses, ns: NetworkServerThread) -> None:
    gws = [await connect(group, g) for g in GATEWAYS]
    try:
        for gw in gws:
            await gw.send_uplink(tmst=gw.tmst())
        for _ in gws:
            await asyncio.to_thread(next_uplink, ns)
        front = group.workers[0]
        body = {"identifiers": [{"gateway_ids": {"gateway_id": g}} for g, _ in GATEWAYS], "tail": 1000}
        # Every gateway's history (connect, uplinks) is in the tail, whichever worker owns it.
        deadline = time.monotonic() + 20
        while True:
            messages = await asyncio.to_thread(
                read_stream_until_quiet, f"{front.http}/api/v3/events", group.admin_key, body
            )
            events = [m["result"] for m in messages if "result" in m]
            seen = {
                (e["identifiers"][0]["gateway_ids"]["gateway_id"], e["name"]) for e in events if e.get("identifiers")
            }
            if all((g, "gs.up.receive") in seen for g, _ in GATEWAYS) or time.monotonic() > deadline:
                break
        assert events[0]["name"] == "events.stream.start"
        for gateway_id, _ in GATEWAYS:
            assert (gateway_id, "gs.gateway.connect") in seen
            assert (gateway_id, "gs.up.receive") in seen
        times = [e["time"] for e in events[1:]]
        for gateway_id, _ in GATEWAYS:
            mine = [e["time"] for e in events[1:] if e["identifiers"][0]["gateway_ids"]["gateway_id"] == gateway_id]
            assert mine == sorted(mine)
        assert len(times) == len(events) - 1
        # tail=2 over the whole daemon: the last two events of all workers, not two per worker.
        messages = await asyncio.to_thread(
            read_stream_until_quiet, f"{front.http}/api/v3/events", group.admin_key, {**body, "tail": 2}
        )
        assert len([m for m in messages if "result" in m]) == 3  # start + 2
    finally:
        for gw in gws:
            await gw.close()


def read_stream_until_quiet(url: str, key: str, body: dict[str, Any], quiet: float = 3.0) -> list[dict[str, Any]]:
    """Messages of an HTTP event stream until none arrives for `quiet` seconds."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Authorization": f"Bearer {key}"})
    out: list[dict[str, Any]] = []
    with urllib.request.urlopen(request, timeout=20) as response:
        response.fp.raw._sock.settimeout(quiet)  # type: ignore[attr-defined]
        try:
            while True:
                line = response.readline()
                if not line:
                    break
                if line.strip():
                    out.append(json.loads(line))
        except TimeoutError:
            pass
    return out


async def test_live_events_of_a_gateway_owned_elsewhere_reach_a_grpc_stream(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    from gatewayserver.ttnpb import events_pb2, events_pb2_grpc

    gateway_id, eui = GATEWAYS[2]
    front = other_than(group, eui)
    gw = await connect(group, GATEWAYS[2])
    try:
        async with grpc.aio.insecure_channel(front.grpc_target) as channel:
            stub = events_pb2_grpc.EventsStub(channel)
            request = events_pb2.StreamEventsRequest(names=["gs.up.receive"])
            request.identifiers.add().gateway_ids.gateway_id = gateway_id
            stream = stub.Stream(request, metadata=(("authorization", f"Bearer {group.admin_key}"),))
            start = await asyncio.wait_for(stream.read(), 15)
            assert start.name == "events.stream.start"
            # The start event is sent once every worker is listening: an uplink from now on is live everywhere.
            await gw.send_uplink(tmst=gw.tmst())
            event = await asyncio.wait_for(stream.read(), 15)
            assert event.name == "gs.up.receive"
            assert event.identifiers[0].gateway_ids.gateway_id == gateway_id
            stream.cancel()
        await asyncio.to_thread(next_uplink, ns)
    finally:
        await gw.close()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=20) as response:
        return response.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


async def test_metrics_from_any_worker_are_daemon_wide(group: WorkerProcesses, ns: NetworkServerThread) -> None:
    # Uplinks at every worker, whichever tests ran before on this group (xdist may run this one first).
    gws = [await connect(group, g) for g in GATEWAYS]
    try:
        for gw in gws:
            await gw.send_uplink(tmst=gw.tmst())
        for _ in gws:
            await asyncio.to_thread(next_uplink, ns)
    finally:
        for gw in gws:
            await gw.close()
    per_worker = []
    for worker in group.workers:
        # Each worker's own count, read over the internal API the way a peer reads it.
        per_worker.append(sample(await internal_metrics(group, worker.spec.index), "gs_uplinks_received_total") or 0)
    print("uplinks per worker:", per_worker)
    assert all(per_worker)  # every process handled uplinks
    for worker in group.workers:
        text = await asyncio.to_thread(scrape, worker.http)
        assert sample(text, "gs_uplinks_received_total") == sum(per_worker)
        assert sample(text, "gs_gateways_connected", protocol="udp") is not None
        for index in range(COUNT):
            assert sample(text, "gs_worker_up", worker=str(index)) == 1
            assert sample(text, "process_resident_memory_bytes", worker=str(index)) is not None


async def internal_metrics(group: WorkerProcesses, index: int, secret: str | None = None) -> str:
    conn = await transport.connect(index, socket_path(group.runtime_dir, index), (secret or group.secret).encode())
    try:
        return (await conn.call(wire.METRICS.encode(), b"", 15)).decode()
    finally:
        conn.close()


async def test_internal_calls_need_the_worker_secret(group: WorkerProcesses) -> None:
    path = socket_path(group.runtime_dir, 1)
    assert (Path(path).stat().st_mode & 0o777) == 0o600
    # No secret: a call as the connection's first frame gets one refusal, and the connection is closed.
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(framing.encode_call(framing.CALL, 1, wire.METRICS.encode(), 15_000, b""))
    (frame,) = framing.FrameDecoder(framing.SERVER_KINDS).feed(await asyncio.wait_for(reader.read(), 15))
    writer.close()
    assert frame.kind == framing.ERROR and error_pb2.ErrorDetails.FromString(frame.payload).code == UNAUTHENTICATED
    conn = await transport.connect(1, path, ("00" * 32).encode())
    with pytest.raises(GsError) as info:
        await conn.call(wire.METRICS.encode(), b"", 15)
    assert info.value.code == PERMISSION_DENIED and info.value.name == "worker_auth"
    text = await internal_metrics(group, 1)
    assert sample(text, "gs_worker_calls_refused_total", reason="missing") == 1
    assert sample(text, "gs_worker_calls_refused_total", reason="wrong") == 1
    assert group.secret not in group.workers[1].log()


async def test_a_dead_peer_gives_a_clear_error_and_no_hang(tmp_path: Path, ns: NetworkServerThread) -> None:
    gateways = [(f"gw-dead-{i}", eui_owned_by(i, 2, salt=1)) for i in range(2)]
    workers = WorkerProcesses(tmp_path, 2, ns.port, gateways).start()
    try:
        workers.kill(1)
        front = workers.workers[0]
        gateway_id, eui = gateways[1]
        assert workers.owner(eui) is workers.workers[1]
        status, body = await asyncio.to_thread(
            http_json, f"{front.http}/api/v3/gs/gateways/{gateway_id}/connection/stats", workers.admin_key
        )
        assert status == 503, body
        assert "worker 1 is not answering" in body["message"]
        message = class_a(b"")
        del message.request.downlink_paths[:]
        message.request.downlink_paths.add().fixed.gateway_ids.gateway_id = gateway_id
        async with grpc.aio.insecure_channel(front.grpc_target) as channel:
            stub = gatewayserver_pb2_grpc.NsGsStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ScheduleDownlink(message, metadata=CLUSTER_METADATA, timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "worker 1 is not answering" in (info.value.details() or "")
        # The gateway owned by the live worker is still answered.
        status, body = await asyncio.to_thread(
            http_json, f"{front.http}/api/v3/gs/gateways/{gateways[0][0]}/connection/stats", workers.admin_key
        )
        assert status == 404 and "not connected" in body["message"]
        # An event stream naming a gateway of the dead worker ends with the same clear error.
        messages = await asyncio.to_thread(
            read_stream_until_quiet, f"{front.http}/api/v3/events", workers.admin_key,
            {"identifiers": [{"gateway_ids": {"gateway_id": gateway_id}}]},
        )
        assert messages[0]["result"]["name"] == "events.stream.start"
        assert "worker 1 is not answering" in messages[-1]["error"]["message"]
        # The scrape still succeeds and says which worker is missing.
        text = await asyncio.to_thread(scrape, front.http)
        assert sample(text, "gs_worker_up", worker="0") == 1
        assert sample(text, "gs_worker_up", worker="1") == 0
        assert sample(text, "gs_uplinks_received_total") is not None
    finally:
        workers.stop()


async def test_find_related_merges_every_worker(group: WorkerProcesses, ns: NetworkServerThread) -> None:
    gateway_id, eui = GATEWAYS[1]
    gw = await connect(group, GATEWAYS[1])
    try:
        await gw.send_uplink(tmst=gw.tmst())
        up = await asyncio.to_thread(next_uplink, ns)
        correlation_id = next(c for c in up.correlation_ids if c.startswith("gs:uplink:"))
        front = other_than(group, eui)
        status, body = await asyncio.to_thread(
            http_json, f"{front.http}/api/v3/events/related?correlation_id={correlation_id}", group.admin_key
        )
        assert status == 200, body
        names = [e["name"] for e in body["events"]]
        assert "gs.up.receive" in names
        assert {e["identifiers"][0]["gateway_ids"]["gateway_id"] for e in body["events"]} == {gateway_id}
    finally:
        await gw.close()
