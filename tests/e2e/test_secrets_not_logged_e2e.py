"""No part of a secret reaches the daemon's log, whatever a client sends.

The daemon runs as a child process at debug level with everything it writes (our loggers, aiohttp's, grpc's C
core) captured; HTTP requests go over raw sockets so malformed ones reach the server as sent. The check is that no
8-character piece of the key's secret (or of the cluster key) appears anywhere in the output.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from daemon_process import DaemonProcess

from gatewayserver.api.keys import split_key
from gatewayserver.ttnpb import gatewayserver_pb2_grpc, identifiers_pb2, messages_pb2

CLUSTER_KEY = "00112233445566778899aabbccddeeff0123456789abcdef"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    workdir: Path = tmp_path_factory.mktemp("secrets")
    process = DaemonProcess(workdir, "--log-level", "debug", "--cluster-key", CLUSTER_KEY).start()
    try:
        yield process
    finally:
        process.stop()


def _pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)} | {
        secret[i : i + size].lower() for i in range(len(secret) - size + 1)
    }


def _leaks(log: str, secret: str) -> list[str]:
    return sorted(piece for piece in _pieces(secret) if piece in log)


def _raw_http(daemon: DaemonProcess, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", daemon.http_port), timeout=30) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):  # refused before it read everything: fine
            pass
        data = b""
        try:
            while not _complete(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return data


def _complete(data: bytes) -> bool:
    """A whole response is in (the server may linger before closing after refusing a body it did not read)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.") else 0


def _get(path: str, *headers: bytes) -> bytes:
    head = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def test_http_requests_carrying_the_key_leave_no_piece_of_it_in_the_log(daemon: DaemonProcess) -> None:
    key = daemon.admin_key
    parts = split_key(key)
    assert parts is not None
    key_id, secret = parts
    path = "/api/v3/gs/gateways/connections"
    bearer = b"Authorization: Bearer " + key.encode()
    cases: dict[str, tuple[bytes, set[int]]] = {
        "oversized header, key first": (_get(path, bearer + b" " + b"A" * 9000), {431}),
        "oversized header, key last": (_get(path, b"Authorization: Bearer " + b"A" * 9000 + key.encode()), {431}),
        "oversized other header": (_get(path, b"X-Api-Key: " + key.encode() * 150), {431}),
        "too many headers": (_get(path, *[bearer] * 200), {431}),
        "control character in header": (_get(path, bearer + b"\x01"), {400}),
        "non-ASCII header": (_get(path, bearer + "é".encode()), {400, 401}),
        "key in an oversized URL": (_get("/api/v3/events?key=" + key + "x" * 9000), {431}),
        "key in a malformed request line": (b"GET /" + key.encode() + b" HTTP/1.1 junk\r\n\r\n", {400}),
        "bad method": (b"G\x01T /" + key.encode() + b" HTTP/1.1\r\n\r\n", {400}),
        "oversized body": (
            b"POST /api/v3/events HTTP/1.1\r\nHost: x\r\n" + bearer + b"\r\nContent-Length: 5000000\r\n\r\n"
            + b'{"key": "' + key.encode() + b'"', {413},
        ),
        "key without Bearer": (_get(path, b"Authorization: " + key.encode()), {400}),
        "wrong secret": (_get(path, b"Authorization: Bearer NNSXS." + key_id.encode() + b"." + b"A" * 64), {401}),
        "garbled key": (_get(path, bearer + b"x"), {401}),
        "valid key": (_get(path, bearer), {200}),
    }
    statuses = {}
    for name, (request, expected) in cases.items():
        response = _raw_http(daemon, request)
        statuses[name] = _status(response)
        assert statuses[name] in expected, (name, response[:300])
        assert secret.encode() not in response, name  # not echoed either
    print(statuses)
    log = daemon.log()
    assert "refused HTTP request" in log  # the refusals are logged, without the request
    assert "Traceback" not in log
    assert _leaks(log, secret) == []


def test_grpc_metadata_carrying_the_key_leaves_no_piece_of_it_in_the_log(daemon: DaemonProcess) -> None:
    key = daemon.admin_key
    parts = split_key(key)
    assert parts is not None
    key_id, secret = parts
    codes = {}
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        gs = gatewayserver_pb2_grpc.GsStub(channel)
        ns = gatewayserver_pb2_grpc.NsGsStub(channel)
        request = identifiers_pb2.GatewayIdentifiers(gateway_id="gtw1")
        cases = {
            "valid": f"Bearer {key}",
            "wrong secret": f"Bearer NNSXS.{key_id}.{'A' * 64}",
            "without Bearer": key,
            "oversized": f"Bearer {key} {'A' * 9000}",
            "huge": f"Bearer {key} {'A' * 20000}",
            "garbled": f"Bearer {key}x",
        }
        for name, value in cases.items():
            try:
                gs.GetGatewayConnectionStats(request, metadata=(("authorization", value),), timeout=30)
                codes[name] = "OK"
            except grpc.RpcError as exc:
                codes[name] = exc.code().name
                assert secret not in (exc.details() or ""), name
        for name, value in {
            "cluster key, oversized": f"ClusterKey {CLUSTER_KEY} {'0' * 20000}",
            "cluster key without type": CLUSTER_KEY,
            "cluster key, garbled": f"ClusterKey {CLUSTER_KEY}zz",
        }.items():
            try:
                ns.ScheduleDownlink(messages_pb2.DownlinkMessage(), metadata=(("authorization", value),), timeout=30)
                codes[name] = "OK"
            except grpc.RpcError as exc:
                codes[name] = exc.code().name
                assert CLUSTER_KEY not in (exc.details() or ""), name
    print(codes)
    assert codes["valid"] == "NOT_FOUND"  # authenticated; the gateway is just not connected
    assert codes["wrong secret"] == "UNAUTHENTICATED"
    log = daemon.log()
    assert "Traceback" not in log
    assert _leaks(log, secret) == []
    assert _leaks(log, CLUSTER_KEY) == []
