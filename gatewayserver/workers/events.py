"""Event streams over every worker: `Events.Stream`, `POST /api/v3/events` and `FindRelated` on any worker.

Each gateway's events are published by its owner only, so a stream that shows every worker's events in time
order per gateway needs no cross-process clock agreement: it is the owner's order, kept by merging.

`RoutedEventBackend.subscribe` (called by `ApiCore` after the rights and stream limits were checked) builds a
`MergedSubscription`: attached to the local bus for this worker's live events, with this worker's history taken in
the same step, and one internal stream per peer (same gateways, names, rights, tail and after). Each peer sends its
history, a history-end frame, then its live events. Once every peer's history is in, the histories are merged by
time (each one's own order kept) and only the last `tail` overall are kept, placed before any live event; the
consumer waits for that (at most `HISTORY_DEADLINE`). A peer that fails (down, restarted, too slow a reader) ends
the stream with its error, naming the worker, rather than silently leaving a gap: clients resume with `after`.

Memory per stream is bounded as a local stream's is: the queue holds at most `buffer` live events (then the
stream ends with `buffer_full`), and the history is at most `tail` events, or what `after` selects from each
worker's bounded history.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import orjson

from gatewayserver.errors import GsError
from gatewayserver.events.bus import DEFAULT_BUFFER, EventBackend, EventBus, Subscription
from gatewayserver.events.definitions import NameMatcher, match_all
from gatewayserver.events.event import Event
from gatewayserver.ttnpb import events_pb2

from . import wire
from .peers import HISTORY_DEADLINE, Peers

log = logging.getLogger(__name__)


def names_of(matcher: NameMatcher) -> list[str] | None:
    """The name set behind a matcher, to send to peers: `ApiCore` passes `frozenset.__contains__` (or
    `match_all`); any other predicate cannot cross a process boundary."""
    if matcher is match_all:
        return None
    owner = getattr(matcher, "__self__", None)
    if isinstance(owner, (set, frozenset)):
        return sorted(owner)
    raise TypeError("a stream over several workers needs its names as a set")


class MergedSubscription(Subscription):
    """A `Subscription` fed by the local bus and by every peer, whose history is merged before it is handed out."""

    __slots__ = ("_tail", "_histories", "_pending", "_ready", "_tasks")

    def __init__(
        self,
        gateway_ids: Collection[str] | None,
        names: NameMatcher,
        buffer: int,
        rights: Mapping[str, Collection[str]] | None,
        tail: int,
    ) -> None:
        super().__init__(gateway_ids, names, buffer, rights)
        self._tail = tail
        self._histories: list[list[Event]] = []
        self._pending = 0
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, local_history: list[Event], peers: Peers, request: bytes) -> None:
        self._histories.append(local_history)
        self._pending = len(peers.others)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow(peers, index, request)) for index in peers.others]
        self.add_close_callback(self._cancel_tasks)
        if not self._pending:
            self._release_history()

    def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def _follow(self, peers: Peers, index: int, request: bytes) -> None:
        frames = peers.stream(index, wire.EVENTS, request)
        history: list[Event] = []
        try:
            try:
                async with asyncio.timeout(HISTORY_DEADLINE):
                    async for frame in frames:
                        if frame[:1] == wire.FRAME_HISTORY_END:
                            break
                        history.append(_event(frame))
                    else:
                        raise wire.err_worker_unavailable(index, "stream ended")
            except TimeoutError:
                raise wire.err_worker_unavailable(index, "no history within the deadline") from None
            self._histories.append(history)
            self._pending -= 1
            if not self._pending:
                self._release_history()
            async for frame in frames:
                self.offer(_event(frame))
            raise wire.err_worker_unavailable(index, "stream ended")
        except GsError as exc:
            if not self.closed:
                log.warning("event stream ended: a worker failed", extra={"worker": index, "error": str(exc)})
                self._error = exc
                self._ready.set()
                self.close()
        finally:
            await frames.aclose()

    def _release_history(self) -> None:
        merged: list[Event] = list(heapq.merge(*self._histories, key=_time))
        self._histories = []
        if self._tail > 0:
            merged = merged[-self._tail:]
        if merged:
            self._queue.extendleft(reversed(merged))
            self._limit += len(merged)
        self._ready.set()

    async def ready(self) -> None:
        await self._ready.wait()

    async def next_batch(self, max_items: int = 1024, timeout: float | None = None) -> list[Event]:
        if not self._ready.is_set():
            await self._ready.wait()
        return await super().next_batch(max_items, timeout)

    async def __anext__(self) -> Event:
        batch = await self.next_batch(1)
        if not batch:
            raise StopAsyncIteration
        return batch[0]


def _event(frame: bytes) -> Event:
    return wire.event_from_proto(events_pb2.Event.FromString(frame[1:]))


def _time(event: Event) -> int:
    return event.time_ns


class RoutedEventBackend(EventBackend):
    """The local `EventBus` for publishing; subscriptions and look-ups span every worker."""

    def __init__(self, local: EventBus, peers: Peers) -> None:
        self.local = local
        self.peers = peers
        #: Builds the merged subscriptions: (gateway_ids, names, buffer, rights, tail, after_ns, now_ns). With
        #: Redis (`gatewayserver.cluster.events`) they also take the other instances' events.
        self.subscription_factory: Callable[..., MergedSubscription] | None = None

    def publish(self, event: Event) -> None:
        self.local.publish(event)

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
    ) -> Subscription:
        if gateway_ids is None or rights is None:
            raise ValueError("a stream over several workers names its gateways and rights")
        request = orjson.dumps(
            {
                "gateway_ids": sorted(gateway_ids),
                "rights": {g: sorted(r) for g, r in rights.items()},
                "names": names_of(names),
                "tail": tail,
                "after_ns": after_ns,
                "now_ns": now_ns,
                "buffer": buffer,
            }
        )
        factory = self.subscription_factory
        if factory is not None:
            sub = factory(gateway_ids, names, buffer, rights, tail, after_ns, now_ns)
        else:
            sub = MergedSubscription(gateway_ids, names, buffer, rights, tail)
        history: list[Event] = []
        if tail > 0 or after_ns is not None:
            history = self.local.history(sub, tail=tail, after_ns=after_ns, now_ns=now_ns)
        self.local.attach(sub)
        sub.start(history, self.peers, request)
        return sub

    def related(self, correlation_id: str) -> list[Event]:
        return self.local.related(correlation_id)

    async def related_everywhere(self, correlation_id: str) -> list[Event]:
        """Every worker's events with this correlation ID, merged by time (the caller filters by rights)."""
        remote = await asyncio.gather(
            *(self.peers.unary(i, wire.RELATED, correlation_id.encode()) for i in self.peers.others)
        )
        parts: list[Iterable[Event]] = [self.local.related(correlation_id)]
        for raw in remote:
            response = events_pb2.FindRelatedEventsResponse.FromString(raw)
            parts.append([wire.event_from_proto(proto) for proto in response.events])
        return list(heapq.merge(*parts, key=_time))

    def close(self) -> None:
        self.local.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)


__all__ = ["MergedSubscription", "RoutedEventBackend", "names_of"]
