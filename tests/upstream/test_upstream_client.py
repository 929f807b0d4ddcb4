"""NetworkServerClient over real sockets: TLS with a CA file, per-call credentials, the in-flight bound."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from tls_support import write_self_signed

from gatewayserver.ttnpb import messages_pb2, networkserver_pb2_grpc
from gatewayserver.upstream.ns import NetworkServerClient, UpstreamSettings


def _self_signed(tmp_path: Path, name: str) -> tuple[bytes, bytes, str]:
    """(certificate, key, CA file path): the server's own certificate is the client's CA."""
    cert_file, _ = write_self_signed(tmp_path, name)
    cert, key = Path(cert_file).read_bytes(), (tmp_path / f"{name}.key").read_bytes()
    return cert, key, cert_file


class _Ns(networkserver_pb2_grpc.GsNsServicer):
    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[tuple[messages_pb2.UplinkMessage, dict[str, str]]] = []
        self.delay = delay
        self.running = 0
        self.most_running = 0

    async def HandleUplink(self, request: Any, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            self.received.append((request, dict(context.invocation_metadata())))
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        return empty_pb2.Empty()


async def _serve(ns: _Ns, credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    networkserver_pb2_grpc.add_GsNsServicer_to_server(ns, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port


def _uplink(fcnt: int) -> messages_pb2.UplinkMessage:
    up = messages_pb2.UplinkMessage()
    up.raw_payload = bytes([0x40, 0x34, 0x12, 0x01, 0x26, 0x00, fcnt, 0x00, 0x01]) + b"data1234"
    up.correlation_ids.append(f"gs:uplink:{fcnt}")
    return up


async def _submit_all(client: NetworkServerClient, count: int) -> list[BaseException | None]:
    results: list[BaseException | None] = []
    done = asyncio.Event()

    def on_result(_uplink: Any, _context: Any, error: BaseException | None) -> None:
        results.append(error)
        if len(results) == count:
            done.set()

    client._on_result = on_result
    for fcnt in range(count):
        client.submit(_uplink(fcnt))
    await asyncio.wait_for(done.wait(), 15)
    return results


async def test_tls_with_a_ca_file_and_the_cluster_key(tmp_path: Path) -> None:
    cert, key, ca_file = _self_signed(tmp_path, "ns")
    ns = _Ns()
    server, port = await _serve(ns, grpc.ssl_server_credentials([(key, cert)]))
    client = NetworkServerClient(f"localhost:{port}", UpstreamSettings(ca_file=ca_file, cluster_key="00aa11bb"),
                                 lambda *_: None)
    try:
        assert await _submit_all(client, 5) == [None] * 5
    finally:
        await client.close(5)
        await server.stop(None)
    assert sorted(m.correlation_ids[0] for m, _ in ns.received) == [f"gs:uplink:{i}" for i in range(5)]
    assert {md["authorization"] for _, md in ns.received} == {"ClusterKey 00aa11bb"}


async def test_tls_with_the_wrong_ca_fails_every_uplink(tmp_path: Path) -> None:
    cert, key, _ = _self_signed(tmp_path, "ns")
    _, _, other_ca = _self_signed(tmp_path, "other")
    ns = _Ns()
    server, port = await _serve(ns, grpc.ssl_server_credentials([(key, cert)]))
    client = NetworkServerClient(f"localhost:{port}", UpstreamSettings(ca_file=other_ca, retries=0), lambda *_: None)
    try:
        results = await _submit_all(client, 3)
    finally:
        await client.close(5)
        await server.stop(None)
    assert ns.received == []
    assert all(isinstance(e, grpc.aio.AioRpcError) and e.code() is grpc.StatusCode.UNAVAILABLE for e in results)


async def test_in_flight_calls_never_exceed_the_bound_and_the_queue_drains() -> None:
    ns = _Ns(delay=0.05)
    server, port = await _serve(ns)
    client = NetworkServerClient(f"127.0.0.1:{port}", UpstreamSettings(max_in_flight=4, api_key="key1"),
                                 lambda *_: None)
    try:
        results = await _submit_all(client, 40)
        assert client.queue_depth == 0 and client.in_flight == 0
    finally:
        await client.close(5)
        await server.stop(None)
    assert results == [None] * 40
    assert ns.most_running == 4
    assert {md["authorization"] for _, md in ns.received} == {"Bearer key1"}


async def test_deadline_fires_with_the_minimal_channel_stack() -> None:
    """grpc.minimal_stack drops optional filters; the per-call deadline must still end a slow call."""
    ns = _Ns(delay=3.0)
    server, port = await _serve(ns)
    client = NetworkServerClient(f"127.0.0.1:{port}", UpstreamSettings(deadline=0.2, retries=0), lambda *_: None)
    try:
        started = asyncio.get_running_loop().time()
        [error] = await _submit_all(client, 1)
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await client.close(5)
        await server.stop(None)
    assert isinstance(error, grpc.aio.AioRpcError) and error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 2.0
