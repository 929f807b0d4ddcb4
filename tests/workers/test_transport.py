"""The internal worker transport over real Unix sockets: `Peers` (the client every worker uses) against a
`FramedServer` serving a handler table, in this process or in a child process that a test kills."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import uvloop

from gatewayserver.downlink import errors as derr
from gatewayserver.errors import NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED, UNAVAILABLE, GsError
from gatewayserver.ttnpb import error_pb2
from gatewayserver.workers import framing as fr
from gatewayserver.workers import metrics, transport, wire
from gatewayserver.workers.dispatch import Handlers, grpc_handler
from gatewayserver.workers.peers import Peers, peer_error
from gatewayserver.workers.spec import WorkerSpec, socket_path

SECRET = "ab" * 32
ECHO = "/gs.worker.v1.Worker/Echo"
HANG = "/gs.worker.v1.Worker/Hang"
FAIL = "/gs.worker.v1.Worker/Fail"
COUNT = "/gs.worker.v1.Worker/Count"


class Table:
    """Handlers that record what happened to them."""

    def __init__(self) -> None:
        self.hanging = 0
        self.cancelled = 0
        self.produced = 0
        self.stream_closed = asyncio.Event()
        self.started = asyncio.Event()

    async def echo(self, body: bytes) -> bytes:
        await asyncio.sleep(0.001 * (body[0] % 5) if body else 0)  # answers come back out of order
        return body[::-1]

    async def hang(self, body: bytes) -> bytes:
        self.hanging += 1
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return b""

    async def fail(self, body: bytes) -> bytes:
        raise derr.schedule([derr.details_of(derr.schedule_path("gw-one", derr.not_connected("gw-one")))])

    async def count(self, body: bytes) -> AsyncIterator[bytes]:
        limit = int(body) if body else 0
        try:
            while not limit or self.produced < limit:
                self.produced += 1
                yield str(self.produced).encode()
                await asyncio.sleep(0)
            if limit:
                raise GsError("test", "stream_over", "the stream is over", code=NOT_FOUND)
        finally:
            self.stream_closed.set()

    def handlers(self) -> Handlers:
        return Handlers(
            unary={ECHO: self.echo, HANG: self.hang, FAIL: self.fail}, streams={COUNT: self.count}
        )


def spec(runtime_dir: Path, secret: str = SECRET) -> WorkerSpec:
    return WorkerSpec(0, 2, str(runtime_dir), secret)


async def serve(runtime_dir: Path, table: Table) -> transport.FramedServer:
    server = transport.FramedServer(table.handlers(), SECRET.encode())
    await server.start(socket_path(str(runtime_dir), 1))
    return server


def counter(family: object, *labels: str) -> float:
    return float(family.labels(*labels)._value.get())  # type: ignore[attr-defined]


async def test_many_concurrent_calls_share_one_connection(tmp_path: Path) -> None:
    await concurrent_calls(tmp_path)


def test_many_concurrent_calls_share_one_connection_under_uvloop(tmp_path: Path) -> None:
    uvloop.run(concurrent_calls(tmp_path))  # the daemon's loop: its transports are not asyncio's classes


async def concurrent_calls(tmp_path: Path) -> None:
    table = Table()
    server = await serve(tmp_path, table)
    peers = Peers(spec(tmp_path))
    try:
        bodies = [bytes([i % 256]) + f"call {i}".encode() for i in range(500)]
        answers = await asyncio.gather(*(peers.unary(1, ECHO, body) for body in bodies))
        assert answers == [body[::-1] for body in bodies]
        assert len(server.connections) == 1
    finally:
        await peers.close()
        await server.stop()


async def test_the_owner_s_error_crosses_unchanged(tmp_path: Path) -> None:
    table = Table()
    server = await serve(tmp_path, table)
    peers = Peers(spec(tmp_path))
    try:
        with pytest.raises(GsError) as info:
            await peers.unary(1, FAIL, b"")
        expected = await asyncio.gather(table.fail(b""), return_exceptions=True)
        assert derr.details_of(info.value) == derr.details_of(expected[0])  # type: ignore[arg-type]
        with pytest.raises(GsError) as info:
            await peers.unary(1, "/gs.worker.v1.Worker/Nothing", b"")
        assert info.value.name == "unknown_method"
        assert await peers.unary(1, ECHO, b"\x00ok") == b"ko\x00"  # the connection is still good
    finally:
        await peers.close()
        await server.stop()


async def test_a_deadline_ends_the_call_and_cancels_it_at_the_owner(tmp_path: Path) -> None:
    table = Table()
    server = await serve(tmp_path, table)
    peers = Peers(spec(tmp_path))
    before = counter(metrics.forwarded, "Hang", "DEADLINE_EXCEEDED")
    try:
        with pytest.raises(GsError) as info:
            await peers.unary(1, HANG, b"", deadline=0.2)
        assert info.value.name == "worker_unavailable" and info.value.code == UNAVAILABLE
        assert str(info.value.attributes["reason"]).startswith("DEADLINE_EXCEEDED")
        assert "worker 1 is not answering" in str(info.value)
        async with asyncio.timeout(30):
            while table.cancelled < 1:  # the CANCEL frame (or the owner's own deadline) stopped the handler
                await asyncio.sleep(0.01)
        assert counter(metrics.forwarded, "Hang", "DEADLINE_EXCEEDED") == before + 1
        assert not server.connections or not next(iter(server.connections)).tasks
        assert await peers.unary(1, ECHO, b"\x00x") == b"x\x00"
    finally:
        await peers.close()
        await server.stop()


async def test_a_wrong_or_missing_secret_is_refused_and_counted(tmp_path: Path) -> None:
    table = Table()
    server = await serve(tmp_path, table)
    wrong_before = counter(metrics.refused, "wrong")
    missing_before = counter(metrics.refused, "missing")
    peers = Peers(spec(tmp_path, secret="00" * 32))
    try:
        with pytest.raises(GsError) as info:
            await peers.unary(1, ECHO, b"\x00x")
        assert info.value.name == "worker_auth" and info.value.code == PERMISSION_DENIED
        assert counter(metrics.refused, "wrong") == wrong_before + 1
        # No HELLO at all: a call as the first frame.
        reader, writer = await asyncio.open_unix_connection(socket_path(str(tmp_path), 1))
        writer.write(fr.encode_call(fr.CALL, 1, ECHO.encode(), 1000, b"\x00x"))
        answer = await asyncio.wait_for(reader.read(), 30)  # one ERROR frame, then the server closes
        (frame,) = fr.FrameDecoder(fr.SERVER_KINDS).feed(answer)
        details = error_pb2.ErrorDetails.FromString(frame.payload)
        assert (frame.kind, frame.request_id, details.name, details.code) == (fr.ERROR, 0, "worker_auth",
                                                                              UNAUTHENTICATED)
        assert SECRET not in answer.decode(errors="replace")
        assert counter(metrics.refused, "missing") == missing_before + 1
        writer.close()
        assert table.hanging == 0 and not server.connections or all(not c.tasks for c in server.connections)
    finally:
        await peers.close()
        await server.stop()


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        ((fr.MAX_FRAME + 1).to_bytes(4, "big") + b"\x02\x00\x00\x00\x01", "oversize"),
        (b"\x00\x00\x00\x01\x02", "short"),
        (fr.encode(77, 1, b"?"), "kind"),
        (fr.encode(fr.CALL, 1, b"\x00"), "call"),
        (fr.encode(fr.RESPONSE, 1, b"x"), "kind"),
        (fr.encode(fr.HELLO, 0, SECRET.encode()), "unexpected"),
        (fr.encode(fr.CREDIT, 1, b"\x01"), "credit"),
        (fr.encode_call(fr.CALL, 1, ECHO.encode(), 0, b"\x00x")[:-1], "truncated"),
    ],
)
async def test_malformed_input_after_the_secret_closes_the_connection(
    tmp_path: Path, garbage: bytes, reason: str
) -> None:
    table = Table()
    server = await serve(tmp_path, table)
    before = counter(metrics.frames_rejected, reason)
    try:
        reader, writer = await asyncio.open_unix_connection(socket_path(str(tmp_path), 1))
        writer.write(fr.encode(fr.HELLO, 0, SECRET.encode()) + garbage)
        if reason == "truncated":
            writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed without an answer
        writer.close()
        async with asyncio.timeout(30):
            while server.connections:
                await asyncio.sleep(0.01)
        assert counter(metrics.frames_rejected, reason) == before + 1
        assert table.hanging == 0
    finally:
        await server.stop()


async def test_a_connection_that_never_presents_the_secret_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "HELLO_TIMEOUT", 0.2)
    server = await serve(tmp_path, Table())
    before = counter(metrics.frames_rejected, "hello_timeout")
    try:
        reader, writer = await asyncio.open_unix_connection(socket_path(str(tmp_path), 1))
        assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()
        assert counter(metrics.frames_rejected, "hello_timeout") == before + 1
    finally:
        await server.stop()


async def test_a_slow_reader_holds_the_stream_producer_and_memory_stays_bounded(tmp_path: Path) -> None:
    await slow_reader(tmp_path)


def test_a_slow_reader_holds_the_stream_producer_under_uvloop(tmp_path: Path) -> None:
    uvloop.run(slow_reader(tmp_path))


async def slow_reader(tmp_path: Path) -> None:
    table = Table()
    server = await serve(tmp_path, table)
    peers = Peers(spec(tmp_path))
    window = transport.STREAM_WINDOW
    try:
        items = peers.stream(1, COUNT, b"")
        assert await anext(items) == b"1"
        async with asyncio.timeout(30):
            while table.produced < window:
                await asyncio.sleep(0.01)
        for _ in range(50):  # plenty of loop turns for a producer that ignored the window to run ahead
            await asyncio.sleep(0.005)
        conn = peers._connections[1]
        (incoming,) = conn.streams.values()
        print(f"produced {table.produced}, queued at the client {len(incoming.items)}, window {window}")
        assert table.produced == window  # the credit granted, not one more
        assert len(incoming.items) <= window
        got = [await anext(items) for _ in range(10 * window)]
        assert got == [str(i).encode() for i in range(2, 10 * window + 2)]  # in order, none lost
        assert table.produced <= 10 * window + 1 + window
        await items.aclose()  # the owner's generator is closed (an event subscription would be detached)
        async with asyncio.timeout(30):
            await table.stream_closed.wait()
        assert not conn.streams and all(not c.tasks for c in server.connections)
    finally:
        await peers.close()
        await server.stop()


async def test_a_stream_ends_with_the_owner_s_error(tmp_path: Path) -> None:
    table = Table()
    server = await serve(tmp_path, table)
    peers = Peers(spec(tmp_path))
    try:
        got = []
        with pytest.raises(GsError) as info:
            async for item in peers.stream(1, COUNT, b"1000"):
                got.append(item)
        assert len(got) == 1000 and info.value.name == "stream_over" and info.value.code == NOT_FOUND
    finally:
        await peers.close()
        await server.stop()


SERVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, uvloop
    from gatewayserver.workers.dispatch import Handlers
    from gatewayserver.workers.transport import FramedServer

    async def hang(body):
        await asyncio.Event().wait()

    async def echo(body):
        return body

    async def main():
        server = FramedServer(Handlers(unary={sys.argv[3]: hang, sys.argv[4]: echo}), sys.argv[2].encode())
        await server.start(sys.argv[1])
        print("ready", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())
    """
)


def start_peer_process(path: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, path, SECRET, HANG, ECHO], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


async def test_a_peer_killed_mid_call_fails_the_call_at_once_and_is_reached_again_after_restart(
    tmp_path: Path,
) -> None:
    path = socket_path(str(tmp_path), 1)
    process = await asyncio.to_thread(start_peer_process, path)
    peers = Peers(spec(tmp_path))
    try:
        assert await peers.unary(1, ECHO, b"hello") == b"hello"
        calls = [asyncio.create_task(peers.unary(1, HANG, b"", deadline=60)) for _ in range(20)]
        await asyncio.sleep(0.2)  # the calls are written; the peer holds them
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)
        results = await asyncio.gather(*calls, return_exceptions=True)
        # Every call failed because the connection went, not at its 60 s deadline.
        reasons = {str(r.attributes["reason"]) for r in results if isinstance(r, GsError)}
        assert reasons == {"UNAVAILABLE: connection lost"}, results
        # Down: the socket file is left behind but nobody listens; refused at once.
        with pytest.raises(GsError) as info:
            await peers.unary(1, ECHO, b"x", deadline=60)
        assert info.value.attributes["reason"] == "UNAVAILABLE: connection refused"
        assert "worker 1 is not answering" in str(info.value)
        # Restarted: the very next call reaches it.
        process = await asyncio.to_thread(start_peer_process, path)
        assert await peers.unary(1, ECHO, b"back") == b"back"
        # wait_for_ready: a call made while the peer is down goes through once it is back.
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)
        waiting = asyncio.create_task(peers.unary(1, ECHO, b"ready", deadline=60, wait_for_ready=True))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        process = await asyncio.to_thread(start_peer_process, path)
        assert await waiting == b"ready"
    finally:
        await peers.close()
        process.kill()
        process.wait()


async def test_the_same_handlers_mount_on_a_grpc_server(tmp_path: Path) -> None:
    """The table is transport-agnostic: behind gRPC (with its own credential check) it answers the same."""
    table = Table()

    async def check(context: grpc.aio.ServicerContext) -> None:
        if ("authorization", "key") not in tuple(context.invocation_metadata() or ()):
            raise GsError("test", "no_key", "no key", code=UNAUTHENTICATED)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc_handler(table.handlers(), "gs.worker.v1.Worker", check),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(ECHO, request_serializer=wire.identity, response_deserializer=wire.identity)
            assert await echo(b"\x00abc", metadata=(("authorization", "key"),), timeout=30) == b"cba\x00"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await echo(b"\x00abc", timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            fail = channel.unary_unary(FAIL, request_serializer=wire.identity, response_deserializer=wire.identity)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await fail(b"", metadata=(("authorization", "key"),), timeout=30)
            expected = await asyncio.gather(table.fail(b""), return_exceptions=True)
            assert derr.details_of(peer_error(1, info.value)) == derr.details_of(expected[0])  # type: ignore[arg-type]
            count = channel.unary_stream(COUNT, request_serializer=wire.identity, response_deserializer=wire.identity)
            stream = count(b"5", metadata=(("authorization", "key"),), timeout=30)
            got = []
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for item in stream:
                    got.append(item)
            assert got == [b"1", b"2", b"3", b"4", b"5"]
            assert peer_error(1, info.value).name == "stream_over"
    finally:
        await server.stop(None)


async def test_stopping_the_server_ends_open_streams_and_calls_at_once(tmp_path: Path) -> None:
    """A worker shutting down with a peer's event stream open (never finishing by itself, its reader slow) and a
    call in progress: the stop does not wait for them, and the peer learns at once."""
    table = Table()
    server = await serve(tmp_path, table)
    peers = Peers(spec(tmp_path))
    try:
        items = peers.stream(1, COUNT, b"")
        assert await anext(items) == b"1"
        call = asyncio.create_task(peers.unary(1, HANG, b"", deadline=60))
        async with asyncio.timeout(30):
            await table.started.wait()
            await server.stop(grace=0.1)
        with pytest.raises(GsError) as info:
            await call
        assert info.value.attributes["reason"] == "UNAVAILABLE: connection lost"
        with pytest.raises(GsError) as info:
            while True:
                await anext(items)
        assert info.value.attributes["reason"] == "UNAVAILABLE: connection lost"
        assert table.stream_closed.is_set() and table.cancelled == 1
    finally:
        await peers.close()


async def test_the_refusal_reaches_a_client_that_sent_calls_right_behind_a_wrong_secret(tmp_path: Path) -> None:
    """Closing a Unix socket with unread data resets it, which could drop the refusal before the client read it:
    the server half-closes and drains instead."""
    server = await serve(tmp_path, Table())
    try:
        for _ in range(20):
            reader, writer = await asyncio.open_unix_connection(socket_path(str(tmp_path), 1))
            calls = b"".join(fr.encode_call(fr.CALL, i, ECHO.encode(), 1000, b"x" * 8000) for i in range(1, 60))
            writer.write(fr.encode(fr.HELLO, 0, b"00" * 32) + calls)
            await writer.drain()
            await asyncio.sleep(0.05)  # the server has refused and stopped reading what followed the HELLO
            answer = await asyncio.wait_for(reader.read(), 30)
            (frame,) = fr.FrameDecoder(fr.SERVER_KINDS).feed(answer)
            assert error_pb2.ErrorDetails.FromString(frame.payload).name == "worker_auth"
            writer.close()
    finally:
        await server.stop()


async def test_a_large_call_right_behind_the_hello_is_answered(tmp_path: Path) -> None:
    """The HELLO is read under the small pre-authentication limit; a call in the same read (the first forwarded
    ScheduleDownlink on a new connection) is read under the full one, not refused as oversize."""
    server = await serve(tmp_path, Table())
    try:
        reader, writer = await asyncio.open_unix_connection(socket_path(str(tmp_path), 1))
        body = b"\x00" + b"y" * 5000
        writer.write(fr.encode(fr.HELLO, 0, SECRET.encode()) + fr.encode_call(fr.CALL, 7, ECHO.encode(), 5000, body))
        decoder = fr.FrameDecoder(fr.SERVER_KINDS)
        frames: list[fr.Frame] = []
        async with asyncio.timeout(30):
            while not frames:
                chunk = await reader.read(65536)
                assert chunk, "connection closed"
                frames = decoder.feed(chunk)
        assert frames == [fr.Frame(fr.RESPONSE, 7, body[::-1])]
        writer.close()
    finally:
        await server.stop()
