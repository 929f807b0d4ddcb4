"""Events across three instances sharing a real redis-server (`gatewayserver run` processes on loopback).

B's and C's streams (`POST /api/v3/events` and gRPC `Events.Stream`) show A's gateway's events live and with
history through `tail` and `after`, in order per gateway and each event once (counted by unique ID), including when
the gateway moves from A to B and when A is killed with SIGKILL. With Redis stopped, an instance's own events still
stream and the events for Redis are dropped and counted; after Redis is back, cross-instance delivery resumes.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gatewayserver.ttnpb import events_pb2, events_pb2_grpc

from e2e.daemon_process import DaemonProcess
from e2e.harness import Forwarder, data_frame, rxpk, wait_for
from redis_support import RedisServer

CLUSTER_KEY = "ab" * 16
TOKEN_KEY = "cd" * 16
EUI_G = bytes.fromhex("00000000000000A1")
EUI_H = bytes.fromhex("00000000000000B2")
G = "eui-00000000000000a1"
H = "eui-00000000000000b2"


def instance(tmp_path: Path, redis: RedisServer, name: str) -> DaemonProcess:
    workdir = tmp_path / name
    workdir.mkdir()
    return DaemonProcess(
        workdir, "--log-format", "json", "--redis-url", redis.url, "--cluster-key", CLUSTER_KEY,
        "--uplink-token-key", TOKEN_KEY, "--instance-id", name,
    )


def wait(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    try:
        return wait_for(predicate, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}") from None


class HttpStream:
    """`POST /api/v3/events` read by a thread; `events` holds every `result` (the start event included)."""

    def __init__(self, daemon: DaemonProcess, gateways: list[str], **extra: Any) -> None:
        body = {"identifiers": [{"gateway_ids": {"gateway_id": g}} for g in gateways], **extra}
        self.request = urllib.request.Request(
            daemon.http + "/api/v3/events", data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {daemon.admin_key}"},
        )
        self.events: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self._response: Any = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait(lambda: self.events, "the stream's start event")
        assert self.events[0]["name"] == "events.stream.start"

    def _read(self) -> None:
        try:
            with urllib.request.urlopen(self.request, timeout=120) as response:
                self._response = response
                for line in response:
                    if line.strip():
                        message = json.loads(line)
                        if "result" in message:
                            self.events.append(message["result"])
                        else:
                            self.errors.append(message)
        except (OSError, ValueError):
            pass  # closed by the test

    def close(self) -> None:
        if self._response is not None:
            try:
                self._response.fp.raw._sock.shutdown(2)
            except OSError:
                pass
        self._thread.join(10)

    def gateway_events(self, gateway_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events[1:] if e["identifiers"][0]["gateway_ids"]["gateway_id"] == gateway_id]


class GrpcStream:
    """gRPC `Events.Stream` read by a thread; `events` as for `HttpStream`, as JSON-like dicts."""

    def __init__(self, daemon: DaemonProcess, gateways: list[str], **extra: Any) -> None:
        self.channel = grpc.insecure_channel(daemon.grpc_target)
        request = events_pb2.StreamEventsRequest(**extra)
        for gateway_id in gateways:
            request.identifiers.add().gateway_ids.gateway_id = gateway_id
        self.call = events_pb2_grpc.EventsStub(self.channel).Stream(
            request, metadata=(("authorization", f"Bearer {daemon.admin_key}"),)
        )
        self.events: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait(lambda: self.events, "the stream's start event")
        assert self.events[0]["name"] == "events.stream.start"

    def _read(self) -> None:
        try:
            for event in self.call:
                ids = [{"gateway_ids": {"gateway_id": i.gateway_ids.gateway_id}} for i in event.identifiers]
                self.events.append({
                    "name": event.name, "unique_id": event.unique_id, "identifiers": ids,
                    "time": event.time.ToNanoseconds(), "origin": event.origin,
                })
        except grpc.RpcError:
            pass  # cancelled by the test

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(10)
        self.channel.close()

    def gateway_events(self, gateway_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events[1:] if e["identifiers"][0]["gateway_ids"]["gateway_id"] == gateway_id]


def uplinks(stream: HttpStream | GrpcStream, gateway_id: str) -> list[dict[str, Any]]:
    return [e for e in stream.gateway_events(gateway_id) if e["name"] == "gs.up.receive"]


def fcnts(stream: HttpStream) -> list[int]:
    """The frame counters of the uplinks an HTTP stream showed, in the order shown."""
    out = []
    for event in stream.events:
        if event["name"] == "gs.up.receive":
            out.append(int(event["data"]["message"]["payload"]["mac_payload"]["f_hdr"].get("f_cnt", 0)))
    return out


def send(daemon: DaemonProcess, eui: bytes, fcnts: range) -> None:
    gateway = Forwarder(daemon.udp_address, eui)
    try:
        for fcnt in fcnts:
            gateway.push({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=fcnt)]})
    finally:
        gateway.close()


def assert_once(stream: HttpStream | GrpcStream) -> None:
    counts = Counter(e["unique_id"] for e in stream.events)
    assert [uid for uid, n in counts.items() if n > 1] == []


def scrape(daemon: DaemonProcess, name: str, **labels: str) -> float:
    with urllib.request.urlopen(daemon.http + "/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def test_streams_on_b_and_c_show_a_gateway_of_a_live_with_history_once_across_moves_and_a_kill(
    tmp_path: Path, redis: RedisServer
) -> None:
    a, b, c = (instance(tmp_path, redis, name) for name in ("gs-a", "gs-b", "gs-c"))
    streams: list[Any] = []
    try:
        for daemon in (a, b, c):
            daemon.start()
        on_b, on_c = HttpStream(b, [G]), GrpcStream(c, [G])
        streams += [on_b, on_c]

        send(a, EUI_G, range(0, 10))  # the gateway on A
        for stream in (on_b, on_c):
            wait(lambda s=stream: len(uplinks(s, G)) == 10, "A's uplinks live on B and C")

        send(b, EUI_G, range(10, 20))  # it moves to B (the load balancer changed its mind)
        for stream in (on_b, on_c):
            wait(lambda s=stream: len(uplinks(s, G)) == 20, "the uplinks on B, on B and C")

        a.process.kill()  # type: ignore[union-attr]  # SIGKILL: no goodbye, nothing flushed
        a.process.wait(10)  # type: ignore[union-attr]
        a.process = None
        send(c, EUI_G, range(20, 30))  # and reconnects to C
        for stream in (on_b, on_c):
            wait(lambda s=stream: len(uplinks(s, G)) == 30, "the uplinks on C, on B and C")

        time.sleep(1.0)  # anything that would come twice has had time to
        for stream in (on_b, on_c):
            assert len(uplinks(stream, G)) == 30
            assert_once(stream)
        assert fcnts(on_b) == list(range(30))  # the gateway's order, across both moves

        # History from Redis: every instance's events of the gateway, A's included though A is gone.
        tail = HttpStream(c, [G], tail=1000)
        streams.append(tail)
        wait(lambda: len(uplinks(tail, G)) == 30, "the tail on C")
        assert fcnts(tail) == list(range(30))
        assert_once(tail)
        # The same events as B saw live (its stream was open before the gateway's first event). Not in the same
        # order around a move: B has its own events from its bus at once and the others' through Redis, so its
        # disconnect and C's connect may interleave differently from the Redis history (documented).
        on_b_history = {e["unique_id"] for e in on_b.gateway_events(G)}
        assert {e["unique_id"] for e in tail.gateway_events(G)} == on_b_history

        # tail=5 over all instances, and after = the time of the 15th uplink: the same events from B's gRPC API.
        last5 = GrpcStream(b, [G], tail=5)
        streams.append(last5)
        wait(lambda: len(last5.events) == 6, "tail=5 on B")
        assert [e["unique_id"] for e in last5.events[1:]] == [e["unique_id"] for e in tail.events[-5:]]
        fifteenth = uplinks(tail, G)[14]
        after_request = events_pb2.StreamEventsRequest(names=["gs.up.receive"])
        after_request.after.FromJsonString(fifteenth["time"])
        after = GrpcStream(b, [G], names=["gs.up.receive"], after=after_request.after)
        streams.append(after)
        wait(lambda: len(after.events) == 16, "after on B")
        assert [e["unique_id"] for e in after.events[1:]] == [e["unique_id"] for e in uplinks(tail, G)[15:]]
    finally:
        for stream in streams:
            stream.close()
        for daemon in (a, b, c):
            if daemon.process is not None:
                daemon.stop()


def test_redis_stopped_own_events_still_stream_drops_are_counted_and_delivery_resumes(
    tmp_path: Path, redis: RedisServer
) -> None:
    a, b = instance(tmp_path, redis, "gs-a"), instance(tmp_path, redis, "gs-b")
    stream: HttpStream | None = None
    try:
        a.start()
        b.start()
        stream = HttpStream(b, [G, H])
        send(a, EUI_G, range(0, 3))  # G on A, H on B
        send(b, EUI_H, range(0, 3))
        wait(lambda: len(uplinks(stream, G)) == 3 and len(uplinks(stream, H)) == 3, "both before the outage")

        redis.stop()
        for daemon in (a, b):
            wait(lambda d=daemon: _degraded(d), "degraded readiness")
        send(b, EUI_H, range(3, 8))  # B's own gateway: still on B's stream
        wait(lambda: len(uplinks(stream, H)) == 8, "B's own events during the outage")
        send(a, EUI_G, range(3, 8))  # A's: cannot reach B, and A does not keep them
        wait(lambda: scrape(a, "gs_redis_events_dropped_total") >= 5, "A's dropped events counted")
        assert stream.errors == []

        redis.start()
        for daemon in (a, b):
            wait(lambda d=daemon: not _degraded(d), "recovered readiness")
        fcnt = iter(range(100, 200))

        def delivered_again() -> bool:
            send(a, EUI_G, range(next(fcnt), next(fcnt)))  # one uplink (of every other counter) per try
            time.sleep(0.2)
            return any(f >= 100 for f in _fcnts_of(stream, G))

        wait(delivered_again, "A's events on B after Redis is back")
        assert [f for f in _fcnts_of(stream, G) if f < 100] == list(range(3))  # nothing false in between
        assert _fcnts_of(stream, H) == list(range(8))
        assert_once(stream)
        assert scrape(b, "gs_events_dropped_total") == 0
    finally:
        if stream is not None:
            stream.close()
        a.stop()
        b.stop()


def _fcnts_of(stream: HttpStream, gateway_id: str) -> list[int]:
    return [
        int(e["data"]["message"]["payload"]["mac_payload"]["f_hdr"].get("f_cnt", 0))
        for e in uplinks(stream, gateway_id)
    ]


def _degraded(daemon: DaemonProcess) -> bool:
    try:
        with urllib.request.urlopen(daemon.http + "/readyz", timeout=10) as response:
            return bool(json.loads(response.read())["degraded"])
    except urllib.error.HTTPError as exc:
        return bool(json.loads(exc.read())["degraded"])


def test_with_workers_every_event_once_on_any_worker_and_on_the_other_instance(
    tmp_path: Path, redis: RedisServer
) -> None:
    from gatewayserver.workers.spec import owner_of_eui

    euis = [next(e for n in range(256) if owner_of_eui(e := bytes(7) + bytes([n]), 2) == w) for w in (0, 1)]
    ids = [f"eui-{e.hex()}" for e in euis]
    a = instance(tmp_path, redis, "gs-a")
    a.extra = (*a.extra, "--workers", "2")
    b = instance(tmp_path, redis, "gs-b")
    streams: list[Any] = []
    try:
        a.start()
        b.start()
        on_a, on_b = HttpStream(a, [*ids, H]), GrpcStream(b, ids)
        streams += [on_a, on_b]
        for eui in euis:  # one gateway on each of A's workers
            send(a, eui, range(0, 5))
        send(b, EUI_H, range(0, 5))
        for gateway_id in ids:
            wait(lambda g=gateway_id: len(uplinks(on_a, g)) == 5 and len(uplinks(on_b, g)) == 5, "uplinks on A, B")
        wait(lambda: len(uplinks(on_a, H)) == 5, "B's uplinks on A")
        tail = HttpStream(a, [*ids, H], tail=1000)
        streams.append(tail)
        for gateway_id in (*ids, H):
            wait(lambda g=gateway_id: len(uplinks(tail, g)) == 5, "the tail on A")
        time.sleep(1.0)  # anything that would come twice has had time to
        for stream in streams:
            assert_once(stream)
        for stream in (on_a, tail):
            assert [len(uplinks(stream, g)) for g in (*ids, H)] == [5, 5, 5]
            for gateway_id in (*ids, H):
                assert _fcnts_of(stream, gateway_id) == list(range(5))
        assert [len(uplinks(on_b, g)) for g in ids] == [5, 5]
    finally:
        for stream in streams:
            stream.close()
        a.stop()
        b.stop()
