"""Both servers with TLS from certificate and key files."""

from __future__ import annotations

import ssl

import aiohttp
import grpc
from conftest import FakeGatewayServer, sample_stats
from tls_support import write_self_signed

from gatewayserver.api import ApiServers, ApiSettings, KeyStore, TlsFiles
from gatewayserver.api.keys import create_key
from gatewayserver.events import EventBus
from gatewayserver.ttnpb import gatewayserver_pb2_grpc, identifiers_pb2


async def test_tls_on_grpc_and_http(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert_file, key_file = write_self_signed(tmp_path)
    keys_file = str(tmp_path / "keys.json")
    token, _ = create_key(keys_file, "ops", ["RIGHT_GATEWAY_STATUS_READ"])
    tls = TlsFiles(cert_file, key_file)
    api = ApiServers(
        FakeGatewayServer(stats={"gtw1": sample_stats()}),
        EventBus(),
        KeyStore(keys_file),
        ApiSettings(),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        grpc_tls=tls,
        http_tls=tls,
    )
    await api.start()
    try:
        context = ssl.create_default_context(cafile=cert_file)
        async with aiohttp.ClientSession() as s:
            url = f"https://localhost:{api.http.port}/api/v3/gs/gateways/gtw1/connection/stats"  # type: ignore[union-attr]
            async with s.get(url, headers={"Authorization": f"Bearer {token}"}, ssl=context) as r:
                assert r.status == 200
                assert (await r.json())["protocol"] == "udp"
        credentials = grpc.ssl_channel_credentials(root_certificates=open(cert_file, "rb").read())
        async with grpc.aio.secure_channel(f"localhost:{api.grpc.port}", credentials) as channel:  # type: ignore[union-attr]
            stats = await gatewayserver_pb2_grpc.GsStub(channel).GetGatewayConnectionStats(
                identifiers_pb2.GatewayIdentifiers(gateway_id="gtw1"), metadata=(("authorization", f"Bearer {token}"),)
            )
            assert stats.protocol == "udp"
    finally:
        await api.stop()
