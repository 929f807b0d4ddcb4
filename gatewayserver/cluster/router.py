"""`ClusterGatewayServer`: the gateway server as the APIs see it when several instances share one Redis.

It wraps what the APIs were given before (the local `GatewayServer`, or with `--workers` the workers'
`RoutedGatewayServer`) and differs from it only in how a gateway's owner is found: the owner record in Redis
(`records.owner_key`, written by `owners.OwnershipSync`) names the instance, whose internal service
(`service.py`) is called at its registered address with the cluster key and a deadline. Rights and the caller's
cluster key were checked by `ApiCore` before anything here runs.

- `NsGs.ScheduleDownlink`: the paths' owners are looked up in one `MGET`; runs of consecutive paths with the same
  owner go to it in one call (local, or one forward of the unchanged message), in the Network Server's order, and
  the first run that books a window wins. A gateway another instance owns is never served here, even if a stale
  connection of it is still here. No record: served here (today's `not_connected` if not connected).
- `Gs` connection stats: a gateway connected here is answered here; else its owner is asked (fresh), and Redis's
  copy of its stats (`records.stats_key`, written by the owner every few seconds) answers when the owner is gone
  or for a gateway no longer connected anywhere, until it expires.
- `global_conf.json` / `GetConcentratorConfig`: from the registry like one process; only a gateway connected to
  another instance without a registry entry here asks its owner for its frequency plans.
- Redis unreachable: everything about this instance's own gateways works; a call about a gateway not connected
  here fails with `redis_unavailable` (UNAVAILABLE), which says why, instead of a misleading `not_connected`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from gatewayserver.api.core import resolve
from gatewayserver.downlink.path_runs import path_errors_of, runs_of, schedule_runs
from gatewayserver.errors import GsError
from gatewayserver.tokens import peek_gateway
from gatewayserver.ttnpb import error_pb2, gateway_pb2, gatewayserver_pb2, lorawan_pb2, messages_pb2

from . import metrics
from .instances import CONNECTION_STATS, GATEWAY_INFO, SCHEDULE_DOWNLINK, Instances
from .records import Owner, err_redis_unavailable, owner_key, stats_key
from .redis_link import describe

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.server import GatewayServer

    from .redis_link import RedisLink

Stats = gateway_pb2.GatewayConnectionStats

#: Runs of paths (consecutive paths with one owner) tried in the Network Server's order; beyond this, grouped.
MAX_RUNS = 4


class RedisDown(Exception):
    """The owner look-up failed; `reason` says how (for the error the caller gets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _live(stats: Stats | None) -> bool:
    return stats is not None and not stats.HasField("disconnected_at")


def _parse_stats(raw: bytes | None) -> Stats | None:
    if not raw:
        return None
    try:
        return Stats.FromString(raw)
    except Exception:  # not ours (or corrupted): as if there were none
        return None


class ClusterGatewayServer:
    """A `GatewayServerLike` over this instance's gateway server (`inner`) and the other instances."""

    def __init__(
        self, inner: Any, local: GatewayServer, link: RedisLink, instances: Instances, instance: str
    ) -> None:
        self.inner = inner
        self.local = local
        self.link = link
        self.instances = instances
        self.instance = instance

    # --- owners -----------------------------------------------------------------------------------------------------

    def gateway_of_path(self, path: lorawan_pb2.DownlinkPath) -> str:
        kind = path.WhichOneof("path")
        if kind == "uplink_token":
            return peek_gateway(path.uplink_token)[0]
        if kind == "fixed":
            ids = path.fixed.gateway_ids
            if ids.gateway_id:
                return str(ids.gateway_id)
            eui = bytes(ids.eui)
            if len(eui) == 8:
                entry = self.local.registry.lookup(eui)
                return entry.gateway_id if entry is not None else f"eui-{eui.hex()}"
        return ""

    async def _mget(self, keys: list[str]) -> list[Any]:
        try:
            values = await self.link.client.mget(keys)
        except Exception as exc:
            self.link.failed("owner_lookup", exc)
            raise RedisDown(describe(exc)) from None
        self.link.succeeded()
        return list(values)

    async def owners(self, gateway_ids: Sequence[str]) -> dict[str, Owner | None]:
        ids = [g for g in dict.fromkeys(gateway_ids) if g]
        if not ids:
            return {}
        values = await self._mget([owner_key(g) for g in ids])
        return {g: Owner.decode(v) for g, v in zip(ids, values, strict=True)}

    def _elsewhere(self, owner: Owner | None) -> str | None:
        """The other instance owning a gateway, or None when it is this one or nobody."""
        if owner is None or owner.instance == self.instance:
            return None
        return owner.instance

    # --- NsGs.ScheduleDownlink ---------------------------------------------------------------------------------

    async def schedule_downlink(
        self, message: messages_pb2.DownlinkMessage
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        if message.WhichOneof("settings") != "request":
            return await self.inner.schedule_downlink(message)
        paths = list(message.request.downlink_paths)
        gateway_ids = [self.gateway_of_path(p) for p in paths]
        try:
            owners = await self.owners(gateway_ids)
        except RedisDown as exc:
            return await self._schedule_without_redis(message, gateway_ids, exc.reason)
        runs = runs_of(
            (self._elsewhere(owners.get(gateway_id)), path) for path, gateway_id in zip(paths, gateway_ids, strict=True)
        )
        if len(runs) > MAX_RUNS:
            # A path list alternating between owners (no Network Server sends one): one call per instance, in
            # the order each first appears, so one request costs at most one forward per instance.
            merged: dict[str | None, list[lorawan_pb2.DownlinkPath]] = {}
            for where, run in runs:
                merged.setdefault(where, []).extend(run)
            runs = list(merged.items())
        if len(runs) <= 1:
            return await self._schedule_on(runs[0][0] if runs else None, message)
        return await schedule_runs(message, runs, self._schedule_on)

    async def _schedule_on(
        self, instance: str | None, message: messages_pb2.DownlinkMessage
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        if instance is None:
            return await self.inner.schedule_downlink(message)
        raw = await self.instances.unary(instance, SCHEDULE_DOWNLINK, message.SerializeToString())
        return gatewayserver_pb2.ScheduleDownlinkResponse.FromString(raw)

    async def _schedule_without_redis(
        self, message: messages_pb2.DownlinkMessage, gateway_ids: list[str], reason: str
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        """Owners unknown: this instance's gateways are served; for the others, say that Redis is the cause."""
        try:
            return await self.inner.schedule_downlink(message)
        except GsError as exc:
            if _only_not_connected(exc):
                metrics.FORWARDS_FAILED.labels("redis_unavailable").inc()
                raise err_redis_unavailable(next((g for g in gateway_ids if g), "?"), reason) from None
            raise

    # --- Gs connection stats ---------------------------------------------------------------------------------------

    async def connection_stats(self, gateway_id: str) -> Stats | None:
        local = await resolve(self.inner.connection_stats(gateway_id))
        if _live(local):
            return local
        try:
            owner_raw, stats_raw = await self._mget([owner_key(gateway_id), stats_key(gateway_id)])
        except RedisDown as exc:
            if local is not None:
                return local
            metrics.FORWARDS_FAILED.labels("redis_unavailable").inc()
            raise err_redis_unavailable(gateway_id, exc.reason) from None
        stored = _parse_stats(stats_raw)
        where = self._elsewhere(Owner.decode(owner_raw))
        if where is not None:
            try:
                fresh = (await self._remote_stats(where, [gateway_id])).get(gateway_id)
            except GsError:
                if stored is None:
                    raise
                fresh = None  # the owner is gone: its last stats in Redis answer until they expire
            if fresh is not None:
                return fresh
        return stored if stored is not None else local

    async def connection_stats_batch(self, gateway_ids: Sequence[str]) -> dict[str, Stats]:
        batch = getattr(self.inner, "connection_stats_batch", None)
        if batch is not None:
            local: dict[str, Stats] = await batch(gateway_ids)
        else:
            local = {}
            for gateway_id in gateway_ids:
                stats = await resolve(self.inner.connection_stats(gateway_id))
                if stats is not None:
                    local[gateway_id] = stats
        found = {g: s for g, s in local.items() if _live(s)}
        rest = [g for g in dict.fromkeys(gateway_ids) if g not in found]
        if not rest:
            return found
        try:
            values = await self._mget([owner_key(g) for g in rest] + [stats_key(g) for g in rest])
        except RedisDown as exc:
            missing = [g for g in rest if g not in local]
            if missing:
                metrics.FORWARDS_FAILED.labels("redis_unavailable").inc()
                raise err_redis_unavailable(missing[0], exc.reason) from None
            return {**local, **found}
        owners = dict(zip(rest, (Owner.decode(v) for v in values[: len(rest)]), strict=True))
        stored = dict(zip(rest, (_parse_stats(v) for v in values[len(rest):]), strict=True))
        by_instance: dict[str, list[str]] = {}
        for gateway_id in rest:
            where = self._elsewhere(owners[gateway_id])
            if where is not None:
                by_instance.setdefault(where, []).append(gateway_id)

        async def ask(instance: str, ids: list[str]) -> dict[str, Stats]:
            try:
                return await self._remote_stats(instance, ids)
            except GsError:
                return {}  # the owner is gone: Redis's copies answer below

        for part in await asyncio.gather(*(ask(i, ids) for i, ids in by_instance.items())):
            found.update(part)
        for gateway_id in rest:
            if gateway_id in found:
                continue
            stats = stored.get(gateway_id) or local.get(gateway_id)
            if stats is not None:
                found[gateway_id] = stats
        return found

    async def _remote_stats(self, instance: str, gateway_ids: list[str]) -> dict[str, Stats]:
        request = gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest()
        for gateway_id in gateway_ids:
            request.gateway_ids.add().gateway_id = gateway_id
        raw = await self.instances.unary(instance, CONNECTION_STATS, request.SerializeToString())
        response = gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse.FromString(raw)
        return dict(response.entries.items())

    # --- configuration ------------------------------------------------------------------------------------------

    def gateway_frequency_plans(self, gateway_id: str) -> Any:
        """From the registry like one process; only a gateway unknown here may be known to its owner."""
        if self.local.gateway_entry(gateway_id) is not None:
            return self.inner.gateway_frequency_plans(gateway_id)
        return self._plans_from_owner(gateway_id)

    async def _plans_from_owner(self, gateway_id: str) -> list[Any]:
        try:
            owner = (await self.owners([gateway_id])).get(gateway_id)
        except RedisDown:
            owner = None  # unknown here, and no way to ask: as one process would answer
        where = self._elsewhere(owner)
        if where is None:
            return list(await resolve(self.inner.gateway_frequency_plans(gateway_id)))
        info = orjson.loads(await self.instances.unary(where, GATEWAY_INFO, gateway_id.encode()))
        if not info:
            return list(await resolve(self.inner.gateway_frequency_plans(gateway_id)))  # not registered
        return [self.local.frequency_plans.get(str(plan_id)) for plan_id in info["frequency_plan_ids"]]

    # --- the rest: this instance's own ---------------------------------------------------------------------------

    def connected_gateways(self) -> list[Any] | Awaitable[list[Any]]:
        result: list[Any] | Awaitable[list[Any]] = self.inner.connected_gateways()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)



def _innermost_name(details: error_pb2.ErrorDetails) -> str:
    depth = 0
    while details.HasField("cause") and depth < 16:
        details = details.cause
        depth += 1
    return str(details.name)


def _only_not_connected(exc: GsError) -> bool:
    """Did every path fail only because its gateway is not connected here?"""
    if exc.name == "not_connected":
        return True
    errors = path_errors_of(exc)
    return bool(errors) and all(_innermost_name(e) == "not_connected" for e in errors) and exc.name == "schedule"


__all__ = ["ClusterGatewayServer", "RedisDown"]
