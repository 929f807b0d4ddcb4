"""Events: what happened to which gateway, for operators watching the stream API.

`Event` is the cheap object publishers create; `EventBus` fans events out to subscribers and keeps a bounded
history; `definitions` lists the known names and who may see them.
"""

from .bus import EventBackend, EventBus, Subscription
from .definitions import EventDefinition, define, name_matcher, resolve_names
from .event import ORIGIN, Event, new_ulid

__all__ = [
    "ORIGIN",
    "Event",
    "EventBackend",
    "EventBus",
    "EventDefinition",
    "Subscription",
    "define",
    "name_matcher",
    "new_ulid",
    "resolve_names",
]
