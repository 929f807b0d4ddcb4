"""The instance's connection to Redis: one client, its health, and nothing that waits on Redis for long.

Everything that uses Redis goes through `RedisLink.client` and reports outcomes with `succeeded()` /
`failed(operation, exc)`, so the operator gets one line when Redis goes away and one when it is back, whoever
noticed first. A watcher pings it every `ping_interval` so that an idle instance notices too, and so that
recovery is seen even when the users stopped trying.

Redis must never stall the daemon: every command has `timeout` (connect and reply), and the client does not
retry by itself (a retried write would hold its batch in memory; the users decide what to drop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

from gatewayserver.config import redact_url

from . import metrics
from .health import RedisHealth
from .tasks import stop_task

log = logging.getLogger(__name__)

#: Fix to print beside "Redis unreachable": what an operator can do about it.
CHECK = "is redis-server running and reachable at this address (host, port, password, rediss:// for TLS)?"


def describe(exc: BaseException) -> str:
    """One short line for an operation's failure, without the password (redis-py may put the URL in it)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class RedisLink:
    """`client` for the users; `up` and `readiness()` for the rest of the daemon. Never logs the URL's password."""

    def __init__(self, url: str, *, timeout: float = 1.0, ping_interval: float = 1.0, max_connections: int = 64):
        self.address = redact_url(url)
        self.health = RedisHealth()
        self.ping_interval = ping_interval
        self.client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            max_connections=max_connections,
        )
        self._watcher: asyncio.Task[None] | None = None
        #: Outages seen so far: a user that writes state Redis may have lost (a restart comes back empty) compares
        #: it with the count it last saw, whether or not it was itself running while Redis was down.
        self.outages = 0

    @property
    def up(self) -> bool:
        return self.health.up is True

    async def start(self) -> None:
        """One ping now (so the start-up log says whether Redis is there), then the watcher. Never raises: an
        instance whose Redis is down still serves its own gateways."""
        await self.ping()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="redis-watch")

    async def ping(self) -> bool:
        try:
            await self.client.ping()
        except Exception as exc:  # any failure of the connection or the server means "down" here
            self.failed("ping", exc)
            return False
        self.succeeded()
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            await self.ping()

    def succeeded(self) -> None:
        if self.health.up is True:
            return  # the common case: one attribute read
        transition = self.health.succeeded(time.time_ns())
        metrics.REDIS_UP.set(1)
        if transition is not None:
            log.warning(
                "Redis reachable again: shared events, connection stats and cross-instance calls resume",
                extra={"redis": self.address, "down_for": f"{transition.down_for_ns / 1e9:.1f}s"},
            )
        else:
            log.info("Redis connected", extra={"redis": self.address})

    def failed(self, operation: str, exc: BaseException) -> None:
        metrics.REDIS_ERRORS.labels(operation).inc()
        soft = isinstance(exc, TimeoutError | RedisTimeoutError)
        transition = self.health.failed(time.time_ns(), describe(exc), soft=soft)
        if self.health.up is False:
            metrics.REDIS_UP.set(0)
        if transition is not None:
            self.outages += 1
            log.error(
                "Redis unreachable: this instance keeps serving its own gateways; events, connection stats and "
                "calls for gateways of other instances are unavailable until it is back",
                extra={"redis": self.address, "reason": transition.reason, "check": CHECK},
            )

    def readiness(self) -> dict[str, object] | None:
        """The `/readyz` "degraded" entry while Redis is down."""
        report = self.health.report()
        if report is not None:
            report["address"] = self.address
        return report

    async def close(self) -> None:
        await stop_task(self._watcher)
        self._watcher = None
        try:
            await self.client.aclose()
        except Exception:  # closing a connection to a server that is gone: nothing left to do
            log.debug("closing the Redis client failed", exc_info=True)


__all__ = ["CHECK", "RedisLink", "describe"]
