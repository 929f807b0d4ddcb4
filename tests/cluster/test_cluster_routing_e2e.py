"""Three instances as one Gateway Server (issue 13, items 2, 3, 5, 6): `gatewayserver run` processes on loopback
sharing one real redis-server and one stand-in Network Server.

A gateway is connected to instance A; the Network Server calls B (or C). Only the owner records in Redis and the
cluster's internal calls can get the downlink to the gateway, the stats to the caller, and the gateway's move to
another instance reflected everywhere.
"""

from __future__ import annotations

import json
import queue
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gatewayserver.ttnpb import gateway_pb2, gatewayserver_pb2_grpc, identifiers_pb2, messages_pb2

from cluster_support import CLUSTER_KEY, Cluster, Instance, in_a_window, pull_resp, redis_get
from downlink.downlink_support import class_a, token_of
from e2e.harness import Forwarder, data_frame, rxpk, wait_for
from redis_support import RedisServer
from workers.workers_support import NetworkServerThread

GATEWAYS = [(f"gw-cluster-{i}", bytes.fromhex(f"00800000a000000{i}")) for i in range(1, 8)]
EUI = dict(GATEWAYS)


def wait(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    try:
        return wait_for(predicate, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def ns() -> Iterator[NetworkServerThread]:
    thread = NetworkServerThread().start()
    yield thread
    thread.stop()


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer, ns: NetworkServerThread) -> Iterator[Cluster]:
    group = Cluster(tmp_path, redis_server, ns.port, ["gs-a", "gs-b", "gs-c"], GATEWAYS).start()
    try:
        yield group
    finally:
        group.stop()


def connect(instance: Instance, gateway_id: str) -> Forwarder:
    """A forwarder sending to `instance` from fresh sockets (a new source address, as after a failover)."""
    gw = Forwarder(instance.udp_address, EUI[gateway_id])
    gw.down.settimeout(15.0)
    gw.pull()
    return gw


def uplink(gw: Forwarder, ns: NetworkServerThread, fcnt: int, tmst: int) -> messages_pb2.UplinkMessage:
    gw.push({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=tmst)]})
    up, _ = ns.ns.uplinks.get(timeout=15)
    return up


def nothing_received(gw: Forwarder, seconds: float = 1.0) -> bool:
    gw.down.settimeout(seconds)
    try:
        gw.down.recvfrom(4096)
    except TimeoutError:
        return True
    finally:
        gw.down.settimeout(15.0)
    return False


def redis_stats(redis: RedisServer, gateway_id: str) -> gateway_pb2.GatewayConnectionStats | None:
    """The stats an owner wrote to Redis."""
    raw = redis_get(redis, f"gs:gw:{gateway_id}:stats")
    return gateway_pb2.GatewayConnectionStats.FromString(raw) if raw is not None else None


def owner_of(redis: RedisServer, gateway_id: str) -> str | None:
    raw = redis_get(redis, f"gs:gw:{gateway_id}:owner")
    return str(json.loads(raw)["instance"]) if raw is not None else None


def tx_ack(gw: Forwarder, token: bytes) -> None:
    gw.down.sendto(bytes([2]) + token + b"\x05" + gw.eui + json.dumps({"txpk_ack": {"error": "NONE"}}).encode(),
                   gw.address)


def stats(instance: Instance, gateway_id: str, key: str) -> tuple[int, dict[str, Any]]:
    status, body = instance.get(f"/api/v3/gs/gateways/{gateway_id}/connection/stats", key)
    return status, json.loads(body)


def batch(instance: Instance, gateway_ids: list[str], key: str) -> dict[str, Any]:
    """Gs.BatchGetGatewayConnectionStats over HTTP: the entries found."""
    request = urllib.request.Request(
        instance.http + "/api/v3/gs/gateways/connection/stats",
        data=json.dumps({"gateway_ids": [{"gateway_id": g} for g in gateway_ids]}).encode(),
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()).get("entries", {}))


def test_downlinks_and_stats_follow_the_gateway_across_instances(
    cluster: Cluster, ns: NetworkServerThread, redis_server: RedisServer
) -> None:
    a, b, c = cluster["gs-a"], cluster["gs-b"], cluster["gs-c"]
    gateway_id = GATEWAYS[0][0]
    gw = connect(a, gateway_id)
    try:
        up = uplink(gw, ns, 1, 1_000_000)
        assert up.rx_metadata[0].gateway_ids.gateway_id == gateway_id
        wait(lambda: owner_of(redis_server, gateway_id) == "gs-a", "A's record")  # claimed within a flush

        # A class A downlink requested at B reaches the gateway through A, and its TX ack the Network Server.
        assert b.schedule(class_a(token_of(up), cids=("ns:cross-instance",)))
        token, txpk = pull_resp(gw)
        assert in_a_window(txpk, 1_000_000)
        tx_ack(gw, token)
        ack = ns.ns.tx_acks.get(timeout=15)
        assert ack.gateway_ids.gateway_id == gateway_id
        assert "ns:cross-instance" in ack.tx_ack.correlation_ids
        assert b.metric("gs_cluster_forwarded_calls_total", method="ScheduleDownlink", code="OK") == 1

        # B asks A for fresh stats; once A has written them to Redis, C answers from there even while A is frozen.
        status, body = stats(b, gateway_id, cluster.admin_key)
        assert status == 200 and int(body["uplink_count"]) == 1 and int(body["downlink_count"]) == 1
        entries = batch(b, [gateway_id, "gw-never-connected"], cluster.admin_key)
        assert list(entries) == [gateway_id] and int(entries[gateway_id]["downlink_count"]) == 1
        wait(lambda: (s := redis_stats(redis_server, gateway_id)) and s.uplink_count == 1, "A's stats in Redis")
        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)  # A cannot answer: C's call to it fails, Redis's copy answers
        try:
            status, body = stats(c, gateway_id, cluster.admin_key)
            entries = batch(c, [gateway_id, "gw-never-connected"], cluster.admin_key)
        finally:
            a.process.send_signal(signal.SIGCONT)
        assert status == 200 and int(body["uplink_count"]) == 1
        assert list(entries) == [gateway_id] and int(entries[gateway_id]["uplink_count"]) == 1
        failed = sum(c.metric("gs_cluster_forwarded_calls_total", method="ConnectionStats", code=code)
                     for code in ("DEADLINE_EXCEEDED", "UNAVAILABLE"))
        assert failed == 2  # C did ask A each time; what it answered with came from Redis
        status, body = stats(c, "gw-never-connected", cluster.admin_key)
        assert status == 404 and "not_connected" in json.dumps(body)

        # The gateway moves to B: its first datagram there makes B the owner, and A lets go of it.
        moved = connect(b, gateway_id)
        try:
            wait(lambda: a.metric("gs_gateway_disconnects_total", reason="moved") == 1, "A disconnecting (moved)")
            assert a.logged("gateway moved to another instance")
            wait(lambda: b.metric("gs_cluster_gateway_moves_total", direction="in") == 1, "B counting the move")
            up = uplink(moved, ns, 2, 5_000_000)
            for front, fcnt in ((a, 3), (c, 4)):
                up = uplink(moved, ns, fcnt, 5_000_000 + fcnt * 1_000_000)
                assert front.schedule(class_a(token_of(up)))
                assert in_a_window(pull_resp(moved)[1], 5_000_000 + fcnt * 1_000_000)
            assert nothing_received(gw)  # A sent nothing more to the old address
            status, body = stats(a, gateway_id, cluster.admin_key)
            assert status == 200 and "disconnected_at" not in body and int(body["uplink_count"]) == 3
        finally:
            moved.close()
    finally:
        gw.close()


def test_sigkill_moves_gateways_to_the_others_and_downlinks_follow(
    cluster: Cluster, ns: NetworkServerThread, redis_server: RedisServer
) -> None:
    a, b, c = cluster["gs-a"], cluster["gs-b"], cluster["gs-c"]
    (g2, _), (g3, _), (g6, _) = GATEWAYS[1], GATEWAYS[2], GATEWAYS[5]
    old = [connect(a, g2), connect(a, g3), connect(a, g6)]
    stranded = None
    for fcnt, gw in enumerate(old):
        stranded = uplink(gw, ns, fcnt, 1_000_000)
    for gateway_id in (g2, g3, g6):  # "a gateway on A": Redis says so (claimed within a flush of connecting)
        wait(lambda g=gateway_id: owner_of(redis_server, g) == "gs-a", f"A's record of {gateway_id}")
    cluster.kill("gs-a")
    to_b, to_c = connect(b, g2), connect(c, g3)
    try:
        wait(lambda: owner_of(redis_server, g2) == "gs-b" and owner_of(redis_server, g3) == "gs-c", "the takeovers")
        sent = {10: to_b, 11: to_c, 12: to_b, 13: to_c}
        ups = {}
        for fcnt, gw in sent.items():
            gw.push({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=fcnt * 1_000_000)]})
        for _ in sent:
            up, _ = ns.ns.uplinks.get(timeout=15)
            ups[int.from_bytes(up.raw_payload[6:8], "little")] = up
        assert sorted(ups) == sorted(sent)
        with pytest.raises(queue.Empty):  # each uplink reached the Network Server once
            ns.ns.uplinks.get(timeout=1.0)
        # Downlinks requested at the instance that does not hold the gateway now follow it.
        assert c.schedule(class_a(token_of(ups[12])))
        assert in_a_window(pull_resp(to_b)[1], 12_000_000)
        assert b.schedule(class_a(token_of(ups[13])))
        assert in_a_window(pull_resp(to_c)[1], 13_000_000)
        # A gateway that did not come back elsewhere: its owner is named as not answering, within the deadline.
        assert stranded is not None
        with pytest.raises(grpc.RpcError) as info:
            b.schedule(class_a(token_of(stranded)))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "instance `gs-a`" in (info.value.details() or ""), info.value.details()
    finally:
        for gw in (*old, to_b, to_c):
            gw.close()


def test_redis_outage_keeps_own_gateways_and_names_the_cause_for_others(
    cluster: Cluster, ns: NetworkServerThread, redis_server: RedisServer
) -> None:
    a, b, c = cluster["gs-a"], cluster["gs-b"], cluster["gs-c"]
    (g4, _), (g5, _), (g7, _) = GATEWAYS[3], GATEWAYS[4], GATEWAYS[6]
    on_a, on_b, on_c = connect(a, g4), connect(b, g5), connect(c, g7)
    try:
        uplink(on_a, ns, 1, 1_000_000)
        wait(lambda: b.metric("gs_cluster_ownership_flushes_total", result="ok") > 0, "B's first flush")
        redis_server.stop()
        for instance in (a, b, c):
            wait(lambda i=instance: i.ready()["degraded"], f"{instance.name} degraded")
            assert instance.get("/readyz")[0] == 200
        # Uplinks reach the Network Server from every instance; A still schedules its own gateway's downlinks.
        up_a = uplink(on_a, ns, 2, 2_000_000)
        up_b = uplink(on_b, ns, 3, 3_000_000)
        assert uplink(on_c, ns, 4, 3_500_000).rx_metadata[0].gateway_ids.gateway_id == g7
        assert a.schedule(class_a(token_of(up_a)))
        assert in_a_window(pull_resp(on_a)[1], 2_000_000)
        # B's gateway from A: the error names Redis as the cause, within the call's deadline.
        with pytest.raises(grpc.RpcError) as info:
            a.schedule(class_a(token_of(up_b)))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Redis" in (info.value.details() or "") and g5 in (info.value.details() or "")
        status, body = stats(a, g5, cluster.admin_key)
        assert status == 503 and "redis_unavailable" in json.dumps(body)
        assert a.metric("gs_cluster_forwards_failed_total", reason="redis_unavailable") >= 2

        redis_server.start()
        for instance in (a, b, c):
            wait(lambda i=instance: i.ready()["degraded"] == [], f"{instance.name} recovered")
        # Redis came back empty: the owners write their records again, and cross-instance calls work again.
        wait(lambda: owner_of(redis_server, g5) == "gs-b", "B's record rewritten")
        up_b = uplink(on_b, ns, 4, 4_000_000)
        assert a.schedule(class_a(token_of(up_b)))
        assert in_a_window(pull_resp(on_b)[1], 4_000_000)
    finally:
        for gw in (on_a, on_b, on_c):
            gw.close()


def test_internal_calls_without_the_cluster_key_are_refused_before_any_work(cluster: Cluster) -> None:
    a = cluster["gs-a"]
    garbage = b"\xff\xff\xff not a message"
    with grpc.insecure_channel(a.grpc_target) as channel:
        call = channel.unary_unary("/gs.cluster.v1.Instance/ScheduleDownlink")
        for metadata, code in (
            ((), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", "ClusterKey " + "00" * 16),), grpc.StatusCode.PERMISSION_DENIED),
            ((("authorization", "Bearer " + CLUSTER_KEY),), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call(garbage, metadata=metadata, timeout=10)
            assert info.value.code() == code, info.value.details()
        # With the key, the same bytes get as far as parsing: the refusals above came before it.
        with pytest.raises(grpc.RpcError) as info:
            call(garbage, metadata=(("authorization", "ClusterKey " + CLUSTER_KEY),), timeout=10)
        assert info.value.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
        stats_call = gatewayserver_pb2_grpc.GsStub(channel).GetGatewayConnectionStats
        with pytest.raises(grpc.RpcError) as info:
            stats_call(identifiers_pb2.GatewayIdentifiers(gateway_id="gw-cluster-1"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert a.metric("gs_cluster_calls_refused_total", reason="missing") == 1
    assert a.metric("gs_cluster_calls_refused_total", reason="wrong") == 2
    assert CLUSTER_KEY not in a.log()
