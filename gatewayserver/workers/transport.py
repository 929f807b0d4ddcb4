"""The I/O shell around `framing`: a server that serves a `dispatch.Handlers` table on a Unix socket, and the
client connection a worker keeps to each peer. Both are asyncio `Protocol`s: a forwarded call costs one write and
one read callback on each side, no per-call stream objects or HTTP/2 state.

Server: the first frame must be HELLO with the worker secret (compared in constant time, never logged) within
`HELLO_TIMEOUT`; until then a frame may be at most `framing.MAX_HELLO_FRAME` bytes. A refused connection gets one
ERROR frame (id 0, `worker_auth`) and is closed. Each call runs as its own task, at most `MAX_CONCURRENT` per
connection, cancelled at its deadline, by a CANCEL frame, or when the connection goes. A stream never sends more
items than the client granted, and waits while the socket's write buffer is full, so a slow reader holds the
producer (an event subscription then ends with its own `buffer_full`, as a local one would).

Client: every call has a deadline; when the connection is lost, every call and stream on it fails at once with
`worker_unavailable` naming the worker. A stream's queue holds at most its window.

Malformed input on either side closes the connection, counted in `gs_worker_frames_rejected_total{reason}` and
logged (the log is rate-limited by the handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
from collections import deque
from collections.abc import AsyncGenerator
from typing import cast

from gatewayserver.error_details import as_gs_error, to_error_details
from gatewayserver.errors import PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAUTHENTICATED, UNIMPLEMENTED, GsError
from gatewayserver.ttnpb import error_pb2

from . import framing as fr
from . import metrics, wire
from .dispatch import Handlers, Streaming, Unary

log = logging.getLogger(__name__)

#: Calls (unary and streams) one connection may have running at the server at once; more are refused.
MAX_CONCURRENT = 4096
#: How long a new connection may take to present the worker secret.
HELLO_TIMEOUT = 5.0
#: How long a refused client may take to close its side after reading the refusal.
REFUSE_LINGER = 1.0
#: Stream items the server may send ahead of the client's reading: the most a client's queue holds.
STREAM_WINDOW = 256


def err_worker_auth(reason: str) -> GsError:
    return GsError(
        wire.NS, "worker_auth", "internal worker call refused: {reason} worker secret",
        code=UNAUTHENTICATED if reason == "missing" else PERMISSION_DENIED, attributes={"reason": reason},
    )


def err_unknown_method(method: str) -> GsError:
    return GsError(wire.NS, "unknown_method", "no internal method `{method}`", code=UNIMPLEMENTED,
                   attributes={"method": method[:100]})


def err_too_many_calls() -> GsError:
    return GsError(wire.NS, "too_many_calls", "more than {max} concurrent internal calls on one connection",
                   code=RESOURCE_EXHAUSTED, attributes={"max": MAX_CONCURRENT})


def _rejected(reason: str, side: str, detail: str) -> None:
    metrics.frames_rejected.labels(reason).inc()
    log.warning("internal worker connection closed: malformed input",
                extra={"reason": reason, "side": side, "detail": detail[:200]})


def error_frame(request_id: int, exc: BaseException) -> bytes:
    """ERROR frame for `exc`: the typed error's `ErrorDetails`; an untyped one is logged here and crosses as an
    opaque internal error under a correlation ID found in both logs."""
    err = as_gs_error(exc)
    correlation_id = ""
    if err is not exc:
        correlation_id = secrets.token_hex(16)
        log.error("internal error in a worker call", exc_info=exc, extra={"correlation_id": correlation_id})
    return fr.encode(fr.ERROR, request_id, to_error_details(err, correlation_id).SerializeToString())


# --- server ---------------------------------------------------------------------------------------------------


class FramedServer:
    """Serves `handlers` on a Unix socket to clients presenting `secret`."""

    def __init__(self, handlers: Handlers, secret: bytes) -> None:
        self.unary: dict[bytes, Unary] = {name.encode(): h for name, h in handlers.unary.items()}
        self.streams: dict[bytes, Streaming] = {name.encode(): h for name, h in handlers.streams.items()}
        self.secret = secret
        self.connections: set[ServerConnection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, path: str) -> None:
        """Listen on `path` (created mode 0600: the umask is narrowed around the bind, not chmod-ed after)."""
        loop = asyncio.get_running_loop()
        old_umask = os.umask(0o177)
        try:
            self._server = await loop.create_unix_server(lambda: ServerConnection(self), path)
        finally:
            os.umask(old_umask)

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting; let running unary calls finish for up to `grace` seconds (streams never finish by
        themselves), then cancel whatever runs and drop the connections."""
        if self._server is not None:
            self._server.close()
            self._server = None
        unary = [task for conn in self.connections for rid, task in conn.tasks.items() if rid not in conn.credits]
        if unary and grace:
            await asyncio.wait(unary, timeout=grace)
        tasks = [task for conn in self.connections for task in conn.tasks.values()]
        for conn in list(self.connections):
            conn.abort()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class _Credit:
    """Items a stream may still send, and the event a producer waits on when there are none."""

    __slots__ = ("available", "event")

    def __init__(self, window: int) -> None:
        self.available = window
        self.event = asyncio.Event()

    def grant(self, items: int) -> None:
        self.available = min(self.available + items, fr.MAX_U32)
        self.event.set()


class ServerConnection(asyncio.Protocol):
    def __init__(self, server: FramedServer) -> None:
        self.server = server
        self.decoder = fr.FrameDecoder(fr.CLIENT_KINDS, fr.MAX_HELLO_FRAME)
        self.authenticated = False
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.credits: dict[int, _Credit] = {}
        self.transport: asyncio.Transport | None = None
        self._closed = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._hello_timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # --- asyncio callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.server.connections.add(self)
        self._hello_timer = self._loop.call_later(HELLO_TIMEOUT, self._hello_expired)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            if not self.authenticated:
                # The HELLO alone, under the small limit; calls pipelined behind it are read once it passed.
                hello = self.decoder.feed(data, 1)
                if not hello:
                    return
                self._hello(hello[0])
                if self._closed:
                    return
                data = b""
            for frame in self.decoder.feed(data):
                self._frame(frame)
                if self._closed:
                    return
        except fr.FrameError as exc:
            _rejected(exc.reason, "server", str(exc))
            self.close()

    def eof_received(self) -> bool | None:
        if self.decoder.pending and not self._closed:
            _rejected("truncated", "server", f"{self.decoder.pending} bytes of an unfinished frame")
        return None  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server.connections.discard(self)
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        for task in self.tasks.values():
            task.cancel()
        self._writable.set()  # wake producers: they see the connection closed

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        """Cancel every call and drop the connection now, unwritten answers included (server stopping)."""
        self._closed = True
        for task in self.tasks.values():
            task.cancel()
        if self.transport is not None:
            self.transport.abort()

    # --- frames ---

    def _hello_expired(self) -> None:
        if not self.authenticated and not self._closed:
            _rejected("hello_timeout", "server", f"no worker secret within {HELLO_TIMEOUT} s")
            self.close()

    def _refuse(self, reason: str) -> None:
        metrics.refused.labels(reason).inc()
        log.warning("internal worker call refused", extra={"reason": f"{reason} worker secret"})
        self._send(error_frame(0, err_worker_auth(reason)))
        self._closed = True  # from now on whatever arrives is dropped unread (data_received)
        transport = self.transport
        if transport is not None:
            # Half-close and drain instead of closing: a Unix socket closed with unread data (the client's calls
            # right behind its HELLO) resets the connection, and the client could lose the refusal with it.
            if transport.can_write_eof():
                transport.write_eof()
                self._loop.call_later(REFUSE_LINGER, transport.abort)
            else:  # pragma: no cover - every stream transport asyncio and uvloop give here can
                transport.close()

    def _hello(self, frame: fr.Frame) -> None:
        if frame.kind != fr.HELLO:
            self._refuse("missing")
        elif not hmac.compare_digest(frame.payload, self.server.secret):
            self._refuse("wrong")
        else:
            self.authenticated = True
            self.decoder.max_frame = fr.MAX_FRAME
            if self._hello_timer is not None:
                self._hello_timer.cancel()
                self._hello_timer = None

    def _frame(self, frame: fr.Frame) -> None:
        kind, request_id, payload = frame
        if kind == fr.CALL or kind == fr.OPEN:
            method, number, body = fr.decode_call(payload)
            if request_id in self.tasks:
                raise fr.FrameError("duplicate_id", f"request id {request_id} in use")
            if len(self.tasks) >= MAX_CONCURRENT:
                self._send(error_frame(request_id, err_too_many_calls()))
                return
            if kind == fr.CALL:
                unary = self.server.unary.get(method)
                if unary is None:
                    self._send(error_frame(request_id, err_unknown_method(method.decode(errors="replace"))))
                    return
                task = self._loop.create_task(self._unary(request_id, unary, body))
                if number:
                    timer = self._loop.call_later(number / 1000, task.cancel)
                    task.add_done_callback(lambda _: timer.cancel())
            else:
                stream = self.server.streams.get(method)
                if stream is None:
                    self._send(error_frame(request_id, err_unknown_method(method.decode(errors="replace"))))
                    return
                credit = self.credits[request_id] = _Credit(number)
                task = self._loop.create_task(self._stream(request_id, stream, body, credit))
            self.tasks[request_id] = task
        elif kind == fr.CANCEL:
            running = self.tasks.get(request_id)
            if running is not None:  # else it finished and its answer crossed the CANCEL: nothing to do
                running.cancel()
        elif kind == fr.CREDIT:
            granted = fr.decode_u32(payload)
            open_stream = self.credits.get(request_id)
            if open_stream is not None:
                open_stream.grant(granted)
        else:  # a second HELLO
            raise fr.FrameError("unexpected", f"kind {kind} after the secret")

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def _unary(self, request_id: int, handler: Unary, body: bytes) -> None:
        try:
            response = await handler(body)
        except asyncio.CancelledError:
            pass  # the client gave up (deadline, CANCEL) or went away: nobody reads an answer
        except Exception as exc:
            self._send(error_frame(request_id, exc))
        else:
            self._send(fr.encode(fr.RESPONSE, request_id, response))
        finally:
            self.tasks.pop(request_id, None)

    async def _stream(self, request_id: int, handler: Streaming, body: bytes, credit: _Credit) -> None:
        items = handler(body)
        try:
            while True:
                while credit.available <= 0:  # the client has not read what it was sent: hold the producer
                    credit.event.clear()
                    await credit.event.wait()
                if not self._writable.is_set():
                    await self._writable.wait()
                if self._closed:
                    return
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    self._send(fr.encode(fr.END, request_id))
                    return
                credit.available -= 1
                self._send(fr.encode(fr.ITEM, request_id, item))
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self._send(error_frame(request_id, exc))
        finally:
            self.tasks.pop(request_id, None)
            self.credits.pop(request_id, None)
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


# --- client ---------------------------------------------------------------------------------------------------


class _Incoming:
    """One open stream at the client: at most `window` unread items."""

    __slots__ = ("items", "window", "unacknowledged", "done", "error", "waiter")

    def __init__(self, window: int) -> None:
        self.items: deque[bytes] = deque()
        self.window = window
        self.unacknowledged = 0
        self.done = False
        self.error: GsError | None = None
        self.waiter: asyncio.Future[None] | None = None

    def push(self, item: bytes) -> bool:
        if len(self.items) >= self.window:
            return False  # more than the credit granted: the server broke the protocol
        self.items.append(item)
        self._wake()
        return True

    def finish(self, error: GsError | None) -> None:
        if not self.done:
            self.done = True
            self.error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class ClientConnection(asyncio.Protocol):
    """A worker's connection to peer `index`; many calls and streams at once, told apart by request id."""

    def __init__(self, index: int, secret: bytes) -> None:
        self.index = index
        self._hello = fr.encode(fr.HELLO, 0, secret)
        self.decoder = fr.FrameDecoder(fr.SERVER_KINDS)
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.streams: dict[int, _Incoming] = {}
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: GsError | None = None
        self._next_id = 0
        self._loop = asyncio.get_running_loop()

    # --- asyncio callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.transport.write(self._hello)  # calls follow at once: the server reads the secret first

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except fr.FrameError as exc:
            _rejected(exc.reason, "client", str(exc))
            self._fail(wire.err_worker_unavailable(self.index, f"UNAVAILABLE: malformed answer ({exc.reason})"))
            return
        for kind, request_id, payload in frames:
            if kind == fr.RESPONSE:
                future = self.pending.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(payload)
            elif kind == fr.ITEM:
                stream = self.streams.get(request_id)
                if stream is not None and not stream.push(payload):
                    _rejected("credit", "client", f"more items than the window of {stream.window}")
                    self._fail(wire.err_worker_unavailable(self.index, "UNAVAILABLE: stream window exceeded"))
                    return
            elif kind == fr.END:
                stream = self.streams.pop(request_id, None)
                if stream is not None:
                    stream.finish(None)
            else:  # ERROR
                error = self._peer_error(payload)
                if request_id == 0:  # the whole connection refused
                    self._fail(error)
                    return
                future = self.pending.pop(request_id, None)
                if future is not None:
                    if not future.done():
                        future.set_exception(error)
                else:
                    stream = self.streams.pop(request_id, None)
                    if stream is not None:
                        stream.finish(error)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.decoder.pending and not self.closed:
            _rejected("truncated", "client", f"{self.decoder.pending} bytes of an unfinished frame")
        self._fail(wire.err_worker_unavailable(self.index, "UNAVAILABLE: connection lost"))

    def _peer_error(self, payload: bytes) -> GsError:
        try:
            return wire.error_from_details(error_pb2.ErrorDetails.FromString(payload))
        except Exception:  # the peer's bug: report the call as failed
            log.exception("unreadable error from worker", extra={"worker": self.index})
            return wire.err_worker_unavailable(self.index, "UNKNOWN: unreadable error")

    def _fail(self, error: GsError) -> None:
        """Every call and stream on this connection ends with `error`; the connection is not used again."""
        if self.closed:
            return
        self.closed = True
        self.error = error
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.finish(error)
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        self._fail(wire.err_worker_unavailable(self.index, "UNAVAILABLE: connection closed"))

    # --- calls ---

    def _request_id(self) -> int:
        while True:
            self._next_id = self._next_id % fr.MAX_U32 + 1  # 1 .. 2**32-1; 0 is the connection itself
            if self._next_id not in self.pending and self._next_id not in self.streams:
                return self._next_id

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not self.closed:
            transport.write(data)

    async def call(self, method: bytes, body: bytes, timeout: float) -> bytes:
        """One unary call; raises the peer's `GsError`, or `worker_unavailable` (deadline, connection lost)."""
        if self.closed:
            assert self.error is not None
            raise self.error
        request_id = self._request_id()
        future: asyncio.Future[bytes] = self._loop.create_future()
        self.pending[request_id] = future
        self._write(fr.encode_call(fr.CALL, request_id, method, int(timeout * 1000) + 1, body))
        timer = self._loop.call_later(timeout, _expire, future)
        try:
            return await future
        except TimeoutError:
            reason = f"DEADLINE_EXCEEDED: no answer within {timeout:g} s"
            raise wire.err_worker_unavailable(self.index, reason) from None
        finally:
            timer.cancel()
            if self.pending.pop(request_id, None) is not None:  # deadline or caller cancelled: tell the server
                self._write(fr.encode(fr.CANCEL, request_id))

    async def stream(
        self, method: bytes, body: bytes, window: int = STREAM_WINDOW
    ) -> AsyncGenerator[bytes, None]:
        """A server stream: its items until it ends; raises as `call` does. Closing the iterator cancels it."""
        if self.closed:
            assert self.error is not None
            raise self.error
        request_id = self._request_id()
        state = self.streams[request_id] = _Incoming(window)
        self._write(fr.encode_call(fr.OPEN, request_id, method, window, body))
        try:
            while True:
                while not state.items:
                    if state.done:
                        if state.error is not None:
                            raise state.error
                        return
                    state.waiter = self._loop.create_future()
                    await state.waiter
                    state.waiter = None
                item = state.items.popleft()
                state.unacknowledged += 1
                if state.unacknowledged >= max(1, window // 2):  # room again: let the server send more
                    self._write(fr.encode(fr.CREDIT, request_id, fr.encode_u32(state.unacknowledged)))
                    state.unacknowledged = 0
                yield item
        finally:
            if self.streams.pop(request_id, None) is not None:
                self._write(fr.encode(fr.CANCEL, request_id))


async def connect(index: int, path: str, secret: bytes) -> ClientConnection:
    """A connection to the worker serving `path`; raises `worker_unavailable` at once if nobody listens there."""
    loop = asyncio.get_running_loop()
    try:
        _, conn = await loop.create_unix_connection(lambda: ClientConnection(index, secret), path)
    except (ConnectionRefusedError, FileNotFoundError):
        raise wire.err_worker_unavailable(index, "UNAVAILABLE: connection refused") from None
    except OSError as exc:
        raise wire.err_worker_unavailable(index, f"UNAVAILABLE: {exc.strerror or exc}") from None
    return conn


__all__ = [
    "HELLO_TIMEOUT",
    "MAX_CONCURRENT",
    "STREAM_WINDOW",
    "ClientConnection",
    "FramedServer",
    "ServerConnection",
    "connect",
    "err_worker_auth",
    "error_frame",
]
