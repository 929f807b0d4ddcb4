"""The asyncio shell around the UDP connection core.

It reads datagrams with asyncio-dgram, stamps them with the read time, lets the core accept them, sends the ack
at once and only then hands the datagram to the Gateway Server. The receive queue between the socket callback and
this loop is bounded: under a flood beyond what one core can parse, datagrams are dropped and counted instead of
piling up in memory (the kernel's socket buffer bounds what happens before that).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import asyncio_dgram
from asyncio_dgram.aio import DatagramServer, Protocol

from .connection import Accepted
from .metrics import DATAGRAMS_DROPPED

if TYPE_CHECKING:
    from ...server import GatewayServer

log = logging.getLogger(__name__)

DEFAULT_RECEIVE_QUEUE = 65536
SOCKET_BUFFER = 4 * 1024 * 1024


class _BoundedProtocol(Protocol):
    """asyncio-dgram's protocol with a bound on datagrams waiting to be read by the loop below."""

    def __init__(self, recvq: asyncio.Queue[Any], excq: asyncio.Queue[Any], drained: asyncio.Event, bound: int):
        super().__init__(recvq, excq, drained)
        self._bound = bound
        self._queue = recvq

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._queue.qsize() >= self._bound:
            DATAGRAMS_DROPPED.labels("receive_queue_full").inc()
            return
        self._queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for a gateway that went away: expected, not worth an exception queue entry.
        log.debug("UDP socket error", extra={"error": str(exc)})


async def bind(address: str, bound: int = DEFAULT_RECEIVE_QUEUE) -> tuple[DatagramServer, asyncio.Queue[Any]]:
    """Bind like `asyncio_dgram.bind`, with the bounded protocol and large socket buffers.

    Returns the stream and its receive queue, so the reader can drain datagrams that arrived together in one
    wake-up instead of paying a task switch per datagram.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    loop = asyncio.get_running_loop()
    recvq: asyncio.Queue[Any] = asyncio.Queue()
    excq: asyncio.Queue[Any] = asyncio.Queue()
    drained = asyncio.Event()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _BoundedProtocol(recvq, excq, drained, bound), local_addr=(host, int(port)), family=family
    )
    sock = transport.get_extra_info("socket")
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:  # capped by net.core.rmem_max; the default still works
            pass
    return DatagramServer(transport, recvq, excq, drained), recvq


class UdpFrontend:
    """One listener. `run()` is the receive loop; `send()` is how downlinks leave."""

    def __init__(self, server: GatewayServer, stream: DatagramServer, queue: asyncio.Queue[Any]) -> None:
        self.server = server
        self.stream = stream
        self._queue = queue
        self._transport = stream._transport  # noqa: SLF001 - sendto without an await per ack
        self._closing = False

    @classmethod
    async def listen(cls, server: GatewayServer, address: str) -> UdpFrontend:
        stream, queue = await bind(address)
        return cls(server, stream, queue)

    @property
    def address(self) -> tuple[str, int]:
        return self.stream.sockname[:2]

    def send(self, data: bytes, addr: Any) -> None:
        if not self._closing:
            self._transport.sendto(data, addr)

    async def run(self) -> None:
        recv = self.stream.recv
        queue = self._queue
        handle = self._handle
        while True:
            try:
                data, addr = await recv()
            except asyncio_dgram.TransportClosed:
                return
            handle(data, addr)
            # Whatever else arrived in the same loop iteration is handled without another wake-up.
            while queue.qsize():
                data, addr = queue.get_nowait()
                if data is None:  # asyncio-dgram's end-of-stream marker
                    return
                handle(data, addr)

    def _handle(self, data: bytes, addr: Any) -> None:
        now = time.time_ns()
        result = self.server.udp.accept(data, addr, now)
        if result.__class__ is not Accepted:
            self.server.rejected(result, addr)  # type: ignore[arg-type]
            return
        if result.ack is not None:  # type: ignore[union-attr]
            self._transport.sendto(result.ack, addr)  # type: ignore[union-attr]
        if result.new_connection:  # type: ignore[union-attr]
            result.connection.transmit = self.send  # type: ignore[union-attr]
        self.server.accepted(result, addr, now)  # type: ignore[arg-type]

    def close(self) -> None:
        self._closing = True
        self.stream.close()

