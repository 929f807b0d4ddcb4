"""What the UDP frontend relies on in asyncio-dgram beyond its documented `bind`/`DatagramServer` API.

`gatewayserver/io/udp/frontend.py` builds asyncio-dgram's `Protocol` and `DatagramServer` itself (to handle
datagrams in the protocol callback instead of through the receive queue). pyproject.toml pins asyncio-dgram's
major version; these tests fail with a message naming what changed if a release within it breaks that anyway.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Callable

import asyncio_dgram
import pytest
from asyncio_dgram.aio import DatagramServer, Protocol

from gatewayserver.io.udp.frontend import bind

_FIX = "asyncio-dgram changed an internal that gatewayserver/io/udp/frontend.py relies on; adapt bind() there"


def _parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_protocol_constructor() -> None:
    assert _parameters(Protocol.__init__) == ["self", "recvq", "excq", "drained"], _FIX
    assert callable(getattr(Protocol, "datagram_received", None)), _FIX


def test_datagram_server_constructor() -> None:
    assert _parameters(DatagramServer.__init__) == ["self", "transport", "recvq", "excq", "drained"], _FIX
    assert hasattr(asyncio_dgram, "TransportClosed"), _FIX


async def test_queue_protocol_over_a_real_socket() -> None:
    """Datagrams before a handler is set land on our queue as (data, addr); closing puts (None, None) there and
    makes `recv` raise TransportClosed: the frontend's run() depends on all three."""
    bound = await bind("127.0.0.1:0")
    address = bound.stream.sockname[:2]
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.sendto(b"first", address)
        async with asyncio.timeout(10):
            data, addr = await bound.recvq.get()
        assert data == b"first", _FIX
        assert addr[1] == client.getsockname()[1], _FIX

        bound.protocol.handler = lambda data, addr: None
        bound.stream.close()
        async with asyncio.timeout(10):
            assert await bound.recvq.get() == (None, None), _FIX
        with pytest.raises(asyncio_dgram.TransportClosed):
            await bound.stream.recv()
    finally:
        client.close()
        bound.stream.close()
