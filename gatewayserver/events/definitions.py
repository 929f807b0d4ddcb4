"""Known event names, what they mean, and who may see them.

The streaming API accepts only defined names (or regular expressions matching at least one), exactly like the
reference, so every event the daemon can emit must be defined here or through `define()` by the package that
emits it. Visibility follows the reference Gateway Server: an event is shown to a caller holding any of its
rights for the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from gatewayserver.errors import INVALID_ARGUMENT, GsError

from .event import Event, GatewayRef

if TYPE_CHECKING:  # pragma: no cover
    from google.protobuf.message import Message

TRAFFIC_READ = "RIGHT_GATEWAY_TRAFFIC_READ"
STATUS_READ = "RIGHT_GATEWAY_STATUS_READ"
LINK = "RIGHT_GATEWAY_LINK"


@dataclass(frozen=True, slots=True)
class EventDefinition:
    name: str
    description: str
    visibility: tuple[str, ...]
    data_type: str = ""

    def new(
        self,
        time_ns: int,
        gateway_ids: tuple[GatewayRef, ...],
        data: Message | None = None,
        correlation_ids: Sequence[str] = (),
        *,
        data_factory: Callable[[], Message] | None = None,
    ) -> Event:
        """An event of this kind; visibility is attached so readers need no registry look-up."""
        return Event(self.name, time_ns, gateway_ids, data, correlation_ids, visibility=self.visibility,
                     data_factory=data_factory)


_DEFINITIONS: dict[str, EventDefinition] = {}


def define(name: str, description: str, visibility: Iterable[str] = (), data_type: str = "") -> EventDefinition:
    """Register an event name. Re-defining with identical settings is allowed (module reloads in tests)."""
    definition = EventDefinition(name, description, tuple(visibility), data_type)
    existing = _DEFINITIONS.get(name)
    if existing is not None and existing != definition:
        raise ValueError(f"event {name!r} already defined differently")
    _DEFINITIONS[name] = definition
    return definition


def definitions() -> dict[str, EventDefinition]:
    return dict(_DEFINITIONS)


def visibility_of(name: str) -> tuple[str, ...]:
    definition = _DEFINITIONS.get(name)
    return definition.visibility if definition is not None else ()


# The Gateway Server's events, with the reference's names, descriptions and visibility.
GS_GATEWAY_CONNECT = define("gs.gateway.connect", "connect gateway", (LINK, STATUS_READ))
GS_GATEWAY_DISCONNECT = define(
    "gs.gateway.disconnect", "disconnect gateway", (LINK, STATUS_READ), "ttn.lorawan.v3.ErrorDetails"
)
GS_GATEWAY_CONNECTION_STATS = define(
    "gs.gateway.connection.stats",
    "gateway connection stats",
    (LINK, STATUS_READ),
    "ttn.lorawan.v3.GatewayConnectionStats",
)
GS_UP_RECEIVE = define(
    "gs.up.receive", "receive uplink message", (TRAFFIC_READ,), "ttn.lorawan.v3.GatewayUplinkMessage"
)
GS_UP_FORWARD = define("gs.up.forward", "forward uplink message", (TRAFFIC_READ,), "google.protobuf.Value")
GS_UP_DROP = define("gs.up.drop", "drop uplink message", (TRAFFIC_READ,), "ttn.lorawan.v3.ErrorDetails")
GS_IO_UP_REPEAT = define(
    "gs.io.up.repeat",
    "received repeated uplink message from gateway",
    (TRAFFIC_READ,),
    "ttn.lorawan.v3.GatewayIdentifiers",
)
GS_STATUS_RECEIVE = define(
    "gs.status.receive", "receive gateway status", (STATUS_READ,), "ttn.lorawan.v3.GatewayStatus"
)
GS_DOWN_SCHEDULE_ATTEMPT = define(
    "gs.down.schedule.attempt",
    "schedule downlink message for transmission",
    (TRAFFIC_READ,),
    "ttn.lorawan.v3.DownlinkMessage",
)
GS_DOWN_SCHEDULE_FAIL = define(
    "gs.down.schedule.fail",
    "failed to schedule downlink message for transmission",
    (TRAFFIC_READ,),
    "ttn.lorawan.v3.ErrorDetails",
)
GS_DOWN_SEND = define("gs.down.send", "send downlink message", (TRAFFIC_READ,), "ttn.lorawan.v3.DownlinkMessage")
GS_DOWN_TX_SUCCESS = define("gs.down.tx.success", "transmit downlink message successful", (TRAFFIC_READ,))
GS_DOWN_TX_FAIL = define(
    "gs.down.tx.fail", "transmit downlink message failure", (TRAFFIC_READ,), "google.protobuf.Value"
)
GS_TXACK_RECEIVE = define(
    "gs.txack.receive",
    "receive transmission acknowledgement",
    (TRAFFIC_READ,),
    "ttn.lorawan.v3.TxAcknowledgment",
)
GS_TXACK_FORWARD = define(
    "gs.txack.forward", "forward transmission acknowledgement", (TRAFFIC_READ,), "google.protobuf.Value"
)
GS_TXACK_DROP = define(
    "gs.txack.drop", "drop transmission acknowledgement", (STATUS_READ,), "ttn.lorawan.v3.ErrorDetails"
)
# Sent by the streaming API itself as the first message; never published on the bus.
EVENTS_STREAM_START = define("events.stream.start", "event stream start", ())


# --- name filters -------------------------------------------------------------------------------------------

NS_EVENTS = "pkg/events"

#: Bounds on a request's `names`, checked before anything is compiled. The daemon defines fewer than 20 event
#: names, so 32 entries list every one of them with room to spare; a regular expression selecting events needs
#: far fewer than 200 characters. Only regular expressions cost real work, so they have a bound of their own.
MAX_NAMES = 32
MAX_PATTERNS = 8
MAX_NAME_LENGTH = 200
#: Memory RE2 may use for one expression's program (its default is 8 MiB). Counted repetitions like `.{1000}`
#: multiply a program's size; with this bound the costliest 200-character expression compiles in about 10 ms
#: and a larger one is refused as invalid instead of being built.
PATTERN_MAX_MEM = 256 << 10


def err_invalid_regexp(cause: BaseException | None = None) -> GsError:
    return GsError(NS_EVENTS, "invalid_regexp", "invalid regexp", code=INVALID_ARGUMENT, cause=cause)


def err_no_matching_events(regexp: str) -> GsError:
    return GsError(
        NS_EVENTS,
        "no_matching_events",
        "no matching events for regexp `{regexp}`",
        code=INVALID_ARGUMENT,
        attributes={"regexp": regexp},
    )


def err_unknown_event_name(name: str) -> GsError:
    return GsError(
        NS_EVENTS, "unknown_event_name", "unknown event `{name}`", code=INVALID_ARGUMENT, attributes={"name": name}
    )


def err_too_many_names(count: int, limit: int) -> GsError:
    return GsError(
        NS_EVENTS,
        "too_many_names",
        "too many event names: {count} given, at most {limit} allowed",
        code=INVALID_ARGUMENT,
        attributes={"count": count, "limit": limit},
    )


def err_too_many_patterns(count: int, limit: int) -> GsError:
    return GsError(
        NS_EVENTS,
        "too_many_patterns",
        "too many regular expressions in event names: {count} given, at most {limit} allowed",
        code=INVALID_ARGUMENT,
        attributes={"count": count, "limit": limit},
    )


def err_name_too_long(index: int, length: int, limit: int) -> GsError:
    return GsError(
        NS_EVENTS,
        "name_too_long",
        "event name {index} is {length} characters long, at most {limit} allowed",
        code=INVALID_ARGUMENT,
        attributes={"index": index, "length": length, "limit": limit},
    )


#: `pkg/events` error names that `check_name_bounds` raises (the API counts them as refusals).
BOUND_ERRORS = frozenset({"too_many_names", "too_many_patterns", "name_too_long"})

NameMatcher = Callable[[str], bool]


def match_all(name: str) -> bool:
    return True


def _is_pattern(name: str) -> bool:
    return len(name) >= 2 and name.startswith("/") and name.endswith("/")


def check_name_bounds(names: Sequence[str]) -> None:
    """Refuse a `names` list over the bounds; looks at lengths only, so it costs nothing whatever the content."""
    if len(names) > MAX_NAMES:
        raise err_too_many_names(len(names), MAX_NAMES)
    patterns = 0
    for index, name in enumerate(names):
        if len(name) > MAX_NAME_LENGTH:
            raise err_name_too_long(index, len(name), MAX_NAME_LENGTH)
        patterns += _is_pattern(name)
    if patterns > MAX_PATTERNS:
        raise err_too_many_patterns(patterns, MAX_PATTERNS)


class Pattern(Protocol):
    """What we use of a compiled RE2 expression."""

    def search(self, text: str) -> object: ...


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False  # RE2 would write every refused pattern to stderr, bypassing our logging
    return options


_RE2_OPTIONS = _re2_options()


def compile_pattern(pattern: str) -> Pattern:
    """Compile with RE2: matching time is linear in the input whatever the pattern, so `/(.|.|.)*X/` cannot pin
    the loop as it does with Python's backtracking `re`. RE2 syntax is Go's regexp syntax, which the reference
    server uses for the same field. Any failure (syntax, program too large, unencodable text) is `invalid_regexp`.
    """
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except Exception as exc:  # re2.error, UnicodeEncodeError for a lone surrogate, whatever the binding raises
        raise err_invalid_regexp(exc) from None


def resolve_names(names: Iterable[str], known: Iterable[str] | None = None) -> frozenset[str] | None:
    """Turn a request's `names` into the set of defined names it selects (None = no filter).

    The bounds (`check_name_bounds`) are checked first. Entries written `/regex/` select every defined name the
    expression matches anywhere (Go's MatchString is a search, so RE2's `search` here); other entries must be
    defined names. Resolving against definitions up front makes the per-event check one set membership test.
    The caller checks rights before calling this: nothing here should run for a caller who may not stream.
    """
    names = list(names)
    if not names:
        return None
    check_name_bounds(names)
    defined = sorted(known if known is not None else _DEFINITIONS)
    defined_set = set(defined)
    selected: set[str] = set()
    try:
        for name in names:
            if _is_pattern(name):
                pattern = name[1:-1]
                regexp = compile_pattern(pattern)
                matched = [d for d in defined if regexp.search(d)]
                if not matched:
                    raise err_no_matching_events(pattern)
                selected.update(matched)
            elif name in defined_set:
                selected.add(name)
            else:
                raise err_unknown_event_name(name)
    finally:
        # The module keeps its last 128 compiled programs (each up to PATTERN_MAX_MEM) in a cache; a pattern is
        # only used here, once per stream request, so give that memory back rather than let callers fill it.
        re2.purge()
    return frozenset(selected)


def name_matcher(names: Iterable[str]) -> NameMatcher:
    """A predicate for `subscribe(names=...)` built from request names (validated as in `resolve_names`)."""
    selected = resolve_names(names)
    if selected is None:
        return match_all
    return selected.__contains__
