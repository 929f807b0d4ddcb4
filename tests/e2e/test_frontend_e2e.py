"""The UDP frontend shell over a real socket: datagrams handled in the protocol callback, in arrival order."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from gatewayserver.io.udp.connection import Accepted, Rejected, UdpConnections
from gatewayserver.io.udp.frontend import UdpFrontend
from gatewayserver.registry import GatewayRegistry

EUI = bytes.fromhex("0102030405060708")


class _Server:
    """The two calls the frontend makes after `udp.accept`, recorded."""

    def __init__(self) -> None:
        self.udp = UdpConnections(GatewayRegistry())
        self.accepted_tokens: list[bytes] = []
        self.rejections: list[str] = []

    def accepted(self, acc: Accepted, addr: Any, now: int) -> None:
        self.accepted_tokens.append(acc.datagram.token)

    def rejected(self, result: Rejected, addr: Any) -> None:
        self.rejections.append(result.reason)


def _pull_data(token: int) -> bytes:
    return bytes([2]) + token.to_bytes(2, "big") + b"\x02" + EUI


async def test_datagrams_from_before_run_are_handled_first_and_in_order() -> None:
    server = _Server()
    frontend = await UdpFrontend.listen(server, "127.0.0.1:0")  # type: ignore[arg-type]
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2)
    try:
        # Sent while nobody runs the frontend: they wait in asyncio-dgram's queue.
        for token in (1, 2, 3):
            client.sendto(_pull_data(token), frontend.address)
        await asyncio.sleep(0.2)
        assert server.accepted_tokens == []
        task = asyncio.create_task(frontend.run())
        await asyncio.sleep(0.1)
        # Then the protocol callback takes over for what comes next.
        for token in (4, 5):
            client.sendto(_pull_data(token), frontend.address)
        # A blocking receive would stall the loop that has to answer: read from a thread.
        acks = [(await asyncio.to_thread(client.recvfrom, 64))[0] for _ in range(5)]
        assert [int.from_bytes(a[1:3], "big") for a in acks] == [1, 2, 3, 4, 5]
        assert all(a[3] == 0x04 for a in acks)  # PULL_ACK
        client.sendto(b"\x02\x00", frontend.address)  # too short: refused and counted, nothing else
        await asyncio.sleep(0.1)
        assert [int.from_bytes(t, "big") for t in server.accepted_tokens] == [1, 2, 3, 4, 5]
        assert server.rejections == ["too_short"]
        frontend.close()
        await asyncio.wait_for(task, 2)  # run() returns once the socket is closed
    finally:
        frontend.close()
        client.close()
