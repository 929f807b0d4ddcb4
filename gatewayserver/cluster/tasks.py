"""Stopping a background task that talks to Redis, without trusting it to honour one cancellation.

On Python 3.11 a cancellation that arrives just as a timeout inside redis-py (or `asyncio.wait_for`) fires can be
swallowed: the task goes on to its next loop turn, and a plain `cancel(); await task` then waits forever. The
daemon's shutdown hung that way after a Redis outage. So: cancel, wait a little, cancel again while it runs, and
give up after `timeout` (the task is then abandoned to the loop's end rather than stalling SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task[Any] | None, timeout: float = 3.0, interval: float = 0.1) -> None:
    if task is None or task.done():
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done():
        task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("background task did not stop, abandoned", extra={"task": task.get_name()})
            return
        await asyncio.wait((task,), timeout=min(interval, remaining))
    if not task.cancelled() and task.exception() is not None:
        log.debug("background task ended with an error", exc_info=task.exception())


__all__ = ["stop_task"]
