"""Is Redis answering? A sans-I/O state machine fed with operation outcomes and `now`.

Every user of Redis (the ownership records, event publishing, stats) reports how its operations went; the shell
logs each change of state once, sets `gs_redis_up` and shows it in `/readyz`. Unlike a Network Server, Redis is
one server for everything the instance shares, so one failure already means "down": a pipelined write that failed
has lost its batch, and waiting for a second failure would only delay telling the operator. One success ends it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..jsonpb import format_timestamp_ns


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state for the shell to log once; `down_for_ns` is set when Redis came back."""

    up: bool
    reason: str
    down_for_ns: int = 0


class RedisHealth:
    """Starts unknown (neither up nor down) until the first outcome: an instance whose Redis is down at start-up
    logs "unreachable" once, never a "recovered" it never lost."""

    __slots__ = ("up", "reason", "since_ns")

    def __init__(self) -> None:
        self.up: bool | None = None
        self.reason = ""
        self.since_ns = 0

    def succeeded(self, now: int) -> Transition | None:
        if self.up is True:
            return None
        was_down = self.up is False
        down_for = now - self.since_ns if was_down else 0
        self.up, self.reason, self.since_ns = True, "", now
        return Transition(True, "", down_for) if was_down else None

    def failed(self, now: int, reason: str) -> Transition | None:
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
