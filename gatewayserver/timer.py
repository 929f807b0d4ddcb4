"""The one timer of the daemon's event loop, armed from the earliest deadline of the sans-I/O parts.

Cores never read a clock or arm timers; each part that needs waking says when (`next_deadline()`, Unix ns) and
does its work when told (`handle_timer(now)`). This shell reads the wall clock, keeps exactly one `call_later`
handle for the earliest of those deadlines, and is poked (`poke()`) when a part may have an earlier deadline than
the one armed, e.g. a downlink held for release.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

_NS = 1_000_000_000


class Timed(Protocol):
    def next_deadline(self) -> int | None: ...

    def handle_timer(self, now: int) -> None: ...


class DeadlineTimer:
    """One `loop.call_later` for every `Timed` part; `poke()` after anything that may bring a deadline forward."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, parts: Sequence[Timed], clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.loop = loop
        self.parts = list(parts)
        self.clock = clock
        self.armed: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._closed = False

    def next_deadline(self) -> int | None:
        deadlines = [d for d in (part.next_deadline() for part in self.parts) if d is not None]
        return min(deadlines) if deadlines else None

    def poke(self) -> None:
        """Re-arm when the earliest deadline is earlier than the armed one (a later one is found when it fires)."""
        if self._closed:
            return
        deadline = self.next_deadline()
        if deadline is None or (self.armed is not None and deadline >= self.armed):
            return
        if self._handle is not None:
            self._handle.cancel()
        self.armed = deadline
        self._handle = self.loop.call_later(max(0, deadline - self.clock()) / _NS, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self.armed = None
        now = self.clock()
        for part in self.parts:
            try:
                part.handle_timer(now)
            except Exception:  # one part's bug must not stop the others' timers
                log.exception("timer handling failed", extra={"part": type(part).__name__})
        self.poke()

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
