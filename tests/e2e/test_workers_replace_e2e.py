"""`gatewayserver run --workers 2`: a UDP connection and a gRPC link of one gateway on two workers replace each other
(issue 11 "a second link for the same gateway replaces the first", issue 12 "every datagram of a gateway handled by
the same connection state"), as they do within one process.

A gateway's datagrams go to its EUI owner (the kernel's steering); its `LinkGateway` stream to whichever worker
accepted the TCP connection. To put the link on the worker that does NOT own the EUI, each test first links a probe
gateway over a channel (one TCP connection), reads from the daemon-wide `/metrics` which worker holds it, and then
picks the gateway whose EUI the other worker owns; the real link then goes over that same channel.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gatewayserver.api.keys import create_key
from gatewayserver.simulator_grpc import LinkedGateway
from gatewayserver.ttnpb import gatewayserver_pb2_grpc, messages_pb2
from gatewayserver.workers.peers import peer_error
from gatewayserver.workers.spec import owner_of_eui

from downlink.downlink_support import class_a, class_c, token_of
from harness import Forwarder, data_frame, rxpk
from test_workers_e2e import NetworkServerThread, Workers
from test_workers_link_e2e import fresh_channel

CLUSTER_KEY = "00112233445566778899aabbccddeeff"
COUNT = 2
IN_A_ROW = 8  # answers in a row over fresh connections: both workers answered, bar a 1 in 256 chance


def eui_owned_by(owner: int, salt: int) -> bytes:
    for low in range(salt * 1000, salt * 1000 + 1000):
        eui = bytes.fromhex("0016c0aa") + low.to_bytes(4, "big")
        if owner_of_eui(eui, COUNT) == owner:
            return eui
    raise AssertionError("unreachable")


# gateway id -> EUI: one gateway owned by each worker, for each test.
GATEWAYS = {f"gw-{kind}-{owner}": eui_owned_by(owner, salt) for salt, (kind, owner) in enumerate(
    (k, o) for k in ("udp-first", "link-first", "renamed") for o in range(COUNT)
)}


def write_registry(path: Path, gateways: dict[str, bytes]) -> None:
    path.write_text(yaml.safe_dump({"gateways": [
        {"gateway_id": g, "eui": e.hex(), "frequency_plan_id": "EU_863_870"} for g, e in gateways.items()
    ]}))


def start(tmp_path: Path, ns: NetworkServerThread) -> tuple[Workers, str]:
    keys_file = str(tmp_path / "keys.json")
    key, _ = create_key(keys_file, "admin", ["RIGHT_ALL"])
    registry = tmp_path / "gateways.yml"
    write_registry(registry, GATEWAYS)
    workers = Workers(
        tmp_path, COUNT, ns.port, "--keys-file", keys_file, "--cluster-key", CLUSTER_KEY, "--gateways", str(registry),
    )
    return workers, key


def samples(workers: Workers, name: str) -> list[tuple[dict[str, str], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{workers.http_port}/metrics", timeout=20) as response:
        text = response.read().decode()
    return [
        (dict(s.labels), s.value)
        for family in text_string_to_metric_families(text) for s in family.samples if s.name == name
    ]


def replaced(workers: Workers) -> float:
    return sum(v for labels, v in samples(workers, "gs_gateway_disconnects_total") if labels["reason"] == "replaced")


def http_json(workers: Workers, path: str, key: str) -> tuple[int, Any]:
    import urllib.error

    request = urllib.request.Request(
        f"http://127.0.0.1:{workers.http_port}{path}", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # a fresh connection: either worker
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def wait_stats(workers: Workers, key: str, gateway_id: str, protocol: str, timeout: float = 60.0) -> None:
    """Until IN_A_ROW stats answers in a row (each over a fresh connection, so from either worker) say `protocol`
    for a live connection."""
    deadline = time.monotonic() + timeout
    in_a_row, last = 0, None
    while in_a_row < IN_A_ROW:
        status, body = await asyncio.to_thread(
            http_json, workers, f"/api/v3/gs/gateways/{gateway_id}/connection/stats", key
        )
        if status == 200 and body.get("protocol") == protocol and "disconnected_at" not in body:
            in_a_row += 1
            continue
        in_a_row, last = 0, (status, body)
        assert time.monotonic() < deadline, f"{gateway_id} stats never settled on {protocol}: {last}"
        await asyncio.sleep(0.1)


async def connections_of(workers: Workers, key: str, gateway_id: str) -> list[dict[str, Any]]:
    """The daemon-wide list of live connections (every worker's merged), this gateway's entries."""
    status, body = await asyncio.to_thread(http_json, workers, "/api/v3/gs/gateways/connections", key)
    assert status == 200, body
    return [c for c in body["gateways"] if c["gateway_id"] == gateway_id]


async def holding(workers: Workers) -> list[int]:
    """The workers holding a connection (the daemon-wide /metrics has each worker's count)."""
    return [
        int(labels["worker"]) for labels, value in
        await asyncio.to_thread(samples, workers, "gs_worker_gateways_connected") if value >= 1
    ]


async def landing_worker(workers: Workers, channel: grpc.aio.Channel, key: str) -> int:
    """Which worker accepted `channel`'s TCP connection: link a probe over it and ask the merged /metrics."""
    probe = LinkedGateway(channel, "gw-probe", key)
    try:
        async with asyncio.timeout(60):
            while True:
                held = await holding(workers)
                if held:
                    assert len(held) == 1, held
                    return held[0]
                await asyncio.sleep(0.1)
    finally:
        await probe.close()


async def uplink_token(ns: NetworkServerThread, gateway_id: str) -> bytes:
    while True:
        up, _ = await asyncio.to_thread(ns.ns.uplinks.get, True, 30.0)
        if up.rx_metadata[0].gateway_ids.gateway_id == gateway_id:
            return token_of(up)


async def schedule(workers: Workers, message: messages_pb2.DownlinkMessage) -> Any:
    async with fresh_channel(f"127.0.0.1:{workers.grpc_port}") as channel:  # either worker
        try:
            return await gatewayserver_pb2_grpc.NsGsStub(channel).ScheduleDownlink(
                message, metadata=(("authorization", "ClusterKey " + CLUSTER_KEY),), timeout=20
            )
        except grpc.aio.AioRpcError as exc:
            error = peer_error(0, exc)
            raise AssertionError(f"downlink refused: {error.name} {error.details}") from None


async def close(gw: LinkedGateway | None, forwarder: Forwarder | None, channel: grpc.aio.Channel) -> None:
    if gw is not None:
        await gw.close()
    if forwarder is not None:
        forwarder.close()
    await channel.close()


async def class_c_reaches(workers: Workers, forwarder: Forwarder, gateway_id: str) -> None:
    """Downlinks asked at either worker (fresh connections) go out as PULL_RESPs to the forwarder."""
    for _ in range(4):
        forwarder.pull()  # keep-alive, and a fresh downlink path
        response = await schedule(workers, class_c(gateway_id))
        assert response.delay.ToNanoseconds() >= 0
        data = await asyncio.to_thread(forwarder.down.recv, 4096)
        assert data[3] == 0x03 and b'"txpk"' in data, data
        await asyncio.sleep(1.5)  # past this transmission: one radio


def test_a_link_on_the_other_worker_replaces_a_udp_connection(tmp_path: Path) -> None:
    with NetworkServerThread() as ns:
        workers, key = start(tmp_path, ns)
        try:
            asyncio.run(udp_then_link(workers, ns, key))
        finally:
            workers.kill()


async def udp_then_link(workers: Workers, ns: NetworkServerThread, key: str) -> None:
    channel = fresh_channel(f"127.0.0.1:{workers.grpc_port}")
    forwarder: Forwarder | None = None
    gw: LinkedGateway | None = None
    try:
        landed = await landing_worker(workers, channel, key)
        gateway_id = f"gw-udp-first-{1 - landed}"  # owned by the worker the link does not land on
        forwarder = Forwarder(("127.0.0.1", workers.udp_port), GATEWAYS[gateway_id])
        forwarder.up.settimeout(20)
        forwarder.down.settimeout(20)
        forwarder.pull()
        forwarder.push({"rxpk": [rxpk(data_frame())]})
        await uplink_token(ns, gateway_id)  # out of the way of the link's uplink below
        await wait_stats(workers, key, gateway_id, "udp")
        before = await asyncio.to_thread(replaced, workers)

        gw = LinkedGateway(channel, gateway_id, key)
        # The UDP connection is gone: every worker says grpc, one connection in the merged list, one replaced.
        await wait_stats(workers, key, gateway_id, "grpc")
        assert [c["protocol"] for c in await connections_of(workers, key, gateway_id)] == ["grpc"]
        assert await holding(workers) == [landed]  # the link is on the other worker than the UDP connection was
        assert await asyncio.to_thread(replaced, workers) - before == 1
        assert not gw.closed.is_set()

        # A downlink asked at either worker reaches the gRPC stream, and nothing goes to the UDP forwarder.
        await gw.send_uplink(tmst=gw.tmst())
        token = await uplink_token(ns, gateway_id)
        assert (await schedule(workers, class_a(token, cids=("ns:to-link",)))).rx1
        async with asyncio.timeout(20):
            down = await gw.received_downlinks.get()
        assert "ns:to-link" in down.correlation_ids
        forwarder.down.settimeout(1.0)
        try:
            data = forwarder.down.recv(4096)
        except TimeoutError:
            data = b""
        assert data == b"", data
    finally:
        await close(gw, forwarder, channel)


def test_udp_datagrams_on_the_other_worker_replace_a_link(tmp_path: Path) -> None:
    with NetworkServerThread() as ns:
        workers, key = start(tmp_path, ns)
        try:
            asyncio.run(link_then_udp(workers, ns, key))
        finally:
            workers.kill()


async def link_then_udp(workers: Workers, ns: NetworkServerThread, key: str) -> None:
    channel = fresh_channel(f"127.0.0.1:{workers.grpc_port}")
    forwarder: Forwarder | None = None
    gw: LinkedGateway | None = None
    try:
        landed = await landing_worker(workers, channel, key)
        gateway_id = f"gw-link-first-{1 - landed}"  # its datagrams go to the worker the link is not on
        gw = LinkedGateway(channel, gateway_id, key)
        await wait_stats(workers, key, gateway_id, "grpc")  # both workers know of the link
        assert await holding(workers) == [landed]  # where the probe was: the worker not owning the EUI
        before = await asyncio.to_thread(replaced, workers)

        forwarder = Forwarder(("127.0.0.1", workers.udp_port), GATEWAYS[gateway_id])
        forwarder.up.settimeout(20)
        forwarder.down.settimeout(20)
        forwarder.pull()
        forwarder.push({"rxpk": [rxpk(data_frame())]})
        async with asyncio.timeout(60):
            await gw.closed.wait()  # the link's worker ended its stream when told of the newer UDP connection
        assert gw.error is not None and gw.error.code() == grpc.StatusCode.ABORTED, gw.error
        await wait_stats(workers, key, gateway_id, "udp")
        assert [c["protocol"] for c in await connections_of(workers, key, gateway_id)] == ["udp"]
        assert await holding(workers) == [1 - landed]
        assert await asyncio.to_thread(replaced, workers) - before == 1

        await class_c_reaches(workers, forwarder, gateway_id)
    finally:
        await close(gw, forwarder, channel)


def test_a_udp_gateway_renamed_by_a_reload_to_an_id_linked_on_the_other_worker_replaces_the_link(
    tmp_path: Path,
) -> None:
    """As in one process, a forwarder that a registry reload renames to a linked gateway's id takes the id: the
    link on the other worker ends and the forwarder is the gateway's one connection."""
    with NetworkServerThread() as ns:
        workers, key = start(tmp_path, ns)
        try:
            asyncio.run(link_then_rename(workers, ns, key, tmp_path / "gateways.yml"))
        finally:
            workers.kill()


async def link_then_rename(workers: Workers, ns: NetworkServerThread, key: str, registry: Path) -> None:
    channel = fresh_channel(f"127.0.0.1:{workers.grpc_port}")
    forwarder: Forwarder | None = None
    gw: LinkedGateway | None = None
    try:
        landed = await landing_worker(workers, channel, key)
        linked_id = f"gw-renamed-{landed}"  # linked on the worker it lands on
        udp_id = f"gw-renamed-{1 - landed}"  # forwarding to the other worker, which owns its EUI
        gw = LinkedGateway(channel, linked_id, key)
        await wait_stats(workers, key, linked_id, "grpc")  # both workers know of the link
        forwarder = Forwarder(("127.0.0.1", workers.udp_port), GATEWAYS[udp_id])
        forwarder.up.settimeout(20)
        forwarder.down.settimeout(20)
        forwarder.pull()
        forwarder.push({"rxpk": [rxpk(data_frame())]})
        await wait_stats(workers, key, udp_id, "udp")
        assert sorted(await holding(workers)) == [0, 1]
        before = await asyncio.to_thread(replaced, workers)

        # The forwarder's EUI now belongs to the linked gateway's id (the link authenticates by id and stays
        # admitted, as the id is still registered); the forwarder's old id is gone.
        renamed = {g: e for g, e in GATEWAYS.items() if g not in (linked_id, udp_id)}
        renamed[linked_id] = GATEWAYS[udp_id]
        write_registry(registry, renamed)
        reloads = workers.log().count("gateway registry reloaded")
        workers.process.send_signal(signal.SIGHUP)
        async with asyncio.timeout(60):
            while workers.log().count("gateway registry reloaded") < reloads + COUNT:
                await asyncio.sleep(0.1)
            await gw.closed.wait()  # the link's worker ended its stream when told of the rename
        assert gw.error is not None and gw.error.code() == grpc.StatusCode.ABORTED, gw.error
        await wait_stats(workers, key, linked_id, "udp")
        assert [c["protocol"] for c in await connections_of(workers, key, linked_id)] == ["udp"]
        assert await connections_of(workers, key, udp_id) == []
        assert await holding(workers) == [1 - landed]
        assert await asyncio.to_thread(replaced, workers) - before == 1
        assert re.search(r"gateway connected at another worker, replacing the connection here", workers.log())

        await class_c_reaches(workers, forwarder, linked_id)
    finally:
        await close(gw, forwarder, channel)
