"""Is Redis answering? A sans-I/O state machine fed with operation outcomes and `now`.

Every user of Redis (the ownership records, event publishing, stats) reports how its operations went; the shell
logs each change of state once, sets `gs_redis_up` and shows it in `/readyz`. Unlike a Network Server, Redis is
one server for everything the instance shares, so one definite failure (connection refused or lost, an
authentication or error reply) already means "down": waiting for a second would only delay telling the operator.
A timeout is not definite: an instance whose own core is saturated reads Redis' reply after the timeout although
Redis answered at once, and counting that as an outage made it log unreachable/reachable pairs every few seconds
with Redis fine. `SOFT_THRESHOLD` timeouts in a row, with no success between them, do mean "down". One success
ends it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..jsonpb import format_timestamp_ns


#: Timeouts in a row (no success between) that make Redis "down".
SOFT_THRESHOLD = 3


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state for the shell to log once; `down_for_ns` is set when Redis came back."""

    up: bool
    reason: str
    down_for_ns: int = 0


class RedisHealth:
    """Starts unknown (neither up nor down) until the first outcome: an instance whose Redis is down at start-up
    logs "unreachable" once, never a "recovered" it never lost."""

    __slots__ = ("up", "reason", "since_ns", "soft_failures")

    def __init__(self) -> None:
        self.up: bool | None = None
        self.reason = ""
        self.since_ns = 0
        self.soft_failures = 0

    def succeeded(self, now: int) -> Transition | None:
        self.soft_failures = 0
        if self.up is True:
            return None
        was_down = self.up is False
        down_for = now - self.since_ns if was_down else 0
        self.up, self.reason, self.since_ns = True, "", now
        return Transition(True, "", down_for) if was_down else None

    def failed(self, now: int, reason: str, *, soft: bool = False) -> Transition | None:
        """`soft`: a timeout, which may be this instance's own lateness (see the module's docstring)."""
        if soft and self.up is not False:
            self.soft_failures += 1
            if self.soft_failures < SOFT_THRESHOLD:
                return None
        if self.up is False:
            self.reason = reason  # the latest cause, for /readyz; logged only on the change
            return None
        self.up, self.reason, self.since_ns = False, reason, now
        return Transition(False, reason)

    def report(self) -> dict[str, object] | None:
        """The `/readyz` entry while Redis is down, else None."""
        if self.up is not False:
            return None
        return {"part": "redis", "reason": self.reason, "since": format_timestamp_ns(self.since_ns)}


__all__ = ["RedisHealth", "Transition"]
