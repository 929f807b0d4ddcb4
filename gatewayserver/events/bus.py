"""In-process event bus with bounded subscriber queues and a bounded history.

Publishing sits on the uplink hot path: it must never block, never raise and cost next to nothing when nobody
listens. Subscribers are indexed by gateway id, so a publish costs one dict look-up per gateway of the event plus
one append per interested subscriber. A subscriber whose queue is full is dropped with a notice rather than
allowed to slow the publisher down.

All methods are meant to be called from the event loop's thread (`publish_threadsafe` exists for the rare
caller that is not).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from gatewayserver.errors import RESOURCE_EXHAUSTED, GsError

from . import metrics
from .definitions import NameMatcher, match_all
from .event import Event
from .history import EventHistory

log = logging.getLogger(__name__)

DEFAULT_BUFFER = 1024
DEFAULT_HISTORY_SIZE = 10_000
DEFAULT_HISTORY_MAX_AGE_NS = 3600 * 1_000_000_000
DEFAULT_HISTORY_PER_GATEWAY = 1000

#: Rights that make every gateway event visible (expanded by the auth layer; repeated here so the bus does not
#: depend on it).
_ALL_RIGHTS_MARKERS = frozenset({"RIGHT_ALL", "RIGHT_GATEWAY_ALL"})


def err_buffer_full(buffer: int) -> GsError:
    return GsError(
        "pkg/events",
        "buffer_full",
        "event buffer of {buffer} events full; the subscriber was too slow and is dropped",
        code=RESOURCE_EXHAUSTED,
        attributes={"buffer": buffer},
    )


class Subscription:
    """A bounded stream of events for some gateways, filtered by name and visibility.

    Iterate with `async for`, or call `next_batch()` to take everything queued at once (cheaper for writers
    that flush per batch). After an overflow the events already queued are still handed out, then the
    iteration raises the `buffer_full` error so the API can tell the client why its stream ended.
    """

    __slots__ = (
        "gateway_ids",
        "_matcher",
        "_rights",
        "_accept",
        "_queue",
        "_limit",
        "_waiter",
        "_closed",
        "_error",
        "_unregister",
        "_on_close",
        "buffer",
    )

    def __init__(
        self,
        gateway_ids: Collection[str] | None,
        names: NameMatcher = match_all,
        buffer: int = DEFAULT_BUFFER,
        rights: Mapping[str, Collection[str]] | None = None,
        unregister: Callable[[Subscription], None] | None = None,
    ) -> None:
        self.gateway_ids = frozenset(gateway_ids) if gateway_ids is not None else None
        self.buffer = max(1, buffer)
        self._matcher = names
        self._rights = {gid: frozenset(r) for gid, r in rights.items()} if rights is not None else None
        # Per gateway: event name -> accepted? Filled lazily; event names are a small closed set.
        self._accept: dict[str, dict[str, bool]] = {}
        self._queue: deque[Event] = deque()
        self._limit = self.buffer
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: GsError | None = None
        self._unregister = unregister
        self._on_close: list[Callable[[], None]] = []

    # --- filtering --------------------------------------------------------------------------------------------

    def accepts(self, event: Event, gateway_id: str) -> bool:
        per_gateway = self._accept.get(gateway_id)
        if per_gateway is None:
            per_gateway = self._accept[gateway_id] = {}
        ok = per_gateway.get(event.name)
        if ok is None:
            ok = per_gateway[event.name] = self._decide(event, gateway_id)
        return ok

    def _decide(self, event: Event, gateway_id: str) -> bool:
        if self.gateway_ids is not None and gateway_id not in self.gateway_ids:
            return False
        if not self._matcher(event.name):
            return False
        if self._rights is None:
            return True
        held = self._rights.get(gateway_id, frozenset())
        if held & _ALL_RIGHTS_MARKERS:
            return True
        visibility = event.visibility
        # An event without declared visibility is shown to anyone with some right for the gateway.
        return bool(held) if not visibility else not held.isdisjoint(visibility)

    # --- producer side (bus) ----------------------------------------------------------------------------------

    def offer(self, event: Event) -> None:
        """Queue an event; on overflow end the subscription instead of waiting. Never raises."""
        if self._closed:
            return
        queue = self._queue
        if len(queue) >= self._limit:
            metrics.dropped.inc()
            metrics.subscribers_dropped.inc()
            self._error = err_buffer_full(self.buffer)
            log.warning("dropping slow event subscriber", extra={"buffer": self.buffer})
            self.close()
            return
        queue.append(event)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def prefill(self, events: Iterable[Event]) -> None:
        """Queue history; it may exceed the buffer, so the bound grows by what was prefilled."""
        before = len(self._queue)
        self._queue.extend(events)
        self._limit += len(self._queue) - before

    # --- consumer side ----------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> GsError | None:
        return self._error

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Run `callback` once when the subscription closes, however it closes (client gone, overflow, shutdown):
        the API frees the stream's slot this way. Runs at once if already closed."""
        if self._closed:
            callback()
        else:
            self._on_close.append(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._unregister is not None:
            self._unregister(self)
            self._unregister = None
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # close() runs inside publish (overflow); it must not raise there
                log.exception("event subscription close callback failed")
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def pending(self) -> int:
        return len(self._queue)

    async def ready(self) -> None:
        """Wait until every source of the stream is listening (at once here; a stream over several workers waits
        for each worker's history), so the API sends `events.stream.start` only when no event can be missed."""

    async def next_batch(self, max_items: int = 1024, timeout: float | None = None) -> list[Event]:
        """Wait for events and return all queued (up to `max_items`).

        Returns [] once closed cleanly, or when `timeout` seconds pass without events (check `closed` to tell
        the two apart); raises the `buffer_full` error after an overflow once the queue is drained.
        """
        queue = self._queue
        while not queue:
            if self._closed:
                if self._error is not None:
                    raise self._error
                return []
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _wake, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                if self._waiter is waiter:
                    self._waiter = None
            if not queue and not self._closed and timeout is not None:
                return []
        if len(queue) <= max_items:
            batch = list(queue)
            queue.clear()
        else:
            batch = [queue.popleft() for _ in range(max_items)]
        if self._limit > self.buffer:
            # History that was prefilled has been taken; shrink the bound back towards the buffer.
            self._limit = max(self.buffer, len(queue))
        metrics.delivered.inc(len(batch))
        return batch

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        queue = self._queue
        if not queue:
            batch = await self.next_batch(1)
            if not batch:
                raise StopAsyncIteration
            return batch[0]
        metrics.delivered.inc()
        return queue.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class EventBackend(abc.ABC):
    """What the APIs need from an event bus; a shared (multi-process) backend would implement the same."""

    @abc.abstractmethod
    def publish(self, event: Event) -> None:
        """Hand an event to every interested subscriber and the history. Never blocks, never raises."""

    @abc.abstractmethod
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
        """Subscribe to events of `gateway_ids` (None: all) whose names pass `names` and are visible with
        `rights` (gateway id -> right names; None: no visibility check). With `tail`/`after_ns` the
        subscription starts with matching history (whichever limit is reached first). `key_id` is the public ID
        of the API key the stream is for: a backend spanning several workers has each of them count the stream
        against that key's bounds; one process ignores it (the API counted it already)."""

    @abc.abstractmethod
    def related(self, correlation_id: str) -> list[Event]:
        """Remembered events carrying `correlation_id`, oldest first."""

    async def related_everywhere(self, correlation_id: str) -> list[Event]:
        """`related` over every process sharing the API (several workers); one process: `related` itself."""
        return self.related(correlation_id)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; subscriptions end cleanly."""


class EventBus(EventBackend):
    """The in-process implementation: per-gateway subscriber index plus a history bounded in total, per gateway
    and by age (`history.EventHistory`)."""

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        history_max_age_ns: int = DEFAULT_HISTORY_MAX_AGE_NS,
        history_per_gateway: int = DEFAULT_HISTORY_PER_GATEWAY,
    ) -> None:
        self._by_gateway: dict[str, list[Subscription]] = {}
        self._wildcard: list[Subscription] = []
        self._history = EventHistory(history_size, history_max_age_ns, history_per_gateway)
        self._history_max_age_ns = history_max_age_ns
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- publishing -------------------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        try:
            metrics.published.inc()
            self._history.append(event)
            gateway_ids = event.gateway_ids
            if len(gateway_ids) == 1:
                gateway_id = gateway_ids[0][0]
                subs = self._by_gateway.get(gateway_id)
                if subs:
                    for sub in subs:
                        if sub.accepts(event, gateway_id):
                            sub.offer(event)
                for sub in self._wildcard:
                    if sub.accepts(event, gateway_id):
                        sub.offer(event)
            else:
                self._publish_multi(event)
        except Exception:  # publishing must never take the caller down
            log.exception("event publish failed", extra={"event_name": getattr(event, "name", None)})

    def _publish_multi(self, event: Event) -> None:
        delivered: set[int] = set()
        for gateway_id, _ in event.gateway_ids:
            for sub in (*self._by_gateway.get(gateway_id, ()), *self._wildcard):
                if id(sub) not in delivered and sub.accepts(event, gateway_id):
                    delivered.add(id(sub))
                    sub.offer(event)

    def publish_threadsafe(self, event: Event) -> None:
        """For publishers outside the loop's thread (the loop is the one of the first subscription)."""
        loop = self._loop
        if loop is None:
            self.publish(event)
        else:
            loop.call_soon_threadsafe(self.publish, event)

    # --- subscribing ------------------------------------------------------------------------------------------

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
        sub = Subscription(gateway_ids, names, buffer, rights)
        if tail > 0 or after_ns is not None:
            sub.prefill(self.history(sub, tail=tail, after_ns=after_ns, now_ns=now_ns))
        self.attach(sub)
        return sub

    def attach(self, sub: Subscription, *, counted: bool = True) -> None:
        """Deliver live events to a subscription built elsewhere (a stream merging several workers' events builds
        its own, a worker serving a peer's stream reads its history first). `counted=False` keeps it out of
        `gs_event_stream_subscribers`: a peer's internal stream is not one more client stream."""
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
        sub._unregister = self._unsubscribe if counted else self._unsubscribe_uncounted
        if sub.gateway_ids is None:
            self._wildcard = [*self._wildcard, sub]
        else:
            for gateway_id in sub.gateway_ids:
                self._by_gateway[gateway_id] = [*self._by_gateway.get(gateway_id, ()), sub]
        if counted:
            metrics.stream_subscribers.inc()

    def _unsubscribe(self, sub: Subscription) -> None:
        self._unsubscribe_uncounted(sub)
        metrics.stream_subscribers.dec()

    def _unsubscribe_uncounted(self, sub: Subscription) -> None:
        # Copy-on-write: a publish may be iterating the old list when an overflow unsubscribes from inside it.
        if sub.gateway_ids is None:
            self._wildcard = [s for s in self._wildcard if s is not sub]
        else:
            for gateway_id in sub.gateway_ids:
                subs = self._by_gateway.get(gateway_id)
                if subs is not None:
                    remaining = [s for s in subs if s is not sub]
                    if remaining:
                        self._by_gateway[gateway_id] = remaining
                    else:
                        del self._by_gateway[gateway_id]

    def subscriber_count(self) -> int:
        return len(self._wildcard) + len({id(s) for subs in self._by_gateway.values() for s in subs})

    # --- history ----------------------------------------------------------------------------------------------

    def history(
        self,
        sub: Subscription,
        *,
        tail: int = 0,
        after_ns: int | None = None,
        now_ns: int | None = None,
    ) -> list[Event]:
        """Matching past events in publish order: those after `after_ns`, at most the last `tail`."""
        oldest = now_ns - self._history_max_age_ns if now_ns is not None else None
        out: list[Event] = []
        for event in self._history.newest_first():
            if after_ns is not None and event.time_ns <= after_ns:
                continue
            if oldest is not None and event.time_ns < oldest:
                continue
            if any(sub.accepts(event, gid) for gid, _ in event.gateway_ids):
                out.append(event)
                if tail > 0 and len(out) >= tail:
                    break
        out.reverse()
        return out

    def related(self, correlation_id: str) -> list[Event]:
        """Events in the history that carry `correlation_id`, oldest first (Events.FindRelated)."""
        return [event for event in self._history if correlation_id in event.correlation_ids]

    @property
    def event_history(self) -> EventHistory:
        """The history itself (read-only use: sizes for tests and diagnostics)."""
        return self._history

    def close(self) -> None:
        for sub in list(self._wildcard):
            sub.close()
        for subs in list(self._by_gateway.values()):
            for sub in list(subs):
                sub.close()
