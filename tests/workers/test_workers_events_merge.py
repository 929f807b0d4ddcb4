"""A stream over several workers: histories merged by time with each worker's own order kept, the last `tail`
overall, before any live event; a failing worker ends the stream with its error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from gatewayserver.errors import GsError
from gatewayserver.events.bus import EventBus
from gatewayserver.events.definitions import match_all
from gatewayserver.events.event import Event
from gatewayserver.workers import wire
from gatewayserver.workers.events import RoutedEventBackend

RIGHTS = {"gw-a": ["RIGHT_GATEWAY_ALL"], "gw-b": ["RIGHT_GATEWAY_ALL"]}


def event(gateway_id: str, time_ns: int, name: str = "gs.up.receive") -> Event:
    return Event(name, time_ns, ((gateway_id, None),))


class FakePeers:
    """Worker 1 owns gw-b: its history, the end frame, then live events fed by the test (or a failure)."""

    def __init__(self, history: list[Event], fail_after_history: bool = False) -> None:
        self.others = [1]
        self.history = history
        self.live: asyncio.Queue[Event] = asyncio.Queue()
        self.fail_after_history = fail_after_history
        self.requests: list[bytes] = []

    async def stream(self, index: int, method: str, request: bytes) -> AsyncGenerator[bytes, None]:
        self.requests.append(request)
        for frame in wire.event_frames(self.history):
            yield frame
        yield wire.FRAME_HISTORY_END
        if self.fail_after_history:
            raise wire.err_worker_unavailable(1, "UNAVAILABLE: gone")
        while True:
            yield wire.event_frames([await self.live.get()])[0]


async def test_histories_are_merged_by_time_and_the_tail_is_over_every_worker() -> None:
    local = EventBus()
    for t in (10, 30, 50):
        local.publish(event("gw-a", t))
    peers = FakePeers([event("gw-b", 20), event("gw-b", 40), event("gw-b", 60)])
    backend = RoutedEventBackend(local, peers)  # type: ignore[arg-type]
    sub = backend.subscribe(["gw-a", "gw-b"], match_all, 100, rights=RIGHTS, tail=4, now_ns=100)
    await asyncio.wait_for(sub.ready(), 10)
    local.publish(event("gw-a", 70))
    await peers.live.put(event("gw-b", 80))
    got: list[tuple[str, int]] = []
    while len(got) < 6:
        batch = await asyncio.wait_for(sub.next_batch(), 10)
        got += [(e.gateway_ids[0][0], e.time_ns) for e in batch]
    history, live = got[:4], got[4:]
    assert history == [("gw-a", 30), ("gw-b", 40), ("gw-a", 50), ("gw-b", 60)]  # the last 4 of all six
    assert sorted(live) == [("gw-a", 70), ("gw-b", 80)]
    assert b'"tail":4' in peers.requests[0]
    sub.close()


async def test_a_failing_worker_ends_the_stream_with_its_error() -> None:
    local = EventBus()
    peers = FakePeers([event("gw-b", 20)], fail_after_history=True)
    sub = RoutedEventBackend(local, peers).subscribe(  # type: ignore[arg-type]
        ["gw-a", "gw-b"], match_all, 100, rights=RIGHTS, tail=10, now_ns=100
    )
    await asyncio.wait_for(sub.ready(), 10)
    with pytest.raises(GsError) as info:
        while True:
            if not await asyncio.wait_for(sub.next_batch(), 10):
                break
    assert info.value.name == "worker_unavailable" and info.value.attributes["worker"] == 1
    assert sub.closed
