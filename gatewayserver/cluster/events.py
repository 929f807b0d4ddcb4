"""Events across instances through Redis: every process writes its events to a shared stream, and `Events.Stream`
/ `POST /api/v3/events` on any instance deliver every instance's events, with `tail` and `after` from Redis.

The I/O shell around `events_core` (which explains where each event comes from and why none comes twice):

- `RedisEventPublisher`: fed by a wildcard tap on the local bus (the publish on the uplink path only appends to a
  bounded deque), it writes the queued events every `FLUSH_INTERVAL` with one script call per batch (one round
  trip). While Redis is known down, or when a write fails, the events are dropped and counted; nothing waits.
- `RedisEventReader`: one task per process, only while it has subscribers (an instance nobody watches reads
  nothing), `XREAD BLOCK` on the shared stream from where it left off, skipping this instance's entries and
  decoding an entry only when a subscriber wants its gateway. Its own connection: a blocking read must not hold
  the shared client's, and may wait longer than the shared client's 1 s timeout.
- `ClusterSubscription`: a `MergedSubscription` (the local bus and, with `--workers`, the other workers) with one
  more source, Redis: its history and its live entries.
- `ClusterEventBackend`: the `EventBackend` the APIs use when `redis_url` is set.

Redis down: streams go on with this instance's events (local bus, other workers); the reader retries every
`RETRY_INTERVAL` and continues from the last entry it read, so the other instances' events resume by themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gatewayserver.events import metrics as event_metrics
from gatewayserver.events.bus import DEFAULT_BUFFER, EventBackend, EventBus, Subscription, err_buffer_full
from gatewayserver.events.definitions import NameMatcher, match_all
from gatewayserver.events.event import Event
from gatewayserver.workers.events import MergedSubscription, RoutedEventBackend

from .tasks import stop_task
from . import metrics
from .events_core import (
    FIELD_NAME,
    FIELD_SOURCE,
    GATEWAY_KEY_PREFIX,
    PUBLISH_SCRIPT,
    STREAM_KEY,
    PublishQueue,
    StreamId,
    decode_event,
    entry_gateways,
    batch_record,
    format_id,
    history_count,
    live_wanted,
    merge_histories,
    parse_id,
    script_args,
    select_history,
)

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.workers.peers import Peers

    from .redis_link import RedisLink

log = logging.getLogger(__name__)

#: How long the publisher gathers events before a write: redis-py's cost per call is fixed, so fewer, larger
#: calls (50 ms: +11-14 % CPU per uplink at 1,000/s, 25 ms +18 %, 5 ms +29 %; docs/design.md "Events across instances").
FLUSH_INTERVAL = 0.05
#: Events per script call.
MAX_BATCH = 256
#: Events waiting for Redis at most; beyond, new events are dropped (counted `queue_full`).
QUEUE_LIMIT = 10_000
#: The reader's XREAD: entries per read, and how long a read waits for new ones.
READ_COUNT = 512
READ_BLOCK_MS = 1000
#: After a failed read, the reader waits this long before trying again.
RETRY_INTERVAL = 0.5
#: A stream's Redis part (waiting for the reader, reading the history) ends within this; then without it.
HISTORY_DEADLINE = 5.0


class PublishTap(Subscription):
    """A wildcard, uncounted subscriber of the local bus that hands every event to the publisher."""

    __slots__ = ("_publisher",)

    def __init__(self, publisher: RedisEventPublisher) -> None:
        super().__init__(None)
        self._publisher = publisher

    def accepts(self, event: Event, gateway_id: str) -> bool:
        return True

    def offer(self, event: Event) -> None:
        self._publisher.push(event)


class RedisEventPublisher:
    """Writes this process's events to Redis in batches; see the module docstring."""

    def __init__(
        self,
        link: RedisLink,
        source: str,
        *,
        history_size: int,
        history_per_gateway: int,
        history_age_ns: int,
        queue_limit: int = QUEUE_LIMIT,
        interval: float = FLUSH_INTERVAL,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.link = link
        self.source = source
        self.queue = PublishQueue(queue_limit)
        self.interval = interval
        self.max_batch = max_batch
        self._head = script_args(history_size, history_per_gateway, history_age_ns // 1_000_000, source)
        self._script = link.client.register_script(PUBLISH_SCRIPT)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._exported: dict[str, int] = {}

    def push(self, event: Event) -> None:
        """From the bus's publish: append, wake the writer. Never blocks, never raises."""
        if self.queue.push(event):
            wake = self._wake
            if not wake.is_set():
                wake.set()
        elif event.gateway_ids:
            self._export_drops()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-events-publish")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything queued (in batches, one at a time: order kept), or drop it while Redis is down."""
        queue = self.queue
        while len(queue):
            if self.link.health.up is False:
                queue.drop_all("redis_down")  # the watcher's ping tells when it is back; no write waits for it
                break
            await self._write(queue.take(self.max_batch))
        self._export_drops()

    async def _write(self, batch: list[Event]) -> None:
        """One script call for the batch. The events are encoded here, off the publish path."""
        records = []
        for event in batch:
            record = batch_record(event)
            if record is None:
                self.queue.drop("too_large", 1)
            else:
                records.append(record)
        try:
            await self._script(keys=[STREAM_KEY], args=[*self._head, b"".join(records)])
        except Exception as exc:  # connection refused or lost, timeout, error reply: the batch is lost, counted
            self.queue.drop("write_failed", len(batch))
            self.link.failed("events_publish", exc)
            return
        self.link.succeeded()
        metrics.EVENTS_PUBLISHED.inc(len(batch))

    def _export_drops(self) -> None:
        for reason, count in self.queue.dropped.items():
            done = self._exported.get(reason, 0)
            if count > done:
                metrics.EVENTS_DROPPED.labels(reason).inc(count - done)
                self._exported[reason] = count

    async def close(self, timeout: float = 1.0) -> None:
        """Stop, after one last bounded attempt to write what is queued (the disconnect events at shutdown)."""
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        try:
            async with asyncio.timeout(timeout):
                await self.flush()
        except TimeoutError:
            self.queue.drop_all("write_failed")
            self._export_drops()


class RedisEventReader:
    """The one reader of the shared stream in this process, fanning entries out to `ClusterSubscription`s."""

    def __init__(self, url: str, link: RedisLink, source: str, *, block_ms: int = READ_BLOCK_MS) -> None:
        self.link = link
        self.block_ms = block_ms
        self._source = source.encode()
        self.client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=block_ms / 1000 + 5.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            max_connections=2,
        )
        self._by_gateway: dict[str, list[ClusterSubscription]] = {}
        self._wildcard: list[ClusterSubscription] = []
        self._subscribers = 0
        self._task: asyncio.Task[None] | None = None
        #: The last entry delivered; None until the reader knows where the stream is (then it starts there).
        self.position: StreamId | None = None
        self._started = asyncio.Event()

    @property
    def subscribers(self) -> int:
        return self._subscribers

    def register(self, sub: ClusterSubscription) -> None:
        if sub.gateway_ids is None:
            self._wildcard = [*self._wildcard, sub]
        else:
            for gateway_id in sub.gateway_ids:
                self._by_gateway[gateway_id] = [*self._by_gateway.get(gateway_id, ()), sub]
        self._subscribers += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-events-read")

    def unregister(self, sub: ClusterSubscription) -> None:
        # Copy-on-write: a delivery may be iterating the old list when an overflow unregisters from inside it.
        if sub.gateway_ids is None:
            self._wildcard = [s for s in self._wildcard if s is not sub]
        else:
            for gateway_id in sub.gateway_ids:
                remaining = [s for s in self._by_gateway.get(gateway_id, ()) if s is not sub]
                if remaining:
                    self._by_gateway[gateway_id] = remaining
                else:
                    self._by_gateway.pop(gateway_id, None)
        self._subscribers -= 1
        if self._subscribers <= 0 and self._task is not None:
            # Nobody listens: stop reading. The next subscriber starts again from the stream's end.
            self._task.cancel()
            self._task = None
            self.position = None
            self._started.clear()

    async def wait_started(self) -> None:
        """Until the reader knows its position: every entry after it will be delivered to registered subscribers,
        so a history read now cannot leave a gap before the live entries."""
        await self._started.wait()

    async def _run(self) -> None:
        # A reader stopped for want of subscribers may have swallowed its cancellation (see tasks.py): it must
        # never deliver beside its successor, so each turn checks that it is still the reader.
        me = asyncio.current_task()
        while self._task is me:
            try:
                if self.position is None:
                    last = await self.client.xrevrange(STREAM_KEY, count=1)
                    self.position = parse_id(last[0][0]) if last else (0, 0)
                    self._started.set()
                reply = await self.client.xread(
                    {STREAM_KEY: format_id(self.position)}, count=READ_COUNT, block=self.block_ms
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or slow: say so (once, by the link), retry from where we were
                self.link.failed("events_read", exc)
                await asyncio.sleep(RETRY_INTERVAL)
                continue
            self.link.succeeded()
            if self._task is not me:
                return
            for _stream, entries in reply or ():
                self.deliver(entries)

    def deliver(self, entries: list[tuple[bytes, Mapping[bytes, bytes]]]) -> None:
        """Hand entries to the subscribers of their gateways; this instance's own entries are skipped (its
        subscribers have them from the local bus or the other workers)."""
        for raw_id, fields in entries:
            entry_id = parse_id(raw_id)
            self.position = entry_id
            if fields.get(FIELD_SOURCE) == self._source:
                continue
            name = fields.get(FIELD_NAME, b"").decode()
            targets: dict[int, tuple[ClusterSubscription, str]] = {}
            for gateway_id in entry_gateways(fields):
                for sub in (*self._by_gateway.get(gateway_id, ()), *self._wildcard):
                    if sub.wants_name(name):  # the names filter needs no decoding; most streams have one
                        targets.setdefault(id(sub), (sub, gateway_id))
            if not targets:
                continue
            event = decode_event(fields)
            if event is None:
                metrics.EVENTS_INVALID.inc()
                continue
            metrics.EVENTS_RECEIVED.inc()
            for sub, gateway_id in targets.values():
                sub.offer_remote(entry_id, event, gateway_id)

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        try:
            await self.client.aclose()
        except Exception:  # closing a connection to a server that is gone: nothing left to do
            log.debug("closing the Redis events reader failed", exc_info=True)


class _NoPeers:
    """A single process has no other workers: `MergedSubscription.start` follows none."""

    others: tuple[int, ...] = ()


class ClusterSubscription(MergedSubscription):
    """A stream over the local bus, the other workers (if any) and the other instances through Redis.

    Before its history is complete, Redis entries wait beside the queue (`_early`, counted against the buffer),
    and the unique IDs of events delivered live are remembered (`_live_ids`), so that the history can leave them
    out and the early entries already in the Redis history can be dropped (`events_core.live_wanted`)."""

    __slots__ = (
        "_cluster",
        "_after_ns",
        "_now_ns",
        "_redis_history",
        "_redis_done",
        "_workers_done",
        "_snapshot",
        "_early",
        "_live_ids",
    )

    def __init__(
        self,
        gateway_ids: Collection[str] | None,
        names: NameMatcher,
        buffer: int,
        rights: Mapping[str, Collection[str]] | None,
        tail: int,
        after_ns: int | None,
        now_ns: int | None,
        *,
        cluster: ClusterEventBackend,
    ) -> None:
        super().__init__(gateway_ids, names, buffer, rights, tail)
        self._cluster = cluster
        self._after_ns = after_ns
        self._now_ns = now_ns
        self._redis_history: list[Event] = []
        self._redis_done = False
        self._workers_done = False
        self._snapshot: StreamId | None = None
        self._early: list[tuple[StreamId, Event]] = []
        self._live_ids: set[str] = set()

    @property
    def wants_history(self) -> bool:
        return self._tail > 0 or self._after_ns is not None

    def start(self, local_history: list[Event], peers: Peers, request: bytes) -> None:
        cluster = self._cluster
        cluster.reader.register(self)
        self.add_close_callback(self._leave_reader)
        if not cluster.link.up:
            self._redis_done = True  # no history from Redis, no snapshot: every live entry that comes is new
        super().start(local_history, peers, request)
        if not self._redis_done and not self.closed:
            self._tasks.append(asyncio.get_running_loop().create_task(self._read_redis()))

    def _leave_reader(self) -> None:
        self._cluster.reader.unregister(self)

    async def _read_redis(self) -> None:
        cluster = self._cluster
        history: list[Event] = []
        snapshot: StreamId | None = None
        try:
            async with asyncio.timeout(HISTORY_DEADLINE):
                await cluster.reader.wait_started()
                if self.wants_history:
                    history, snapshot = await cluster.read_history(self, self._tail, self._after_ns, self._now_ns)
        except TimeoutError:
            log.warning("event stream history from Redis not read in time; the stream starts without it")
        except Exception as exc:  # Redis down or slow: the stream goes on with this instance's history
            cluster.link.failed("events_history", exc)
        self._redis_history, self._snapshot = history, snapshot
        self._redis_done = True
        if self._workers_done:
            self._finish_history()

    # --- history ----------------------------------------------------------------------------------------------

    def _release_history(self) -> None:
        """Called by `MergedSubscription` once the local and every worker's history are in."""
        self._workers_done = True
        if self._redis_done:
            self._finish_history()

    def _finish_history(self) -> None:
        if self._ready.is_set():
            return  # ended before (a worker failed, the buffer overflowed)
        merged = merge_histories([*self._histories, self._redis_history], self._live_ids, self._tail)
        self._histories, self._redis_history, self._live_ids = [], [], set()
        if merged:
            self._queue.extendleft(reversed(merged))
            self._limit += len(merged)
        early, self._early = self._early, []
        self._ready.set()
        for entry_id, event in early:
            if live_wanted(entry_id, self._snapshot):
                Subscription.offer(self, event)

    # --- live -------------------------------------------------------------------------------------------------

    def offer(self, event: Event) -> None:
        """Live events of this process and the other workers."""
        if not self._ready.is_set() and not self._closed:
            self._live_ids.add(event.unique_id)
        super().offer(event)

    def wants_name(self, name: str) -> bool:
        return self._matcher(name)

    def offer_remote(self, entry_id: StreamId, event: Event, gateway_id: str) -> None:
        """A live entry of another instance (the reader calls this only for the gateways subscribed)."""
        if self._closed or not self.accepts(event, gateway_id):
            return
        if self._ready.is_set():
            if live_wanted(entry_id, self._snapshot):
                Subscription.offer(self, event)
            return
        if len(self._queue) + len(self._early) >= self._limit:
            self._overflow()
            return
        self._early.append((entry_id, event))

    def _overflow(self) -> None:
        event_metrics.dropped.inc()
        event_metrics.subscribers_dropped.inc()
        self._error = err_buffer_full(self.buffer)
        log.warning("dropping slow event subscriber", extra={"buffer": self.buffer})
        self._ready.set()
        self.close()


class ClusterEventBackend(EventBackend):
    """The APIs' event backend with `redis_url`: publishing as before (the local bus), plus Redis on both sides.

    `inner` is the daemon's `EventBus`, or with `--workers` the worker's `RoutedEventBackend` (whose merged
    streams then become `ClusterSubscription`s, so the other workers' events still come from them)."""

    def __init__(
        self,
        inner: EventBus | RoutedEventBackend,
        link: RedisLink,
        url: str,
        source: str,
        *,
        history_size: int,
        history_per_gateway: int,
        history_age_ns: int,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.inner = inner
        self.routed = inner if isinstance(inner, RoutedEventBackend) else None
        self.local: EventBus = inner.local if isinstance(inner, RoutedEventBackend) else inner
        self.link = link
        self.source = source
        self.history_per_gateway = history_per_gateway
        self.history_age_ns = history_age_ns
        self.publisher = RedisEventPublisher(
            link, source, history_size=history_size, history_per_gateway=history_per_gateway,
            history_age_ns=history_age_ns, queue_limit=queue_limit,
        )
        self.reader = RedisEventReader(url, link, source)
        self.local.attach(PublishTap(self.publisher), counted=False)
        if self.routed is not None:
            self.routed.subscription_factory = self._new_subscription

    def start(self) -> None:
        self.publisher.start()

    def _new_subscription(
        self,
        gateway_ids: Collection[str] | None,
        names: NameMatcher,
        buffer: int,
        rights: Mapping[str, Collection[str]] | None,
        tail: int,
        after_ns: int | None,
        now_ns: int | None,
    ) -> ClusterSubscription:
        return ClusterSubscription(gateway_ids, names, buffer, rights, tail, after_ns, now_ns, cluster=self)

    def publish(self, event: Event) -> None:
        self.inner.publish(event)

    def subscribe(
        self,
        gateway_ids: Collection[str] | None,
        names: NameMatcher = match_all,
        buffer: int = DEFAULT_BUFFER,
        *,
        rights: Mapping[str, Collection[str]] | None = None,
        tail: int = 0,
        after_ns: int | None = None,
        now_ns: int | None = None,
        key_id: str | None = None,
    ) -> Subscription:
        if self.routed is not None:
            return self.routed.subscribe(
                gateway_ids, names, buffer, rights=rights, tail=tail, after_ns=after_ns, now_ns=now_ns, key_id=key_id
            )
        sub = self._new_subscription(gateway_ids, names, buffer, rights, tail, after_ns, now_ns)
        history: list[Event] = []
        if tail > 0 or after_ns is not None:
            history = self.local.history(sub, tail=tail, after_ns=after_ns, now_ns=now_ns)
        self.local.attach(sub)
        sub.start(history, cast("Peers", _NoPeers()), b"")
        return sub

    async def read_history(
        self, sub: Subscription, tail: int, after_ns: int | None, now_ns: int | None
    ) -> tuple[list[Event], StreamId]:
        """The subscription's history in Redis and the snapshot it was read at, in one transaction (MULTI): every
        entry up to the snapshot is in the read, none after it."""
        count = history_count(tail, self.history_per_gateway) or None
        pipe = self.link.client.pipeline(transaction=True)
        pipe.xrevrange(STREAM_KEY, count=1)
        if sub.gateway_ids is None:
            pipe.xrevrange(STREAM_KEY, count=tail or None)
        else:
            for gateway_id in sorted(sub.gateway_ids):
                pipe.xrevrange(GATEWAY_KEY_PREFIX + gateway_id, count=count)
        replies = await pipe.execute()
        self.link.succeeded()
        top = replies[0]
        snapshot = parse_id(top[0][0]) if top else (0, 0)
        oldest = now_ns - self.history_age_ns if now_ns is not None else None
        events, bad = select_history(replies[1:], sub.accepts, tail=tail, after_ns=after_ns, oldest_ns=oldest)
        if bad:
            metrics.EVENTS_INVALID.inc(bad)
        return events, snapshot

    def related(self, correlation_id: str) -> list[Event]:
        return self.inner.related(correlation_id)

    async def related_everywhere(self, correlation_id: str) -> list[Event]:
        return await self.inner.related_everywhere(correlation_id)

    async def aclose(self) -> None:
        """Stop the Redis tasks (after one last bounded write of what is queued)."""
        await self.publisher.close()
        await self.reader.close()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


__all__ = [
    "ClusterEventBackend",
    "ClusterSubscription",
    "PublishTap",
    "RedisEventPublisher",
    "RedisEventReader",
]
