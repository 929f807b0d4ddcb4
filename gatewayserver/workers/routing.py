"""`RoutedGatewayServer`: the daemon as the APIs see it when several workers share one API address.

Any worker may receive any API call (the gRPC and HTTP ports are one `SO_REUSEPORT` group), but a gateway's
connection state lives only in the worker the kernel steers its datagrams to: the owner, `owner_of_eui(EUI)`.
This wrapper answers from the local daemon what this worker owns (or what the registry alone can answer), and
forwards the rest to the owner over the internal API (`peers.Peers`). Rights and cluster keys have already been
checked by `ApiCore` before any method here runs, so a refused caller never causes an internal call.

Which gateway a call is about, and so its EUI:
- a downlink path's uplink token names the gateway and its EUI (the owner issued the token and verifies it);
- a fixed path may carry the EUI; else the registry entry of its gateway ID; else an `eui-<16 hex>` gateway ID;
- a gateway linked over `GtwGs.LinkGateway` is owned by the worker that accepted its stream, whatever its EUI:
  that worker told every peer (`links.py`), and the table of links is consulted before the EUI rule;
- a gateway whose EUI cannot be found at all cannot be connected to any worker under EUI steering, so the local
  daemon answers (with today's `not_connected` / not-found errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from gatewayserver.downlink.path_runs import runs_of, schedule_runs
from gatewayserver.errors import GsError
from gatewayserver.tokens import peek_gateway
from gatewayserver.ttnpb import gateway_pb2, gatewayserver_pb2, lorawan_pb2, messages_pb2

from . import wire
from .peers import Peers
from .spec import WorkerSpec, owner_of_eui

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.server import GatewayServer

    from .links import LinkAnnouncer

Stats = gateway_pb2.GatewayConnectionStats


def eui_of_id(gateway_id: str) -> bytes:
    """The EUI an `eui-<16 hex>` gateway ID spells, else b""."""
    if gateway_id.startswith("eui-") and len(gateway_id) == 20:
        try:
            return bytes.fromhex(gateway_id[4:])
        except ValueError:
            return b""
    return b""


class RoutedGatewayServer:
    """A `GatewayServerLike` over the local `GatewayServer` and the peers. Methods that may need a peer return an
    awaitable; `ApiCore` awaits whatever it gets."""

    def __init__(
        self, local: GatewayServer, spec: WorkerSpec, peers: Peers, links: LinkAnnouncer | None = None
    ) -> None:
        self.local = local
        self.spec = spec
        self.peers = peers
        self.links = links

    # --- ownership -------------------------------------------------------------------------------------------------

    def owner_of_gateway(self, gateway_id: str, eui: bytes = b"") -> int:
        if self.links is not None:
            linked = self.links.worker_of(gateway_id, eui)
            if linked is not None:
                return linked  # a LinkGateway stream: owned by the worker that accepted it
        if len(eui) != 8:
            eui = self.local.gateway_eui(gateway_id) or eui_of_id(gateway_id)
        if len(eui) != 8:
            return self.spec.index  # unknown everywhere: answered here, as one process would
        return owner_of_eui(eui, self.spec.count)

    def owner_of_path(self, path: lorawan_pb2.DownlinkPath) -> int:
        kind = path.WhichOneof("path")
        if kind == "uplink_token":
            gateway_id, eui = peek_gateway(path.uplink_token)
        elif kind == "fixed":
            gateway_id, eui = path.fixed.gateway_ids.gateway_id, bytes(path.fixed.gateway_ids.eui)
        else:
            return self.spec.index
        return self.owner_of_gateway(gateway_id, eui)

    # --- GatewayServerLike -----------------------------------------------------------------------------------------

    def connection_stats(self, gateway_id: str) -> Stats | None | Awaitable[Stats | None]:
        owner = self.owner_of_gateway(gateway_id)
        if owner == self.spec.index:
            return self.local.connection_stats(gateway_id)
        return self._single_stats(owner, gateway_id)

    async def _single_stats(self, owner: int, gateway_id: str) -> Stats | None:
        return (await self._remote_stats(owner, [gateway_id])).get(gateway_id)

    async def connection_stats_batch(self, gateway_ids: Sequence[str]) -> dict[str, Stats]:
        """The batch split per owner (one internal call per worker, concurrently), merged back."""
        by_owner: dict[int, list[str]] = {}
        for gateway_id in gateway_ids:
            by_owner.setdefault(self.owner_of_gateway(gateway_id), []).append(gateway_id)
        found: dict[str, Stats] = {}
        for gateway_id in by_owner.pop(self.spec.index, ()):
            stats = self.local.connection_stats(gateway_id)
            if stats is not None:
                found[gateway_id] = stats
        results = await asyncio.gather(*(self._remote_stats(owner, ids) for owner, ids in by_owner.items()))
        for part in results:
            found.update(part)
        return found

    async def _remote_stats(self, owner: int, gateway_ids: list[str]) -> dict[str, Stats]:
        request = gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest()
        for gateway_id in gateway_ids:
            request.gateway_ids.add().gateway_id = gateway_id
        raw = await self._call(owner, wire.CONNECTION_STATS, request.SerializeToString())
        response = gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse.FromString(raw)
        return dict(response.entries.items())

    async def connected_gateways(self) -> list[Any]:
        """Every worker's connected gateways, in one list sorted by gateway ID as one process gives it."""
        remote = await asyncio.gather(*(self.peers.unary(i, wire.CONNECTIONS, b"") for i in self.peers.others))
        out = list(self.local.connected_gateways())
        for raw in remote:
            out.extend(orjson.loads(raw))
        out.sort(key=lambda item: str(item["gateway_id"]))
        return out

    def gateway_eui(self, gateway_id: str) -> bytes | None:
        return self.local.gateway_eui(gateway_id)

    def gateway_frequency_plans(self, gateway_id: str) -> Any:
        """From the registry (every worker has it); only a gateway connected elsewhere without a registry entry
        needs its owner."""
        if self.local.gateway_entry(gateway_id) is not None:
            return self.local.gateway_frequency_plans(gateway_id)
        owner = self.owner_of_gateway(gateway_id)
        if owner == self.spec.index:
            return self.local.gateway_frequency_plans(gateway_id)  # raises gateway_not_registered
        return self._remote_plans(owner, gateway_id)

    async def _remote_plans(self, owner: int, gateway_id: str) -> list[Any]:
        info = orjson.loads(await self.peers.unary(owner, wire.GATEWAY_INFO, gateway_id.encode()))
        if not info:
            return self.local.gateway_frequency_plans(gateway_id)  # raises gateway_not_registered
        return [self.local.frequency_plans.get(plan_id) for plan_id in info["frequency_plan_ids"]]

    async def schedule_downlink(
        self, message: messages_pb2.DownlinkMessage
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        """Each path goes to the worker owning its gateway. Paths are tried in the Network Server's order: runs of
        consecutive paths with the same owner are handed to that owner in one call (the usual case, a single run,
        is one local call or one forward), and the first run that books a window wins."""
        if message.WhichOneof("settings") != "request":
            return await self.local.schedule_downlink(message)
        runs = runs_of((self.owner_of_path(path), path) for path in message.request.downlink_paths)
        if len(runs) <= 1:
            owner = runs[0][0] if runs else self.spec.index
            return await self._schedule_on(owner, message)
        return await schedule_runs(message, runs, self._schedule_on)

    async def _schedule_on(
        self, owner: int, message: messages_pb2.DownlinkMessage
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        if owner == self.spec.index:
            return await self.local.schedule_downlink(message)
        raw = await self._call(owner, wire.SCHEDULE_DOWNLINK, message.SerializeToString())
        return gatewayserver_pb2.ScheduleDownlinkResponse.FromString(raw)

    async def _call(self, owner: int, method: str, request: bytes) -> bytes:
        """A forward to the owner; a peer refusing the connection is dead, and so are the links it held."""
        try:
            return await self.peers.unary(owner, method, request)
        except GsError as exc:
            if self.links is not None and exc.name == "worker_unavailable" and str(
                exc.attributes.get("reason", "")
            ).startswith("UNAVAILABLE"):
                self.links.peer_dead(owner)
            raise

    # --- the rest of the daemon, for anything else that reaches for it ---------------------------------------------

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)



__all__ = ["RoutedGatewayServer", "eui_of_id"]
