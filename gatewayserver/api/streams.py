"""Bounds on event streams: gateways per request, open streams per API key and in total.

An event stream holds memory for as long as it lives (its gateway index entries, rights, queue and history
prefill), and a request naming tens of thousands of gateways costs work and memory in proportion before the first
event is sent. Without bounds any key holder could take the daemon's memory and loop time by opening many streams
or naming many gateways (20 streams of 24,000 gateway ids each took the daemon from 89 to 828 MB and stalled
`/healthz` for 6 s). The bounds here are checked before any stream state is built; a refused request gets
INVALID_ARGUMENT (too many identifiers, HTTP 400) or RESOURCE_EXHAUSTED (too many streams, HTTP 429), counted by
reason in `gs_event_streams_refused_total`.

Sans-I/O: `StreamSlots` is plain counting; the API calls `acquire` when it opens a stream and the returned
release function when the subscription closes (whichever way it closes).

With `--workers N` the bounds are the daemon's, not each worker's: every worker's `StreamSlots` also holds one
slot per stream another worker received (the internal stream that stream opened here takes it, under the same
API key ID, for as long as it lives; `gatewayserver.workers.events.peer_stream_slot`). So the receiving worker's
own check counts every stream of the daemon, and a peer over a bound refuses the internal stream with the same
error (`is_limit_refusal`), which the receiving worker gives its client instead of the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gatewayserver.errors import INVALID_ARGUMENT, RESOURCE_EXHAUSTED, GsError

NS = "pkg/events/grpc"

DEFAULT_MAX_GATEWAY_IDS = 1000
DEFAULT_MAX_STREAMS_PER_KEY = 10
DEFAULT_MAX_STREAMS = 100


@dataclass(frozen=True)
class StreamLimits:
    """The configured bounds (`events_max_gateway_ids`, `events_max_streams_per_key`, `events_max_streams`)."""

    max_gateway_ids: int = DEFAULT_MAX_GATEWAY_IDS
    max_streams_per_key: int = DEFAULT_MAX_STREAMS_PER_KEY
    max_streams: int = DEFAULT_MAX_STREAMS


def err_too_many_identifiers(count: int, limit: int) -> GsError:
    return GsError(
        NS,
        "too_many_identifiers",
        "too many identifiers: {count} given, at most {limit} per stream",
        code=INVALID_ARGUMENT,
        attributes={"count": count, "limit": limit},
    )


def err_too_many_streams_per_key(limit: int) -> GsError:
    return GsError(
        NS,
        "too_many_streams_per_key",
        "this API key already has {limit} event streams open, the most allowed per key; close one first",
        code=RESOURCE_EXHAUSTED,
        attributes={"limit": limit},
    )


def err_too_many_streams(limit: int) -> GsError:
    return GsError(
        NS,
        "too_many_streams",
        "the server already has {limit} event streams open, the most it allows; try again later",
        code=RESOURCE_EXHAUSTED,
        attributes={"limit": limit},
    )


#: The errors `StreamSlots.acquire` raises, by `GsError.full_name`.
LIMIT_REFUSALS = frozenset({f"{NS}:too_many_streams_per_key", f"{NS}:too_many_streams"})


def is_limit_refusal(exc: GsError) -> bool:
    """Whether `exc` is a refusal by the open-stream bounds (also when another worker raised it)."""
    return exc.full_name in LIMIT_REFUSALS


def check_identifier_count(count: int, limits: StreamLimits) -> None:
    if count > limits.max_gateway_ids:
        raise err_too_many_identifiers(count, limits.max_gateway_ids)


class StreamSlots:
    """Counts open streams per API key id and in total; refuses a stream over either bound."""

    __slots__ = ("_per_key", "_total", "limits")

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self._per_key: dict[str, int] = {}
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def open_for(self, key_id: str) -> int:
        return self._per_key.get(key_id, 0)

    def acquire(self, key_id: str) -> Callable[[], None]:
        """Take a slot for `key_id` or raise RESOURCE_EXHAUSTED; returns the function that gives it back (calling
        it more than once is harmless)."""
        held = self._per_key.get(key_id, 0)
        if held >= self.limits.max_streams_per_key:
            raise err_too_many_streams_per_key(self.limits.max_streams_per_key)
        if self._total >= self.limits.max_streams:
            raise err_too_many_streams(self.limits.max_streams)
        self._per_key[key_id] = held + 1
        self._total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._total -= 1
            left = self._per_key[key_id] - 1
            if left:
                self._per_key[key_id] = left
            else:
                del self._per_key[key_id]

        return release
