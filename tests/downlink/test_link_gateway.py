"""`GtwGs.LinkGateway` over a real grpc.aio client against a real daemon and the stand-in Network Server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from gatewayserver.api.errors import STATUS_DETAILS_KEY, decode_rpc_status
from gatewayserver.api.keys import create_key
from gatewayserver.config import resolve
from gatewayserver.daemon import Daemon, start_daemon
from gatewayserver.simulator_grpc import LinkedGateway
from gatewayserver.ttnpb import error_pb2, gatewayserver_pb2, gatewayserver_pb2_grpc, messages_pb2

from gatewayserver.errors import GsError

from downlink_support import CLUSTER_KEY, EventLog, StandinNetworkServer, class_a, class_c, lora, token_of

GATEWAY = "gw-linked"
OTHER = "gw-other"


class Env:
    def __init__(self, daemon: Daemon, ns: StandinNetworkServer, events: EventLog, keys: dict[str, str]) -> None:
        self.daemon = daemon
        self.ns = ns
        self.events = events
        self.keys = keys

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.daemon.api.grpc.port}"

    async def link(self, key: str = "link", gateway_id: str = GATEWAY, **kwargs: Any) -> LinkedGateway:
        gw = await LinkedGateway.connect(self.target, gateway_id, self.keys[key], **kwargs)
        async with asyncio.timeout(10):
            while self.daemon.server.core.get(gateway_id) is None:
                await asyncio.sleep(0.01)
        return gw


async def start(
    tmp_path: Path, *, require_registered: bool = False, extra_gateways: list[dict[str, str]] | None = None
) -> Env:
    keys_file = str(tmp_path / "keys.json")
    keys = {
        "link": create_key(keys_file, "link", ["RIGHT_GATEWAY_LINK"], [GATEWAY, "eui-0016c001ff0000ee"])[0],
        "other": create_key(keys_file, "other", ["RIGHT_GATEWAY_LINK"], [OTHER])[0],
        "info": create_key(keys_file, "info", ["RIGHT_GATEWAY_INFO"], [GATEWAY])[0],
        "stranger": create_key(keys_file, "stranger", ["RIGHT_GATEWAY_LINK"], ["gw-stranger"])[0],
        "any": create_key(keys_file, "any", ["RIGHT_GATEWAY_LINK"])[0],  # every gateway: the simulator's eui-… ids
    }
    registry = tmp_path / "gateways.yml"
    registry.write_text(yaml.safe_dump({"gateways": [
        {"eui": "0016c001ff0000aa", "gateway_id": GATEWAY, "frequency_plan_id": "EU_863_870"},
        {"eui": "0016c001ff0000bb", "gateway_id": OTHER, "frequency_plan_id": "EU_863_870"},
        *(extra_gateways or []),
    ]}))
    ns = StandinNetworkServer()
    await ns.start()
    flags = {
        "udp_listen": ["127.0.0.1:0"], "grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0",
        "ns_address": ns.address, "gateways": str(registry), "keys_file": keys_file, "log_level": "warning",
        "cluster_key": CLUSTER_KEY.hex(), "require_registered": require_registered,
    }
    daemon = await start_daemon(resolve(flags, environ={}))
    return Env(daemon, ns, EventLog(daemon), keys)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await start(tmp_path)
    yield e
    await e.events.close()
    await e.daemon.shutdown()
    await e.ns.stop()


def error_details(err: grpc.aio.AioRpcError) -> error_pb2.ErrorDetails:
    _, _, details = decode_rpc_status(dict(err.trailing_metadata() or ())[STATUS_DETAILS_KEY])
    out = error_pb2.ErrorDetails()
    assert details[0].Unpack(out)
    return out


async def refused(env: Env, metadata: tuple[tuple[str, str], ...]) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(env.target) as channel:
        call = gatewayserver_pb2_grpc.GtwGsStub(channel).LinkGateway(iter(()), metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in call:
                pass
    return info.value


async def test_link_with_a_gateway_key_carries_uplinks_status_and_downlinks(env: Env) -> None:
    gw = await env.link()
    await gw.send_uplink()
    async with asyncio.timeout(10):
        up = await env.ns.uplinks.get()
    md = up.rx_metadata[0]
    assert md.gateway_ids.gateway_id == GATEWAY and md.gateway_ids.eui == bytes.fromhex("0016c001ff0000aa")
    assert md.uplink_token and up.received_at.seconds > 0
    await gw.send_status(firmware="1.2")
    await env.events.wait_for("gs.status.receive", timeout=10)
    nsgs = gatewayserver_pb2_grpc.NsGsStub(grpc.aio.insecure_channel(env.target))
    auth = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)
    response = await nsgs.ScheduleDownlink(class_a(token_of(up)), metadata=auth)
    assert response.rx1
    async with asyncio.timeout(10):
        down = await gw.received_downlinks.get()
        ack = await env.ns.tx_acks.get()
    assert down.scheduled.timestamp == (md.timestamp + 1_000_000) % (1 << 32)
    assert "ns:downlink:test" in down.correlation_ids
    assert ack.gateway_ids.gateway_id == GATEWAY and ack.tx_ack.result == messages_pb2.TxAcknowledgment.SUCCESS
    stats = env.daemon.server.connection_stats(GATEWAY)
    assert stats is not None
    assert (stats.protocol, stats.uplink_count, stats.downlink_count, stats.tx_acknowledgment_count) == (
        "grpc", 1, 1, 1
    )
    assert stats.last_status.versions["firmware"] == "1.2"
    await gw.close()
    await env.events.wait_for("gs.gateway.disconnect", timeout=10)
    assert env.daemon.server.core.get(GATEWAY) is None


async def test_duplicate_uplinks_in_one_message_keep_the_best_rssi(env: Env) -> None:
    gw = await env.link()
    weak = gw.make_uplink(b"\x40" + bytes(12), rssi=-110)
    strong = gw.make_uplink(b"\x40" + bytes(12), rssi=-40)
    gw.send(gatewayserver_pb2.GatewayUp(uplink_messages=[weak, strong]))
    async with asyncio.timeout(10):
        up = await env.ns.uplinks.get()
    assert up.rx_metadata[0].rssi == -40
    await asyncio.sleep(0.2)
    assert env.ns.uplinks.empty()
    await gw.close()


async def test_a_second_link_replaces_the_first(env: Env) -> None:
    first = await env.link()
    old = env.daemon.server.core.get(GATEWAY)
    second = await LinkedGateway.connect(env.target, GATEWAY, env.keys["link"])
    async with asyncio.timeout(10):
        await first.closed.wait()
        while env.daemon.server.core.get(GATEWAY) in (None, old):
            await asyncio.sleep(0.01)
    assert first.error is not None and first.error.code() == grpc.StatusCode.ABORTED
    (disconnect,) = env.events.of("gs.gateway.disconnect")
    assert disconnect.data.name == "new_connection"
    await second.send_uplink()
    async with asyncio.timeout(10):
        await env.ns.uplinks.get()
    await second.close()
    await first.close()


async def test_class_c_downlink_over_the_link(env: Env) -> None:
    gw = await env.link()
    nsgs = gatewayserver_pb2_grpc.NsGsStub(grpc.aio.insecure_channel(env.target))
    auth = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)
    await nsgs.ScheduleDownlink(class_c(GATEWAY), metadata=auth)
    async with asyncio.timeout(10):
        down = await gw.received_downlinks.get()
        ack = await env.ns.tx_acks.get()
    assert down.scheduled.frequency == 869_525_000 and ack.tx_ack.result == 0
    await gw.close()


@pytest.mark.parametrize(
    ("key", "gateway_id", "code", "name"),
    [
        (None, GATEWAY, grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"),
        ("other", GATEWAY, grpc.StatusCode.PERMISSION_DENIED, "no_gateway_rights"),  # another gateway's key
        ("info", GATEWAY, grpc.StatusCode.PERMISSION_DENIED, "insufficient_gateway_rights"),  # lacks the right
        ("link", None, grpc.StatusCode.INVALID_ARGUMENT, "no_gateway_id"),
    ],
)
async def test_link_refusals(env: Env, key: str | None, gateway_id: str | None, code: grpc.StatusCode,
                             name: str) -> None:
    metadata: list[tuple[str, str]] = []
    if key is not None:
        metadata.append(("authorization", f"Bearer {env.keys[key]}"))
    if gateway_id is not None:
        metadata.append(("id", gateway_id))
    error = await refused(env, tuple(metadata))
    assert error.code() == code
    assert error_details(error).name == name
    assert env.daemon.server.core.get(GATEWAY) is None


async def test_unregistered_gateway_is_refused_when_registration_is_required(tmp_path: Path) -> None:
    e = await start(tmp_path, require_registered=True)
    try:
        error = await refused(e, (("authorization", f"Bearer {e.keys['stranger']}"), ("id", "gw-stranger")))
        assert error.code() == grpc.StatusCode.NOT_FOUND and error_details(error).name == "gateway_not_registered"
    finally:
        await e.events.close()
        await e.daemon.shutdown()
        await e.ns.stop()


async def test_unregistered_gateway_links_with_the_fallback_plan(env: Env) -> None:
    gw = await env.link("stranger", "gw-stranger")
    await gw.send_uplink()
    async with asyncio.timeout(10):
        up = await env.ns.uplinks.get()
    assert up.rx_metadata[0].gateway_ids.gateway_id == "gw-stranger"
    await gw.close()


async def test_simulate_protocol_grpc_links_every_gateway(env: Env, tmp_path: Path) -> None:
    """`gatewayserver simulate --protocol grpc` drives LinkGateway: every uplink reaches the Network Server."""
    from gatewayserver.simulator import add_arguments, config_from_args, run_simulation

    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([
        "--protocol", "grpc", "--address", env.target, "--api-key", env.keys["any"], "--gateways", "3", "--rate", "30",
        "--duration", "1", "--stat-interval", "0", "--start-spread", "0",
    ])
    summary = await run_simulation(config_from_args(args))
    assert summary["protocol"] == "grpc" and summary["uplinks_sent"] == 30 and summary["link_errors"] == []
    async with asyncio.timeout(15):
        received = [await env.ns.uplinks.get() for _ in range(30)]
    assert len({up.rx_metadata[0].gateway_ids.gateway_id for up in received}) == 3


async def test_registry_reload_cuts_off_a_link_no_longer_registered(tmp_path: Path) -> None:
    e = await start(tmp_path, require_registered=True)
    try:
        gw = await e.link()
        registry = tmp_path / "gateways.yml"
        registry.write_text(yaml.safe_dump({"gateways": [
            {"eui": "0016c001ff0000bb", "gateway_id": OTHER, "frequency_plan_id": "EU_863_870"},
        ]}))
        e.daemon.reload()
        async with asyncio.timeout(10):
            await gw.closed.wait()
        assert gw.error is not None and gw.error.code() == grpc.StatusCode.PERMISSION_DENIED
        (disconnect,) = e.events.of("gs.gateway.disconnect")
        assert disconnect.data.name == "gateway_not_registered"
        assert e.daemon.server.core.get(GATEWAY) is None
        await gw.close()
    finally:
        await e.events.close()
        await e.daemon.shutdown()
        await e.ns.stop()


async def test_a_gateway_that_stops_reading_is_disconnected_not_buffered(tmp_path: Path) -> None:
    """Over a real stream: a client that never reads leaves the writer stuck, the bounded send queue fills, the
    downlink past it is dropped and counted and the gateway disconnected, so memory stays bounded."""
    from gatewayserver.io.grpc.metrics import MESSAGES_DROPPED

    e = await start(tmp_path, extra_gateways=[{"eui": "0016c001ff0000dd", "gateway_id": "gw-deaf",
                                               "frequency_plan_id": "EU_863_870", "enforce_duty_cycle": False}])
    channel = grpc.aio.insecure_channel(e.target)
    try:
        e.daemon.links.send_queue = 8
        metadata = (("id", "gw-deaf"), ("authorization", f"Bearer {e.keys['any']}"))
        call = gatewayserver_pb2_grpc.GtwGsStub(channel).LinkGateway(metadata=metadata)  # never read
        async with asyncio.timeout(10):
            while e.daemon.server.core.get("gw-deaf") is None:
                await asyncio.sleep(0.01)
        conn = e.daemon.server.core.get("gw-deaf")
        before = MESSAGES_DROPPED.labels("send_queue_full").value
        scheduled = 0
        async with asyncio.timeout(60):
            while conn.link.close_reason is None and scheduled < 20_000:
                try:
                    await e.daemon.server.schedule_downlink(
                        class_c("gw-deaf", payload=b"\x60" + bytes(200), data_rate=lora(7))
                    )
                except GsError as exc:
                    if conn.link.close_reason is not None:
                        break  # the link closed between two calls: no downlink path any more
                    raise AssertionError(f"after {scheduled}: {exc.details[0]}") from exc
                scheduled += 1
                await asyncio.sleep(0)  # let the writer hand what it can to the stream
        print(f"downlinks scheduled before the disconnect: {scheduled}")
        assert conn.link.close_reason == "send_queue_full"
        assert scheduled >= 9  # 8 queued behind the stuck stream, then the one dropped; none refused before
        async with asyncio.timeout(10):
            while not conn.closed:
                await asyncio.sleep(0.01)
        assert e.daemon.server.core.get("gw-deaf") is None
        assert MESSAGES_DROPPED.labels("send_queue_full").value == before + 1
        (disconnect,) = await e.events.wait_for("gs.gateway.disconnect")
        assert disconnect.gateway_ids[0][0] == "gw-deaf"
        call.cancel()
    finally:
        await channel.close()
        await e.events.close()
        await e.daemon.shutdown()
        await e.ns.stop()
