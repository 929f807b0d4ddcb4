"""Known event names, what they mean, and who may see them.

The streaming API accepts only defined names (or regular expressions matching at least one), exactly like the
reference, so every event the daemon can emit must be defined here or through `define()` by the package that
emits it. Visibility follows the reference Gateway Server: an event is shown to a caller holding any of its
rights for the gateway.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


NameMatcher = Callable[[str], bool]


def match_all(name: str) -> bool:
    return True


def resolve_names(names: Iterable[str], known: Iterable[str] | None = None) -> frozenset[str] | None:
    """Turn a request's `names` into the set of defined names it selects (None = no filter).

    Entries written `/regex/` select every defined name the expression matches anywhere (Go's MatchString is a
    search, so `re.search` here); other entries must be defined names. Resolving against definitions up front
    makes the per-event check one set membership test.
    """
    names = list(names)
    if not names:
        return None
    defined = sorted(known if known is not None else _DEFINITIONS)
    defined_set = set(defined)
    selected: set[str] = set()
    for name in names:
        if len(name) >= 2 and name.startswith("/") and name.endswith("/"):
            pattern = name[1:-1]
            try:
                regexp = re.compile(pattern)
            except re.error as exc:
                raise err_invalid_regexp(exc) from exc
            matched = [d for d in defined if regexp.search(d)]
            if not matched:
                raise err_no_matching_events(pattern)
            selected.update(matched)
        elif name in defined_set:
            selected.add(name)
        else:
            raise err_unknown_event_name(name)
    return frozenset(selected)


def name_matcher(names: Iterable[str]) -> NameMatcher:
    """A predicate for `subscribe(names=...)` built from request names (validated as in `resolve_names`)."""
    selected = resolve_names(names)
    if selected is None:
        return match_all
    return selected.__contains__
