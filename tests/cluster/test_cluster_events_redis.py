"""`ClusterEventBackend` against a real redis-server, two "instances" in one loop (each its own bus and backend):
streams opened while events flow get history then live with no gap and no repeat, from another instance and from
their own; the bounds hold in Redis; the publish queue is bounded and its drops counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from gatewayserver.cluster.events import ClusterEventBackend
from gatewayserver.cluster.events_core import GATEWAY_KEY_PREFIX, STREAM_KEY
from gatewayserver.cluster.redis_link import RedisLink
from gatewayserver.events.bus import EventBus, Subscription
from gatewayserver.events.event import Event
from redis_support import RedisServer

HOUR_NS = 3600 * 1_000_000_000


class Instance:
    def __init__(self, url: str, source: str, **bounds: Any) -> None:
        self.link = RedisLink(url)
        self.bus = EventBus()
        options = {"history_size": 100_000, "history_per_gateway": 100_000, "history_age_ns": HOUR_NS, **bounds}
        self.events = ClusterEventBackend(self.bus, self.link, url, source, **options)

    async def start(self) -> Instance:
        await self.link.start()
        self.events.start()
        return self

    async def close(self) -> None:
        await self.events.aclose()
        self.events.close()
        await self.link.close()

    def publish(self, gateway: str) -> str:
        event = Event("gs.up.receive", time.time_ns(), ((gateway, None),))
        self.bus.publish(event)
        return event.unique_id


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[Instance, Instance]]:
    x = await Instance(redis_server.url, "gs-x").start()
    y = await Instance(redis_server.url, "gs-y").start()
    yield x, y
    await x.close()
    await y.close()


async def collect_until(sub: Subscription, last_uid: str, timeout: float = 30.0) -> list[str]:
    out: list[str] = []
    async with asyncio.timeout(timeout):
        while last_uid not in out:
            out += [e.unique_id for e in await sub.next_batch()]
    return out


async def produce(instance: Instance, gateway: str, count: int, published: list[str]) -> None:
    for i in range(count):
        published.append(instance.publish(gateway))
        if i % 7 == 0:
            await asyncio.sleep(0.001)


def assert_contiguous_suffix(seen: list[str], published: list[str]) -> None:
    """History then live must be exactly the publisher's events from some point on: no gap, no repeat."""
    assert len(seen) == len(set(seen)), "an event came twice"
    start = published.index(seen[0])
    assert seen == published[start:start + len(seen)]


@pytest.mark.parametrize("own", [False, True], ids=["other-instance", "own-instance"])
async def test_streams_opened_while_events_flow_get_history_then_live_once(
    pair: tuple[Instance, Instance], own: bool
) -> None:
    x, y = pair
    publisher = y if own else x
    published: list[str] = []
    producer = asyncio.create_task(produce(publisher, "gw-1", 1500, published))
    subs = []
    for _ in range(12):
        await asyncio.sleep(0.01)
        sub = y.events.subscribe(["gw-1"], buffer=4096, tail=40)
        await sub.ready()
        subs.append(sub)
    await producer
    for sub in subs:
        seen = await collect_until(sub, published[-1])
        assert_contiguous_suffix(seen, published)
        sub.close()
    assert y.events.reader.subscribers == 0


async def test_events_of_both_instances_on_one_stream_each_once_in_each_gateways_order(
    pair: tuple[Instance, Instance],
) -> None:
    x, y = pair
    on_x: list[str] = []
    on_y: list[str] = []
    sub = y.events.subscribe(["gw-x", "gw-y"])
    await sub.ready()
    await asyncio.gather(produce(x, "gw-x", 300, on_x), produce(y, "gw-y", 300, on_y))
    seen: list[str] = []
    async with asyncio.timeout(30):
        while not {on_x[-1], on_y[-1]} <= set(seen):
            seen += [e.unique_id for e in await sub.next_batch()]
    assert [u for u in seen if u in set(on_x)] == on_x
    assert [u for u in seen if u in set(on_y)] == on_y
    assert len(seen) == 600
    sub.close()


async def test_history_bounds_hold_in_redis(redis_server: RedisServer) -> None:
    bounds: dict[str, Any] = {"history_size": 50, "history_per_gateway": 10, "history_age_ns": 60 * 1_000_000_000}
    x = await Instance(redis_server.url, "gs-x", **bounds).start()
    y = await Instance(redis_server.url, "gs-y", **bounds).start()  # the instances of a cluster share their options
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        published = [x.publish(f"gw-{i % 3}") for i in range(200)]
        await x.events.publisher.flush()
        assert await client.xlen(STREAM_KEY) == 50  # in total, exactly
        lengths = [await client.xlen(f"{GATEWAY_KEY_PREFIX}gw-{i}") for i in range(3)]
        assert sum(lengths) <= 50  # what left the total left the gateway's stream too
        for i in range(3):
            assert 0 < await client.pttl(f"{GATEWAY_KEY_PREFIX}gw-{i}") <= 60_000
        assert 0 < await client.pttl(STREAM_KEY) <= 60_000
        # A stream on the other instance: at most 10 events of the gateway (the per-gateway bound), the newest.
        sub = y.events.subscribe(["gw-0"], tail=1000)
        await sub.ready()
        history = [e.unique_id for e in await sub.next_batch(timeout=1.0)]
        assert history == [u for i, u in enumerate(published) if i % 3 == 0][-10:]
        sub.close()
    finally:
        await client.aclose()
        await x.close()
        await y.close()


async def test_publish_queue_is_bounded_and_drops_are_counted(redis_server: RedisServer) -> None:
    x = Instance(redis_server.url, "gs-x", queue_limit=100)
    await x.start()
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        for _ in range(1000):  # faster than any writer: nothing awaits in between
            x.publish("gw-1")
        assert len(x.events.publisher.queue) == 100
        await x.events.publisher.flush()
        assert await client.xlen(STREAM_KEY) == 100
        assert x.events.publisher.queue.dropped == {"queue_full": 900}

        redis_server.stop()
        await x.link.ping()  # the watcher would notice within a second; do not wait for it
        for _ in range(30):
            x.publish("gw-1")
        await x.events.publisher.flush()
        assert x.events.publisher.queue.dropped == {"queue_full": 900, "redis_down": 30}
        assert len(x.events.publisher.queue) == 0
    finally:
        await client.aclose()
        await x.close()
