"""The asyncio shell around the UDP connection core.

asyncio-dgram binds the socket and owns its lifetime; datagrams are handled in the protocol's
`datagram_received` callback itself, the moment uvloop reads them: stamped with the read time, accepted by the
core, acked at once, then handed to the Gateway Server. Going through asyncio-dgram's receive queue instead costs a
queue hand-off and a task wake-up per datagram, which at a few thousand uplinks per second was a sixth of the
daemon's time. Nothing piles up in memory: a datagram is either handled or still in the kernel's socket buffer,
and that buffer (made large here) is the only bound, counted by the kernel when it overflows.

Beyond its public `bind`/`DatagramServer` API this relies on asyncio-dgram's `Protocol(recvq, excq, drained)`
and `DatagramServer(transport, recvq, excq, drained)` constructors and on the protocol putting `(data, addr)`
(and `(None, None)` at the end) on `recvq`. Its major version is pinned in pyproject.toml, and
tests/e2e/test_asyncio_dgram_contract.py fails with a clear message when any of that changes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncio_dgram
from asyncio_dgram.aio import DatagramServer, Protocol

from ...logs import format_address
from .connection import Rejected
from .metrics import DATAGRAMS_DROPPED

if TYPE_CHECKING:
    from .handler import UdpHandler

log = logging.getLogger(__name__)

SOCKET_BUFFER = 4 * 1024 * 1024

Handler = Callable[[bytes, Any], None]
# What asyncio-dgram's protocol puts on its receive queue: a datagram and its sender, or (None, None) at the end.
RecvQueue = asyncio.Queue[tuple[bytes | None, Any]]


class _DispatchingProtocol(Protocol):
    """asyncio-dgram's protocol, handing each datagram to a handler instead of its receive queue.

    Until a handler is set (between bind and `UdpFrontend` taking over) datagrams go to the queue as usual, and
    the frontend handles those first.
    """

    def __init__(self, recvq: RecvQueue, excq: asyncio.Queue[Exception], drained: asyncio.Event) -> None:
        super().__init__(recvq, excq, drained)
        self.handler: Handler | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        handler = self.handler
        if handler is None:
            super().datagram_received(data, addr)
            return
        try:
            handler(data, addr)
        except Exception:  # never let one datagram's bug reach uvloop, which would close the socket
            DATAGRAMS_DROPPED.labels("internal").inc()
            log.exception("datagram handling failed", extra={"remote": format_address(addr)})

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for a gateway that went away: expected, not worth an exception queue entry.
        log.debug("UDP socket error", extra={"error": str(exc)})


@dataclass(slots=True, frozen=True)
class Bound:
    """A bound socket: asyncio-dgram's stream, plus the transport and queue it was built from (kept here, so
    nothing reads them back out of the stream's private attributes)."""

    stream: DatagramServer
    protocol: _DispatchingProtocol
    transport: asyncio.DatagramTransport
    recvq: RecvQueue


async def bind(address: str, sock: socket.socket | None = None) -> Bound:
    """Bind like `asyncio_dgram.bind`, with the dispatching protocol and large socket buffers.

    With `sock` (a bound socket a worker inherited from its supervisor), use it instead of binding `address`.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    loop = asyncio.get_running_loop()
    recvq: RecvQueue = asyncio.Queue()
    excq: asyncio.Queue[Exception] = asyncio.Queue()
    drained = asyncio.Event()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if sock is not None:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _DispatchingProtocol(recvq, excq, drained), sock=sock
        )
    else:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _DispatchingProtocol(recvq, excq, drained), local_addr=(host, int(port)), family=family
        )
    sock = transport.get_extra_info("socket")
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:  # capped by net.core.rmem_max; the default still works
            pass
    # asyncio-dgram's stub annotates `transport` as a DatagramProtocol; at run time it is (and must be) the transport.
    stream = DatagramServer(transport, recvq, excq, drained)  # type: ignore[arg-type]
    return Bound(stream, protocol, transport, recvq)


class UdpFrontend:
    """One listener. `run()` handles datagrams until the socket closes; `send()` is how downlinks leave."""

    def __init__(self, handler: UdpHandler, bound: Bound) -> None:
        self.handler = handler
        self.stream = bound.stream
        self._protocol = bound.protocol
        self._transport = bound.transport  # sendto without an await per ack
        self._recvq = bound.recvq
        self._closing = False

    @classmethod
    async def listen(cls, handler: UdpHandler, address: str, sock: socket.socket | None = None) -> UdpFrontend:
        return cls(handler, await bind(address, sock))

    @property
    def address(self) -> tuple[str, int]:
        return self.stream.sockname[:2]

    def send(self, data: bytes, addr: Any) -> None:
        if not self._closing:
            self._transport.sendto(data, addr)

    async def run(self) -> None:
        """Take over from asyncio-dgram's queue, then wait for the socket to close."""
        recv = self.stream.recv
        handle = self._handle
        # Whatever arrived between bind and now sits in asyncio-dgram's queue: handle it in order first.
        queue = self._recvq
        while queue.qsize():
            data, addr = queue.get_nowait()
            if data is None:  # asyncio-dgram's end-of-stream marker
                return
            handle(data, addr)
        self._protocol.handler = handle
        try:
            while True:  # with the handler set, only the end-of-stream marker reaches the queue
                data, addr = await recv()
                handle(data, addr)
        except asyncio_dgram.TransportClosed:
            return

    def _handle(self, data: bytes, addr: Any) -> None:
        now = time.time_ns()
        result = self.handler.udp.accept(data, addr, now)
        if isinstance(result, Rejected):
            self.handler.rejected(result, addr)
            return
        if result.ack is not None:
            self._transport.sendto(result.ack, addr)
        if result.new_connection:
            result.connection.transmit = self.send
        self.handler.accepted(result, addr, now)

    def close(self) -> None:
        self._closing = True
        self.stream.close()

