"""One worker's place in the group at run time: its internal server, its peers, and the routed views the public
APIs are built on. The daemon creates a `WorkerGroup` only when it is given a `WorkerSpec`; a single process has
none and its APIs use the daemon directly, with no overhead.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, generate_latest

from gatewayserver.api.streams import StreamLimits, StreamSlots
from gatewayserver.errors import GsError

from . import wire
from .events import RoutedEventBackend
from .internal import InternalServer
from .links import LinkAnnouncer
from .metrics import WORKER_GATEWAYS
from .exposition import merge_expositions
from .peers import METRICS_DEADLINE, Peers
from .routing import RoutedGatewayServer
from .spec import WorkerSpec

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.events.bus import EventBus
    from gatewayserver.server import GatewayServer


class WorkerGroup:
    def __init__(
        self, spec: WorkerSpec, server: GatewayServer, bus: EventBus, stream_limits: StreamLimits | None = None
    ) -> None:
        self.spec = spec
        self.peers = Peers(spec)
        self.links = LinkAnnouncer(spec, server, self.peers)
        #: Open event streams, for the public API and the internal server alike: this worker's streams and one
        #: per stream of every peer, so the bounds are the daemon's (`events.py`). Exists before the internal
        #: server starts, so a peer's stream is counted from the first.
        self.stream_slots = StreamSlots(stream_limits or StreamLimits())
        self.internal = InternalServer(spec, server, bus, self.links, self.stream_slots)
        self.gateway_server = RoutedGatewayServer(server, spec, self.peers, self.links)
        self.events = RoutedEventBackend(bus, self.peers)
        WORKER_GATEWAYS.labels(str(spec.index)).set_function(lambda: len(server.core))  # UDP and gRPC links

    async def start(self) -> None:
        await self.internal.start()
        await self.links.start()  # after our server is up: a peer starting now can ask us

    async def stop(self) -> None:
        await self.links.stop()
        await self.internal.stop()
        await self.peers.close()

    async def metrics(self) -> bytes:
        """`/metrics` for the whole daemon: this worker's exposition merged with every peer's; a peer that does
        not answer within `METRICS_DEADLINE` shows as `gs_worker_up{worker="i"} 0`."""
        texts: list[str | None] = [None] * self.spec.count
        texts[self.spec.index] = generate_latest(REGISTRY).decode()

        async def fetch(index: int) -> None:
            try:
                texts[index] = (await self.peers.unary(index, wire.METRICS, b"", deadline=METRICS_DEADLINE)).decode()
            except GsError:
                texts[index] = None

        await asyncio.gather(*(fetch(i) for i in self.peers.others))
        return merge_expositions(texts).encode()


__all__ = ["WorkerGroup"]
