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

The stream bounds (`events_max_streams_per_key`, `events_max_streams`) are the daemon's: the request carries the
API key's public ID (never its secret) and each peer takes a slot for it in its own `StreamSlots` while the internal
stream lives (`peer_stream_slot`; given back however the stream ends, the receiving worker's death included, which
ends the connection). Every worker thus counts its own public streams plus one per stream of every other worker,
so the receiving worker's check is a check over the whole daemon. Two workers admitting the last slot at the same
moment each find the other's stream at its peer: the peer refuses the internal stream with the bound's own error,
and `ApiCore.start_stream` refuses the public stream with it (both refused, never one too many).

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

from gatewayserver.api.streams import StreamSlots, is_limit_refusal
from gatewayserver.errors import GsError
from gatewayserver.events.bus import DEFAULT_BUFFER, EventBackend, EventBus, Subscription
from gatewayserver.events.definitions import NameMatcher, match_all
from gatewayserver.events.event import Event
from gatewayserver.ttnpb import events_pb2

from . import wire
from .peers import HISTORY_DEADLINE, Peers

log = logging.getLogger(__name__)

#: The longest API key ID a peer's stream request may carry (ours have 39 characters).
MAX_KEY_ID = 64


def _nothing() -> None:
    pass


def peer_stream_slot(slots: StreamSlots | None, doc: Mapping[str, Any]) -> Callable[[], None]:
    """Take the slot another worker's stream holds here while its internal stream lives, under the API key ID the
    request names; returns the function that gives it back. Over a bound this raises the same RESOURCE_EXHAUSTED
    error a public stream gets, before the stream sends anything, and the receiving worker refuses its client's
    stream with it. A request naming no key (no public stream behind it) takes none."""
    key_id = doc.get("key_id")
    if slots is None or key_id is None:
        return _nothing
    if not isinstance(key_id, str) or not 0 < len(key_id) <= MAX_KEY_ID:
        raise ValueError("a peer's event stream request has a malformed key_id")
    return slots.acquire(key_id)


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
                if is_limit_refusal(exc):  # not a failure: the API refuses the request with it, and logs that
                    log.debug("event stream refused by a worker", extra={"worker": index, "error": str(exc)})
                else:
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
        key_id: str | None = None,
    ) -> Subscription:
        if gateway_ids is None or rights is None:
            raise ValueError("a stream over several workers names its gateways and rights")
        request = orjson.dumps(
            {
                "key_id": key_id,
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


__all__ = ["MergedSubscription", "RoutedEventBackend", "names_of", "peer_stream_slot"]
