"""The shell around `ownership.OwnershipBook`: one flusher task writing batches to Redis, the instance's heartbeat,
and the `gs:moved` subscription that makes an instance let go of a gateway another instance took.

Redis costs nothing on the uplink path: the core calls `connected`/`disconnected` (a dictionary write and, for a
connect, waking the flusher); the flusher writes every due record in one pipeline (Lua scripts, so each
conditional write is one step on the server) once a second, or at once for a claim or a release.

A gateway whose record another instance overwrote is disconnected here (`moved`: `gs.gateway.disconnect`,
`gs_gateway_disconnects_total{reason="moved"}`, `gs_cluster_gateway_moves_total{direction="out"}`, one log line) on
the notice, or at the latest on its next renewal, which finds the record taken. A UDP gateway's address is then
forgotten, so this instance sends it nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from gatewayserver.errors import UNAVAILABLE, GsError

from . import metrics
from .ownership import MOVED, RENAMED, Batch, OwnershipBook
from .records import (
    HEARTBEAT_S,
    INSTANCE_TTL_MS,
    MOVED_CHANNEL,
    NS,
    Owner,
    instance_key,
    moved_notice,
    owner_key,
    parse_moved_notice,
    stats_key,
)

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.core.connection import Connection
    from gatewayserver.core.gateways import GatewayCore
    from gatewayserver.ttnpb import gateway_pb2

    from .redis_link import RedisLink

log = logging.getLogger(__name__)

_NS = 1_000_000_000

#: Overwrite the record; tell the previous owner (if it was another connection) through `gs:moved`; return it.
_CLAIM = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end
if old and old ~= ARGV[1] then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return old
"""
#: Renew only a record that is still ours (or gone: Redis restarted empty); 0 when another owner holds it.
_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end
return 1
"""
#: Compare-and-delete; the final stats are written only by the owner still holding the record.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end
return 1
"""

#: How often the flusher looks for due renewals and stats when nothing woke it.
TICK_S = 1.0


def err_moved(instance: str) -> GsError:
    """The `gs.gateway.disconnect` payload of a connection ended because the gateway now talks to `instance`."""
    return GsError(
        NS, "gateway_moved", "gateway connected to instance `{instance}`", code=UNAVAILABLE,
        attributes={"instance": instance},
    )


def activity(conn: Connection) -> int:
    """A number that changes whenever the connection's stats do (uplink, status, downlink, TX ack)."""
    return conn.last_uplink_ns + conn.last_status_ns + conn.last_downlink_ns + conn.last_tx_ack_ns + conn.uplink_count


class OwnershipSync:
    """Keeps Redis told which gateways this process holds; `ttl_ns` is the connection expiry."""

    def __init__(
        self,
        link: RedisLink,
        core: GatewayCore,
        *,
        instance: str,
        worker: int,
        advertise: str,
        ttl_ns: int,
        stats_interval_ns: int = 5 * _NS,
        clock: Any = time.time_ns,
    ) -> None:
        self.link = link
        self.core = core
        self.instance = instance
        self.advertise = advertise
        self.ttl_ms = max(1, ttl_ns // 1_000_000)
        self.clock = clock
        self.book = OwnershipBook(
            instance, worker, renew_ns=max(_NS, min(ttl_ns // 3, 60 * _NS)), stats_ns=stats_interval_ns
        )
        client = link.client
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._next_heartbeat = 0.0
        self._outages_seen = link.outages
        self._resync = False
        self._stopping = False

    # --- the core's observer --------------------------------------------------------------------------------------

    def connected(self, conn: Connection, now: int) -> None:
        self.book.connected(conn.gateway_id, conn.connected_at_ns, now)
        self._wake.set()

    def disconnected(self, conn: Connection, reason: str, stats: gateway_pb2.GatewayConnectionStats) -> None:
        if self.book.disconnected(conn.gateway_id, reason, stats.SerializeToString() if reason != MOVED else b""):
            self._wake.set()

    def renamed(self, conn: Connection, previous_gateway_id: str, now: int) -> None:
        """A reload renamed a connection here: the old id's record is given back (no final stats: one process
        keeps none for a renamed id either) and the new id claimed, which tells an instance holding it to let go,
        as a connect would."""
        self.book.disconnected(previous_gateway_id, RENAMED, b"")
        self.book.connected(conn.gateway_id, conn.connected_at_ns, now)
        self._wake.set()

    # --- lifetime -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.core.observe(self)
        self.book.reconcile(((c.gateway_id, c.connected_at_ns) for c in self.core.connections()), self.clock())
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._flusher(), name="cluster-ownership"),
            loop.create_task(self._notices(), name="cluster-moved"),
        ]

    async def stop(self, timeout: float = 2.0) -> None:
        """After the daemon disconnected its gateways: give their records back (bounded wait), then stop."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a library that swallows a cancellation (redis-py's timeouts can, when one fires as the
            # cancel arrives) leaves its loop at the next turn through `_stopping` instead of stalling shutdown.
            await asyncio.wait(self._tasks, timeout=2 * TICK_S + 1)
        self._tasks = []
        self.core.unobserve(self)
        if self.link.up:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.flush()

    # --- flushing -------------------------------------------------------------------------------------------------

    async def _flusher(self) -> None:
        while not self._stopping:
            # Not asyncio.wait_for: in 3.11 it swallows a cancellation arriving as the event is set (a disconnect
            # during shutdown), and the daemon then waits for this task forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # a bug here must not end the ownership records for good
                log.exception("ownership flush failed")

    def _activity_of(self, gateway_id: str) -> int | None:
        conn = self.core.get(gateway_id)
        return activity(conn) if conn is not None else None

    async def flush(self) -> None:
        """One batch: releases, claims, renewals with their stats, and the heartbeat when due; one round trip."""
        now = self.clock()
        if not self.link.up:
            # Nothing is tried while the link's watcher says Redis is down (it pings every second): everything
            # stays due in the book, and whatever Redis held may be gone when it is back, so all is written then.
            self._resync = True
            return
        if self.link.outages != self._outages_seen:
            # Redis was down since the last flush, even if no flush ran meanwhile (a short outage between two
            # ticks): it may have restarted empty, so the registration must be rewritten with the records.
            self._outages_seen = self.link.outages
            self._resync = True
        if self._resync:
            self._resync = False
            self.book.resync(now)
            self._next_heartbeat = 0.0
        batch = self.book.due(now, self._activity_of)
        dropped = self.book.take_dropped()
        if dropped:
            metrics.OWNERSHIP_DROPPED.labels("pending_full").inc(dropped)
        heartbeat = time.monotonic() >= self._next_heartbeat
        if not batch and not heartbeat:
            return
        pipe = self.link.client.pipeline(transaction=False)
        ttl = str(self.ttl_ms)
        for gateway_id, record, stats in batch.releases:
            await self._release(keys=[owner_key(gateway_id), stats_key(gateway_id)], args=[record, ttl, stats],
                                client=pipe)
        for gateway_id, record in batch.claims:
            owner = Owner.decode(record)
            notice = moved_notice(gateway_id, owner) if owner is not None else b""
            await self._claim(
                keys=[owner_key(gateway_id), stats_key(gateway_id)],
                args=[record, ttl, self._stats(gateway_id, now), MOVED_CHANNEL, notice],
                client=pipe,
            )
        for gateway_id, record, with_stats in batch.renewals:
            stats = self._stats(gateway_id, now) if with_stats else b""
            await self._renew(keys=[owner_key(gateway_id), stats_key(gateway_id)], args=[record, ttl, stats],
                              client=pipe)
        if heartbeat:
            pipe.get(instance_key(self.instance))
            pipe.set(instance_key(self.instance), self.advertise, px=INSTANCE_TTL_MS)
        try:
            results = await pipe.execute(raise_on_error=True)
        except Exception as exc:
            self.link.failed("ownership", exc)
            metrics.OWNERSHIP_FLUSHES.labels("failed").inc()
            self.book.failed(batch, self.clock())
            return
        finally:
            with contextlib.suppress(Exception):
                await pipe.reset()
        self.link.succeeded()
        metrics.OWNERSHIP_FLUSHES.labels("ok").inc()
        if heartbeat:
            self._next_heartbeat = time.monotonic() + HEARTBEAT_S
            self._check_registration(results[-2])
        self._applied(batch, results)

    def _check_registration(self, previous: bytes | None) -> None:
        """Two instances with one instance ID would each take the other's calls as their own: say so."""
        advertise = self.advertise.encode()
        if previous is not None and previous != advertise:
            log.error(
                "another instance registered the same instance ID with another address: every instance needs its "
                "own --instance-id (the default, the host name, must then differ), or this one restarted with a "
                "new --cluster-advertise-address",
                extra={"instance": self.instance, "address": self.advertise,
                       "other_address": previous.decode(errors="replace")[:100]},
            )

    def _stats(self, gateway_id: str, now: int) -> bytes:
        conn = self.core.get(gateway_id)
        return conn.stats(now).SerializeToString() if conn is not None else b""

    def _applied(self, batch: Batch, results: list[Any]) -> None:
        offset = len(batch.releases)
        for (gateway_id, _), old in zip(batch.claims, results[offset:offset + len(batch.claims)], strict=True):
            previous = Owner.decode(old)
            if previous is not None and previous.instance != self.instance:
                metrics.GATEWAY_MOVES.labels("in").inc()
                log.info(
                    "gateway moved here from another instance",
                    extra={"gateway_id": gateway_id, "previous_instance": previous.instance},
                )
        offset += len(batch.claims)
        for (gateway_id, record, _), ok in zip(batch.renewals, results[offset:offset + len(batch.renewals)],
                                               strict=True):
            if not ok and self.book.displaced(gateway_id, record):
                self._let_go(gateway_id, "")

    # --- moves --------------------------------------------------------------------------------------------------

    async def _notices(self) -> None:
        """Follow `gs:moved`; resubscribe after Redis comes back (missed notices are caught by the renewals)."""
        while not self._stopping:
            pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(MOVED_CHANNEL)
                while not self._stopping:
                    message = await pubsub.get_message(timeout=TICK_S)
                    if message is not None and message.get("type") == "message":
                        self._notice(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: the link's watcher reports the outage; retry calmly
                log.debug("moved-notice subscription lost", extra={"error": str(exc)})
                await asyncio.sleep(TICK_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _notice(self, raw: Any) -> None:
        parsed = parse_moved_notice(raw)
        if parsed is None:
            metrics.OWNERSHIP_DROPPED.labels("invalid_notice").inc()
            return
        gateway_id, instance = parsed
        if instance != self.instance and gateway_id in self.book.held:
            self._let_go(gateway_id, instance)

    def _let_go(self, gateway_id: str, instance: str) -> None:
        conn = self.core.get(gateway_id)
        if conn is None:
            return
        metrics.GATEWAY_MOVES.labels("out").inc()
        log.warning(
            "gateway moved to another instance, disconnecting it here",
            extra={"gateway_id": gateway_id, "instance": instance or "unknown (record taken)"},
        )
        self.core.disconnect(conn, self.clock(), MOVED, err_moved(instance or "another instance"))


__all__ = ["OwnershipSync", "TICK_S", "activity", "err_moved"]
