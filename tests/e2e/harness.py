"""A real daemon and a real stand-in Network Server on a background event loop, driven by blocking sockets.

Running the daemon on its own thread lets tests (including hypothesis property tests, which are synchronous) send
real datagrams with plain sockets and wait on real results, while the daemon's loop runs as it does in production.
"""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import empty_pb2
from prometheus_client import REGISTRY

from gatewayserver.config import resolve
from gatewayserver.daemon import Daemon, start_daemon
from gatewayserver.ttnpb import messages_pb2, networkserver_pb2_grpc

from free_ports import free_port


class StandInNetworkServer(networkserver_pb2_grpc.GsNsServicer):
    """Records what it is sent; can be told to fail like an overloaded or restarting Network Server."""

    def __init__(self) -> None:
        self.uplinks: queue.Queue[tuple[messages_pb2.UplinkMessage, tuple[tuple[str, str], ...]]] = queue.Queue()
        self.tx_acks: queue.Queue[Any] = queue.Queue()
        self.fail_with: grpc.StatusCode | None = None

    async def HandleUplink(self, request: Any, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        if self.fail_with is not None:
            await context.abort(self.fail_with, "stand-in told to fail")
        self.uplinks.put((request, tuple(context.invocation_metadata())))
        return empty_pb2.Empty()

    async def ReportTxAcknowledgment(self, request: Any, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self.tx_acks.put(request)
        return empty_pb2.Empty()


def free_udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


def free_tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


class LoopbackPorts:
    """Free UDP, gRPC and HTTP ports on loopback for one daemon process, and the addresses tests dial."""

    def __init__(self) -> None:
        self.udp_port = free_udp_port()
        self.grpc_port = free_tcp_port()
        self.http_port = free_tcp_port()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def udp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.udp_port)


class Harness:
    """Start with `Harness(...).start()`; `stop()` shuts the daemon down the way SIGTERM does."""

    def __init__(self, *, with_ns: bool = True, ns_port: int | None = None, **options: Any) -> None:
        self.with_ns = with_ns
        self.ns_port = ns_port or free_tcp_port()
        self.options = options
        self.ns = StandInNetworkServer()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.daemon: Daemon | None = None
        self._ns_server: grpc.aio.Server | None = None

    def call(self, coro: Any, timeout: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> Harness:
        self.thread.start()
        if self.with_ns:
            self.call(self.start_ns())
        flags = {
            "udp_listen": ["127.0.0.1:0"],
            "http_listen": f"127.0.0.1:{free_tcp_port()}",
            "grpc_listen": f"127.0.0.1:{free_tcp_port()}",
            "ns_address": f"127.0.0.1:{self.ns_port}",
        }
        flags.update(self.options)
        config = resolve(flags, environ={})
        self.daemon = self.call(start_daemon(config))
        return self

    async def start_ns(self) -> None:
        server = grpc.aio.server()
        networkserver_pb2_grpc.add_GsNsServicer_to_server(self.ns, server)
        server.add_insecure_port(f"127.0.0.1:{self.ns_port}")
        await server.start()
        self._ns_server = server

    async def stop_ns(self) -> None:
        if self._ns_server is not None:
            await self._ns_server.stop(0)
            self._ns_server = None

    @property
    def udp_address(self) -> tuple[str, int]:
        assert self.daemon is not None
        return self.daemon.udp_addresses[0]

    def run_in_loop(self, func: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return func()

        return self.call(wrapper())

    def stop(self) -> None:
        try:
            if self.daemon is not None:
                self.call(self.daemon.shutdown())
            self.call(self.stop_ns())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Forwarder:
    """A packet forwarder's two sockets, blocking, for byte-exact protocol checks."""

    def __init__(self, address: tuple[str, int], eui: bytes, version: int = 2) -> None:
        self.address = address
        self.eui = eui
        self.version = version
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (self.up, self.down):
            s.bind(("127.0.0.1", 0))
            s.settimeout(2.0)
        self.token = 0x1000

    def next_token(self) -> bytes:
        self.token = (self.token + 1) & 0xFFFF
        return self.token.to_bytes(2, "big")

    def push(self, body: dict[str, Any] | bytes, *, expect_ack: bool = True) -> bytes | None:
        token = self.next_token()
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.up.sendto(bytes([self.version]) + token + b"\x00" + self.eui + payload, self.address)
        if not expect_ack:
            return None
        ack, _ = self.up.recvfrom(64)
        assert ack == bytes([self.version]) + token + b"\x01", ack
        return ack

    def pull(self) -> bytes:
        token = self.next_token()
        self.down.sendto(bytes([self.version]) + token + b"\x02" + self.eui, self.address)
        ack, _ = self.down.recvfrom(64)
        assert ack == bytes([self.version]) + token + b"\x04", ack
        return ack

    def close(self) -> None:
        self.up.close()
        self.down.close()


def data_frame(dev_addr: int = 0x26011234, fcnt: int = 1, payload: bytes = b"hello", mtype: int = 2) -> bytes:
    """A LoRaWAN 1.0 data uplink (MIC not checked by a Gateway Server)."""
    return (
        bytes([mtype << 5])
        + dev_addr.to_bytes(4, "little")
        + b"\x00"
        + (fcnt & 0xFFFF).to_bytes(2, "little")
        + b"\x01"
        + payload
        + b"\xa1\xb2\xc3\xd4"
    )


def rxpk(data: bytes, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "tmst": 1000000,
        "chan": 0,
        "rfch": 0,
        "freq": 868.1,
        "stat": 1,
        "modu": "LORA",
        "datr": "SF7BW125",
        "codr": "4/5",
        "rssi": -40,
        "lsnr": 9.5,
        "size": len(data),
        "data": base64.b64encode(data).decode(),
    }
    doc.update(fields)
    return doc


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def next_uplink(ns: StandInNetworkServer, timeout: float = 5.0) -> messages_pb2.UplinkMessage:
    return ns.uplinks.get(timeout=timeout)[0]


async def _start_grpc_ns(ns: StandInNetworkServer, port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    networkserver_pb2_grpc.add_GsNsServicer_to_server(ns, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


def start_extra_ns(harness: Harness, port: int) -> tuple[StandInNetworkServer, grpc.aio.Server]:
    """A second Network Server on the harness loop, for routing tests."""
    ns = StandInNetworkServer()
    return ns, harness.call(_start_grpc_ns(ns, port))


class EventRecorder:
    """Subscribes to the daemon's event bus for some gateways and hands back what was published."""

    def __init__(self, harness: Harness, gateway_ids: list[str]) -> None:
        self.harness = harness

        async def subscribe() -> Any:
            return harness.daemon.bus.subscribe(gateway_ids, buffer=10_000)

        self.subscription = harness.call(subscribe())
        self.events: list[Any] = []

    def names(self, timeout: float = 0.5) -> list[str]:
        async def collect() -> list[Any]:
            return await self.subscription.next_batch(10_000, timeout=timeout)

        self.events += self.harness.call(collect())
        return [e.name for e in self.events]

    def wait_for(self, name: str, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.name == name:
                    return event
            self.names(timeout=0.2)
        raise AssertionError(f"no {name} event; got {[e.name for e in self.events]}")
