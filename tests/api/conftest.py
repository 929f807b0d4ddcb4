"""Real servers on ephemeral ports around a fake daemon that implements `GatewayServerLike`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from frequency_plans.loader import FrequencyPlanStore
from gatewayserver.api import ApiServers, ApiSettings, GcsSettings, KeyStore, MqttAddresses
from gatewayserver.api.core import GatewayServerLike
from gatewayserver.api.keys import create_key
from gatewayserver.api.streams import StreamLimits
from gatewayserver.errors import ABORTED, GsError
from gatewayserver.events import EventBus
from gatewayserver.ttnpb import gateway_pb2, gatewayserver_pb2, messages_pb2

CLUSTER_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
EUI1 = bytes.fromhex("B827EBFFFE8DB887")
_STORE: FrequencyPlanStore | None = None


def plan_store() -> FrequencyPlanStore:
    global _STORE
    if _STORE is None:
        _STORE = FrequencyPlanStore()
    return _STORE


def sample_stats() -> gateway_pb2.GatewayConnectionStats:
    stats = gateway_pb2.GatewayConnectionStats(protocol="udp", uplink_count=42, downlink_count=3)
    stats.connected_at.FromNanoseconds(1_700_000_000_120_000_000)
    stats.last_uplink_received_at.FromNanoseconds(1_700_000_100_000_000_001)
    stats.round_trip_times.min.FromNanoseconds(40_000_000)
    stats.round_trip_times.max.FromNanoseconds(90_000_000)
    stats.round_trip_times.median.FromNanoseconds(55_500_000)
    stats.round_trip_times.count = 7
    stats.sub_bands.add(min_frequency=863000000, max_frequency=865000000, downlink_utilization_limit=0.001)
    stats.gateway_remote_address.ip = "192.0.2.1"
    return stats


@dataclass
class FakeGatewayServer:
    stats: dict[str, gateway_pb2.GatewayConnectionStats] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)
    euis: dict[str, bytes] = field(default_factory=dict)
    scheduled: list[messages_pb2.DownlinkMessage] = field(default_factory=list)

    def connection_stats(self, gateway_id: str) -> gateway_pb2.GatewayConnectionStats | None:
        return self.stats.get(gateway_id)

    async def schedule_downlink(self, msg: messages_pb2.DownlinkMessage) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        self.scheduled.append(msg)
        if "fail" in msg.correlation_ids:
            raise GsError("pkg/gatewayserver", "schedule", "failed to schedule", code=ABORTED)
        response = gatewayserver_pb2.ScheduleDownlinkResponse(rx1=True)
        response.delay.FromNanoseconds(1_500_000_000)
        return response

    def gateway_frequency_plans(self, gateway_id: str):  # type: ignore[no-untyped-def]
        plan_ids = self.plans.get(gateway_id)  # comma-separated: a gateway with several plans
        return [plan_store().get(plan_id) for plan_id in plan_ids.split(",")] if plan_ids else []

    def gateway_eui(self, gateway_id: str) -> bytes | None:
        return self.euis.get(gateway_id)

    def connected_gateways(self) -> list[dict[str, object]]:
        # The daemon's shape is a JSON-ready dict per connection; only the fields the API reads matter here.
        return [{"gateway_id": gateway_id, "protocol": s.protocol} for gateway_id, s in sorted(self.stats.items())]


@dataclass
class Env:
    api: ApiServers
    gs: FakeGatewayServer
    bus: EventBus
    keys: dict[str, str]
    keys_file: str

    @property
    def http(self) -> str:
        assert self.api.http is not None
        return f"http://127.0.0.1:{self.api.http.port}"

    @property
    def grpc_target(self) -> str:
        assert self.api.grpc is not None
        return f"127.0.0.1:{self.api.grpc.port}"

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


KEY_SPECS: dict[str, tuple[list[str], list[str] | None]] = {
    "admin": (["RIGHT_ALL"], None),
    "gateway_all": (["RIGHT_GATEWAY_ALL"], None),
    "status": (["RIGHT_GATEWAY_STATUS_READ"], None),
    "traffic": (["RIGHT_GATEWAY_TRAFFIC_READ"], None),
    "gtw1_only": (["RIGHT_GATEWAY_ALL"], ["gtw1"]),
    "info": (["RIGHT_GATEWAY_INFO"], None),
    "user": (["RIGHT_USER_INFO"], None),
    "link_gtw1": (["RIGHT_GATEWAY_LINK"], ["gtw1", "gtw-us16"]),
}


@pytest.fixture
def stream_limits() -> StreamLimits:
    """The event stream bounds of `env`; a test module overrides this fixture to test the bounds."""
    return StreamLimits()


@pytest.fixture
async def env(tmp_path, stream_limits: StreamLimits) -> AsyncIterator[Env]:  # type: ignore[no-untyped-def]
    keys_file = str(tmp_path / "keys.json")
    keys = {}
    for name, (rights, gateways) in KEY_SPECS.items():
        keys[name], _ = create_key(keys_file, name, rights, gateways)
    gs = FakeGatewayServer(
        stats={"gtw1": sample_stats()},
        plans={
            "gtw1": "EU_863_870",
            "gtw-us": "US_902_928_FSB_2",
            "gtw-us16": "US_902_928_FSB_1,US_902_928_FSB_2",
        },
        euis={"gtw1": EUI1},
    )
    assert isinstance(gs, GatewayServerLike)
    bus = EventBus(history_size=1000)
    api = ApiServers(
        gs,
        bus,
        KeyStore(keys_file, reload_interval=0.0),
        ApiSettings(
            cluster_keys=[CLUSTER_KEY],
            stream_buffer=64,
            gcs=GcsSettings(server_address="gs.example.com"),
            mqtt=MqttAddresses("mqtt.example.com:1882", "mqtt.example.com:8882"),
            stream_limits=stream_limits,
        ),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
    )
    await api.start()
    try:
        yield Env(api, gs, bus, keys, keys_file)
    finally:
        await api.stop()


def now_ns() -> int:
    return time.time_ns()
