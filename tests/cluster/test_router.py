"""The cluster router's decisions against a real Redis: which instance each run of downlink paths goes to, in the
Network Server's order, bounded per request; and what a caller gets while Redis is down. The local gateway
server and the calls to other instances are recorders (their transports have their own end-to-end tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gatewayserver.cluster.records import Owner, owner_key
from gatewayserver.cluster.redis_link import RedisLink
from gatewayserver.cluster.router import ClusterGatewayServer
from gatewayserver.downlink import errors as derr
from gatewayserver.errors import GsError
from gatewayserver.ttnpb import gatewayserver_pb2, lorawan_pb2, messages_pb2

from redis_support import RedisServer


class Local:
    """This instance's gateway server: knows `connected`, fails the others as the core does."""

    def __init__(self, connected: set[str]) -> None:
        self.connected = connected
        self.calls: list[list[str]] = []

    async def schedule_downlink(self, message: messages_pb2.DownlinkMessage) -> Any:
        ids = [p.fixed.gateway_ids.gateway_id for p in message.request.downlink_paths]
        self.calls.append(ids)
        for gateway_id in ids:
            if gateway_id in self.connected:
                return gatewayserver_pb2.ScheduleDownlinkResponse()
        raise derr.schedule([derr.details_of(derr.schedule_path(g, derr.not_connected(g))) for g in ids])


class Calls:
    """The other instances: `refuse` fails every call to the instance named."""

    def __init__(self, refuse: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.refuse = refuse
        self.calls: list[tuple[str, list[str]]] = []

    async def unary(self, instance: str, method: str, request: bytes) -> bytes:
        message = messages_pb2.DownlinkMessage.FromString(request)
        self.calls.append((instance, [p.fixed.gateway_ids.gateway_id for p in message.request.downlink_paths]))
        if instance in self.refuse:
            raise GsError("pkg/gatewayserver/cluster", "instance_unavailable", "down", code=14)
        return bytes(gatewayserver_pb2.ScheduleDownlinkResponse().SerializeToString())


def downlink(*gateway_ids: str) -> messages_pb2.DownlinkMessage:
    message = messages_pb2.DownlinkMessage(raw_payload=b"\x60" + bytes(16))
    setattr(message.request, "class", lorawan_pb2.CLASS_C)
    for gateway_id in gateway_ids:
        message.request.downlink_paths.add().fixed.gateway_ids.gateway_id = gateway_id
    return message


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[RedisLink]:
    for gateway_id, instance in (("gw-b", "gs-b"), ("gw-c", "gs-c"), ("gw-a", "gs-a")):
        redis_server.command("SET", owner_key(gateway_id), Owner(instance, 0, 1).encode().decode(), "PX", "60000")
    redis = RedisLink(redis_server.url)
    await redis.start()
    yield redis
    await redis.close()


def router(link: RedisLink, local: Local, calls: Calls) -> ClusterGatewayServer:
    return ClusterGatewayServer(local, None, link, calls, "gs-a")  # type: ignore[arg-type]


async def test_runs_go_to_their_owners_in_order_until_one_books(link: RedisLink) -> None:
    local, calls = Local({"gw-a"}), Calls(refuse={"gs-b"})
    await router(link, local, calls).schedule_downlink(downlink("gw-b", "gw-c", "gw-a"))
    assert calls.calls == [("gs-b", ["gw-b"]), ("gs-c", ["gw-c"])]  # gs-c booked: gw-a never tried
    assert local.calls == []


async def test_a_gateway_owned_elsewhere_is_never_served_here_and_no_record_means_here(link: RedisLink) -> None:
    local, calls = Local({"gw-b", "gw-nobody"}), Calls()  # a stale connection of gw-b here
    await router(link, local, calls).schedule_downlink(downlink("gw-b"))
    assert calls.calls == [("gs-b", ["gw-b"])] and local.calls == []
    await router(link, local, calls).schedule_downlink(downlink("gw-nobody"))
    assert local.calls == [["gw-nobody"]]


async def test_alternating_owners_cost_one_call_per_instance(link: RedisLink) -> None:
    local, calls = Local(set()), Calls(refuse={"gs-b", "gs-c"})
    with pytest.raises(GsError) as info:
        await router(link, local, calls).schedule_downlink(downlink(*["gw-b", "gw-c", "gw-a"] * 10))
    assert [instance for instance, _ in calls.calls] == ["gs-b", "gs-c"] and len(local.calls) == 1
    assert calls.calls[0][1] == ["gw-b"] * 10
    details = info.value.details[0]
    assert len(details.path_errors) == 1 + 1 + 10  # one per refused instance, one per local path


async def test_redis_down_serves_local_gateways_and_names_redis_for_the_others(
    link: RedisLink, redis_server: RedisServer
) -> None:
    redis_server.stop()
    local, calls = Local({"gw-a"}), Calls()
    cluster = router(link, local, calls)
    await cluster.schedule_downlink(downlink("gw-a"))
    with pytest.raises(GsError) as info:
        await cluster.schedule_downlink(downlink("gw-b"))
    assert (info.value.name, info.value.code) == ("redis_unavailable", 14)
    assert "Redis" in info.value.message and "gw-b" in info.value.message
    assert calls.calls == []
