"""End-to-end harness for the downlink tests.

In-process daemon, stand-in Network Server over gRPC, simulated forwarders.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2

from gatewayserver.config import resolve
from gatewayserver.daemon import Daemon, start_daemon
from gatewayserver.simulator import SimulatedGateway
from gatewayserver.ttnpb import lorawan_pb2, messages_pb2, networkserver_pb2_grpc

EUI = bytes.fromhex("0016c001ff000001")
GATEWAY_ID = "gw-one"
CLUSTER_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
CLUSTER_METADATA = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)


class StandinNetworkServer(networkserver_pb2_grpc.GsNsServicer):
    """Receives HandleUplink / ReportTxAcknowledgment like a Network Server and lets tests wait for them."""

    def __init__(self) -> None:
        self.uplinks: asyncio.Queue[messages_pb2.UplinkMessage] = asyncio.Queue()
        self.tx_acks: asyncio.Queue[messages_pb2.GatewayTxAcknowledgment] = asyncio.Queue()
        self.server: grpc.aio.Server | None = None
        self.address = ""

    async def HandleUplink(self, request: Any, context: Any) -> empty_pb2.Empty:
        await self.uplinks.put(request)
        return empty_pb2.Empty()

    async def ReportTxAcknowledgment(self, request: Any, context: Any) -> empty_pb2.Empty:
        await self.tx_acks.put(request)
        return empty_pb2.Empty()

    async def start(self) -> None:
        self.server = grpc.aio.server()
        networkserver_pb2_grpc.add_GsNsServicer_to_server(self, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.address = f"127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)


class EventLog:
    """Every event the daemon publishes, in order."""

    def __init__(self, daemon: Daemon) -> None:
        self.events: list[Any] = []
        self._sub = daemon.bus.subscribe(None, buffer=100_000)
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self._sub:
            self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def of(self, name: str) -> list[Any]:
        return [e for e in self.events if e.name == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 3.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.of(name)) < count:
                await asyncio.sleep(0.005)
        return self.of(name)

    async def close(self) -> None:
        self._task.cancel()
        self._sub.close()


class Harness:
    def __init__(self, daemon: Daemon, ns: StandinNetworkServer, events: EventLog) -> None:
        self.daemon = daemon
        self.ns = ns
        self.events = events
        self.gateways: list[SimulatedGateway] = []
        self._api: Any = None
        self._channel: Any = None

    @property
    def server(self) -> Any:
        return self.daemon.server

    async def gateway(self, eui: bytes = EUI, *, pull: bool = True, **kwargs: Any) -> SimulatedGateway:
        gw = await SimulatedGateway.connect(self.daemon.udp_addresses[0], eui, **kwargs)
        self.gateways.append(gw)
        if pull:
            await gw.pull_data()
            assert await gw.wait_for_acks(2.0)
        return gw

    async def uplink(self, gw: SimulatedGateway, **fields: Any) -> tuple[messages_pb2.UplinkMessage, int]:
        """Send one uplink; returns what the Network Server received and the rxpk tmst."""
        tmst = gw.tmst()
        await gw.send_uplink(tmst=tmst, **fields)
        async with asyncio.timeout(3.0):
            up = await self.ns.uplinks.get()
        return up, tmst

    async def ns_gs(self) -> Any:
        """A NsGs stub on the daemon's real gRPC API (started here when the daemon did not start one)."""
        from gatewayserver.api import ApiServers, ApiSettings, KeyStore
        from gatewayserver.ttnpb import gatewayserver_pb2_grpc

        port = None
        for api in self.daemon.apis:
            grpc_server = getattr(api, "grpc", None)
            if grpc_server is not None and grpc_server.port:
                port = grpc_server.port
        if port is None:
            self._api = ApiServers(
                self.daemon.server, self.daemon.bus, KeyStore(None), ApiSettings(cluster_keys=[CLUSTER_KEY]),
                grpc_listen="127.0.0.1:0", http_listen=None,
            )
            await self._api.start()
            port = self._api.grpc.port
        self._channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        return gatewayserver_pb2_grpc.NsGsStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        if self._api is not None:
            await self._api.stop()
        for gw in self.gateways:
            await gw.close()
        await self.events.close()
        await self.daemon.shutdown()
        await self.ns.stop()


def lora(sf: int, bw: int = 125_000, cr: str = "4/5") -> lorawan_pb2.DataRate:
    dr = lorawan_pb2.DataRate()
    dr.lora.spreading_factor = sf
    dr.lora.bandwidth = bw
    dr.lora.coding_rate = cr
    return dr


def class_a(
    token: bytes,
    payload: bytes = b"\x60" + bytes(16),
    *,
    rx1_frequency: int = 868_100_000,
    rx1: lorawan_pb2.DataRate | None = None,
    rx2_frequency: int = 869_525_000,
    rx2: lorawan_pb2.DataRate | None = None,
    priority: int = lorawan_pb2.HIGHEST,
    rx1_delay: int = 1,
    cids: tuple[str, ...] = ("ns:downlink:test",),
) -> messages_pb2.DownlinkMessage:
    msg = messages_pb2.DownlinkMessage(raw_payload=payload, correlation_ids=list(cids))
    req = msg.request
    setattr(req, "class", lorawan_pb2.CLASS_A)
    req.downlink_paths.add().uplink_token = token
    req.rx1_delay = rx1_delay
    if rx1_frequency:
        req.rx1_frequency = rx1_frequency
        req.rx1_data_rate.CopyFrom(rx1 or lora(7))
    if rx2_frequency:
        req.rx2_frequency = rx2_frequency
        req.rx2_data_rate.CopyFrom(rx2 or lora(12))
    req.priority = priority
    return msg


def class_c(
    gateway_id: str = GATEWAY_ID,
    payload: bytes = b"\x60" + bytes(16),
    *,
    frequency: int = 869_525_000,
    data_rate: lorawan_pb2.DataRate | None = None,
    absolute_time_ns: int | None = None,
    priority: int = lorawan_pb2.NORMAL,
) -> messages_pb2.DownlinkMessage:
    msg = messages_pb2.DownlinkMessage(raw_payload=payload, correlation_ids=["ns:downlink:c"])
    req = msg.request
    setattr(req, "class", lorawan_pb2.CLASS_C)
    req.downlink_paths.add().fixed.gateway_ids.gateway_id = gateway_id
    req.rx2_frequency = frequency
    req.rx2_data_rate.CopyFrom(data_rate or lora(9))
    req.priority = priority
    if absolute_time_ns is not None:
        req.absolute_time.seconds, req.absolute_time.nanos = divmod(absolute_time_ns, 1_000_000_000)
    return msg


def token_of(up: messages_pb2.UplinkMessage) -> bytes:
    return up.rx_metadata[0].uplink_token


def write_registry(path: Path, **overrides: Any) -> Path:
    entry = {"eui": EUI.hex(), "gateway_id": GATEWAY_ID, "frequency_plan_id": "EU_863_870"}
    entry.update(overrides)
    path.write_text(yaml.safe_dump({"gateways": [entry]}))
    return path


HarnessFactory = Callable[..., Any]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    made: list[Harness] = []

    async def make(schedule_late_time: float | None = None, **registry: Any) -> Harness:
        ns = StandinNetworkServer()
        await ns.start()
        flags: dict[str, Any] = {
            "udp_listen": ["127.0.0.1:0"],
            "grpc_listen": "127.0.0.1:0",
            "http_listen": "127.0.0.1:0",
            "ns_address": ns.address,
            "gateways": str(write_registry(tmp_path / f"gateways{len(made)}.yml", **registry)),
            "log_level": "warning",
            "cluster_key": CLUSTER_KEY.hex(),
        }
        if schedule_late_time is not None:
            flags["schedule_late_time"] = schedule_late_time
        daemon = await start_daemon(resolve(flags, environ={}))
        harness = Harness(daemon, ns, EventLog(daemon))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.close()


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    return await make_harness()


def now_ns() -> int:
    return time.time_ns()
