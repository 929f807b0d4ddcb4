"""Which worker a call goes to, and how a downlink whose paths belong to several workers is scheduled."""

from __future__ import annotations

from typing import Any

import pytest

from gatewayserver.downlink import errors as derr
from gatewayserver.errors import ABORTED, DATA_LOSS, GsError
from gatewayserver.tokens import UplinkTokens
from gatewayserver.ttnpb import gatewayserver_pb2, messages_pb2
from gatewayserver.workers import wire
from gatewayserver.workers.routing import RoutedGatewayServer
from gatewayserver.workers.spec import WorkerSpec, owner_of_eui

EUI_0 = bytes.fromhex("0016c00100000002")  # owner 0 of 2
EUI_1 = bytes.fromhex("0016c00100000001")  # owner 1 of 2
REGISTRY = {"gw-zero": EUI_0, "gw-one": EUI_1}


class Local:
    def __init__(self, fail: bool = False) -> None:
        self.scheduled: list[list[str]] = []
        self.fail = fail

    def gateway_eui(self, gateway_id: str) -> bytes | None:
        return REGISTRY.get(gateway_id)

    async def schedule_downlink(self, message: Any) -> Any:
        self.scheduled.append([p.fixed.gateway_ids.gateway_id for p in message.request.downlink_paths])
        if self.fail:
            raise derr.schedule([derr.details_of(derr.schedule_path("gw-zero", derr.not_connected("gw-zero")))])
        return gatewayserver_pb2.ScheduleDownlinkResponse(rx1=True)


class FakePeers:
    def __init__(self, error: GsError | None = None) -> None:
        self.calls: list[tuple[int, str, Any]] = []
        self.error = error
        self.others = [1]

    async def unary(self, index: int, method: str, request: bytes, **kw: Any) -> bytes:
        message = messages_pb2.DownlinkMessage.FromString(request)
        self.calls.append((index, method, [p.fixed.gateway_ids.gateway_id for p in message.request.downlink_paths]))
        if self.error is not None:
            raise self.error
        return gatewayserver_pb2.ScheduleDownlinkResponse(rx2=True).SerializeToString()


def routed(local: Local, peers: FakePeers) -> RoutedGatewayServer:
    return RoutedGatewayServer(local, WorkerSpec(0, 2, "/nonexistent", "00"), peers)  # type: ignore[arg-type]


def downlink(*gateway_ids: str) -> messages_pb2.DownlinkMessage:
    message = messages_pb2.DownlinkMessage(raw_payload=b"x")
    for gateway_id in gateway_ids:
        message.request.downlink_paths.add().fixed.gateway_ids.gateway_id = gateway_id
    return message


def test_owner_comes_from_the_token_the_fixed_path_the_registry_or_the_id() -> None:
    server = routed(Local(), FakePeers())
    token = UplinkTokens(b"k" * 32).issue("not-in-registry", EUI_1, 0, 1, 2, 3)
    message = downlink()
    message.request.downlink_paths.add().uplink_token = token
    assert server.owner_of_path(message.request.downlink_paths[0]) == 1
    assert server.owner_of_gateway("gw-one") == 1 and server.owner_of_gateway("gw-zero") == 0
    assert server.owner_of_gateway("whatever", EUI_1) == 1
    assert server.owner_of_gateway("eui-" + EUI_1.hex()) == owner_of_eui(EUI_1, 2) == 1
    assert server.owner_of_gateway("unknown-anywhere") == 0  # answered here, as one process would
    assert server.owner_of_path(downlink().request.downlink_paths.add()) == 0  # no path at all


async def test_one_owner_is_one_forward_with_the_message_unchanged() -> None:
    local, peers = Local(), FakePeers()
    response = await routed(local, peers).schedule_downlink(downlink("gw-one", "gw-one"))
    assert response.rx2 and peers.calls == [(1, wire.SCHEDULE_DOWNLINK, ["gw-one", "gw-one"])]
    assert not local.scheduled


async def test_paths_of_several_owners_are_tried_in_order_and_errors_merged() -> None:
    failing = derr.schedule([derr.details_of(derr.schedule_path("gw-one", derr.not_connected("gw-one")))])
    local, peers = Local(), FakePeers(error=failing)
    response = await routed(local, peers).schedule_downlink(downlink("gw-one", "gw-zero"))
    assert response.rx1  # the peer's path failed, the local one booked
    assert peers.calls[0][2] == ["gw-one"] and local.scheduled == [["gw-zero"]]

    local = Local(fail=True)
    with pytest.raises(GsError) as info:
        await routed(local, FakePeers(error=failing)).schedule_downlink(downlink("gw-one", "gw-zero", "gw-one"))
    assert info.value.code == ABORTED and info.value.name == "schedule"
    (details,) = info.value.details
    assert [e.attributes["gateway_uid"] for e in details.path_errors] == ["gw-one", "gw-zero", "gw-one"]


async def test_a_peer_down_is_one_path_error_and_tokens_only_stay_data_loss() -> None:
    down = wire.err_worker_unavailable(1, "UNAVAILABLE: connection refused")
    with pytest.raises(GsError) as info:
        await routed(Local(fail=True), FakePeers(error=down)).schedule_downlink(downlink("gw-one", "gw-zero"))
    names = [e.name for e in info.value.details[0].path_errors]
    assert names == ["worker_unavailable", "schedule_path"]
    token_error = derr.schedule([], code=DATA_LOSS, name="uplink_token")

    class TokenLocal(Local):
        async def schedule_downlink(self, message: Any) -> Any:
            raise token_error

    with pytest.raises(GsError) as info:
        await routed(TokenLocal(), FakePeers(error=token_error)).schedule_downlink(downlink("gw-one", "gw-zero"))
    assert info.value.code == DATA_LOSS and info.value.name == "uplink_token"


def test_errors_cross_the_boundary_unchanged() -> None:
    original = derr.schedule([derr.details_of(derr.schedule_path("gw-one", derr.not_connected("gw-one")))])
    rebuilt = wire.error_from_details(derr.details_of(original))
    assert derr.details_of(rebuilt) == derr.details_of(original)
    assert isinstance(rebuilt.details[0], gatewayserver_pb2.ScheduleDownlinkErrorDetails)


async def test_a_socket_path_too_long_for_a_unix_socket_is_one_clear_error(tmp_path: Any) -> None:
    from gatewayserver.workers.internal import InternalServer

    runtime_dir = str(tmp_path / ("d" * 120))
    server = InternalServer(WorkerSpec(0, 2, runtime_dir, "00"), None, None)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="more than the 107 a Unix socket address holds; use a shorter runtime"):
        await server.start()
    await server.stop(None)
