"""global_conf.json's server_address: the configured public address; the request's Host header only when none is
configured and only when it is a valid host name or IP address (the header is the client's to choose)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import grpc
import orjson
import pytest

from gatewayserver.api import ApiServers, ApiSettings, GcsSettings, KeyStore
from gatewayserver.api.gcs import host_from_header
from gatewayserver.api.keys import create_key
from gatewayserver.config import ConfigError, resolve
from gatewayserver.events import EventBus
from gatewayserver.ttnpb import gateway_configuration_pb2, gateway_configuration_pb2_grpc

from conftest import EUI1, Env, FakeGatewayServer

PATH = "/api/v3/gcs/gateways/gtw1/semtechudp/global_conf.json"


def _raw_get(port: int, host: bytes, key: str) -> tuple[int, bytes]:
    """A real HTTP request with exactly this Host header (HTTP clients normalise or refuse odd ones)."""
    request = (
        b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\nAuthorization: Bearer " + key.encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
async def unconfigured(tmp_path) -> AsyncIterator[tuple[ApiServers, str]]:  # type: ignore[no-untyped-def]
    keys_file = str(tmp_path / "keys.json")
    key, _ = create_key(keys_file, "info", ["RIGHT_GATEWAY_INFO"])
    api = ApiServers(
        FakeGatewayServer(plans={"gtw1": "EU_863_870"}, euis={"gtw1": EUI1}), EventBus(),
        KeyStore(keys_file, reload_interval=0.0), ApiSettings(gcs=GcsSettings()),
        grpc_listen="127.0.0.1:0", http_listen="127.0.0.1:0",
    )
    await api.start()
    try:
        yield api, key
    finally:
        await api.stop()


async def test_configured_address_wins_over_the_host_header(env: Env) -> None:
    assert env.api.http is not None and env.api.http.port is not None
    status, body = await asyncio.to_thread(_raw_get, env.api.http.port, b"evil.example.net", env.keys["info"])
    assert status == 200
    assert orjson.loads(body)["gateway_conf"]["server_address"] == "gs.example.com"
    assert b"evil" not in body


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (b"gs.example.com:1885", "gs.example.com"),
        (b"gs.example.com", "gs.example.com"),
        (b"192.0.2.7:1885", "192.0.2.7"),
        (b"[2001:db8::1]:1885", "2001:db8::1"),
    ],
)
async def test_without_configuration_a_valid_host_header_is_used(unconfigured, host: bytes, expected: str) -> None:
    api, key = unconfigured
    status, body = await asyncio.to_thread(_raw_get, api.http.port, host, key)
    assert status == 200
    assert orjson.loads(body)["gateway_conf"]["server_address"] == expected


@pytest.mark.parametrize(
    "host",
    [b"evil_host.example", b"-bad.example.com", b"a..b", b"x" * 70 + b".example", b"1.2.3", b"gs.example.com:http",
     b"gs.example.com/x", b"[::1", b"[192.0.2.1]", b"2001:db8::1", b"\"quoted\""],
)
async def test_without_configuration_an_invalid_host_header_is_a_clear_error(unconfigured, host: bytes) -> None:
    api, key = unconfigured
    status, body = await asyncio.to_thread(_raw_get, api.http.port, host, key)
    assert status == 400
    error = orjson.loads(body)
    assert error["code"] == 9
    assert "no_server_address" in error["message"] and "gcs_server_address" in error["message"]
    assert host.decode() not in error["message"]


async def test_grpc_without_configuration_is_a_clear_error(unconfigured) -> None:
    api, key = unconfigured
    req = gateway_configuration_pb2.GetGatewayConfigurationRequest(format="semtechudp", filename="global_conf.json")
    req.gateway_ids.gateway_id = "gtw1"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.grpc.port}") as channel:
        stub = gateway_configuration_pb2_grpc.GatewayConfigurationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await stub.GetGatewayConfiguration(req, metadata=(("authorization", f"Bearer {key}"),))
    assert excinfo.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "gcs_server_address" in (excinfo.value.details() or "")


def test_host_from_header() -> None:
    assert host_from_header("GS.Example.com.") == "GS.Example.com."
    assert host_from_header("localhost:1885") == "localhost"
    assert host_from_header(None) is None
    assert host_from_header("gs.example.com:") is None


def test_configured_address_is_validated() -> None:
    assert resolve({"gcs_server_address": "gs.example.com"}, environ={}).gcs_server_address == "gs.example.com"
    assert resolve({"gcs_server_address": "2001:db8::1"}, environ={}).gcs_server_address == "2001:db8::1"
    for bad in ("gs.example.com:1700", "udp://gs.example.com", "bad_host"):
        with pytest.raises(ConfigError, match="gcs_server_address"):
            resolve({"gcs_server_address": bad}, environ={})
