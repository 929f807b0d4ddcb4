"""Is a Network Server taking our calls? A sans-I/O state machine fed with call outcomes and `now`.

Operators saw nothing when the Network Server was down: uplinks were dropped silently and `/readyz` stayed 200.
This core turns call outcomes into *transitions* (up -> failing, failing -> up) that the shell logs once each and
that `/readyz` and `gs_upstream_up` report. It never reads a clock and never logs; it only counts.

One failed call does not make a Network Server "failing": a single slow answer among thousands is noise, and a
state that flapped with it would make readiness and the log useless. `threshold` failed calls in a row, with no
success between them, do (3 by default: with the default 3 retries one uplink's attempts are enough when the
server is down, and a busy healthy server practically never fails three calls in a row). One success ends it.

Codes that refuse one message (INVALID_ARGUMENT, NOT_FOUND, ...) say nothing about the server's health and are
not counted; everything else is (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAUTHENTICATED,
PERMISSION_DENIED, UNIMPLEMENTED, INTERNAL, UNKNOWN, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..jsonpb import format_timestamp_ns

#: Codes that concern one message, not the server: they neither count towards failing nor end it.
PER_MESSAGE_CODES = frozenset(
    {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "OUT_OF_RANGE", "ABORTED"}
)

#: What an operator should check first, by gRPC code name.
HINTS = {
    "UNAVAILABLE": "is the Network Server running and reachable at this address (host, port, firewall, "
    "ns_tls/ns_ca_file matching its listener)?",
    "DEADLINE_EXCEEDED": "it accepts connections but does not answer within upstream_deadline: is it hung or "
    "overloaded?",
    "RESOURCE_EXHAUSTED": "it is overloaded or rate-limiting this Gateway Server",
    "UNAUTHENTICATED": "it refuses our credentials: check cluster_key / ns_api_key against the Network Server's",
    "PERMISSION_DENIED": "it refuses our credentials: check cluster_key / ns_api_key against the Network Server's",
    "UNIMPLEMENTED": "the address answers gRPC but has no ttn.lorawan.v3.GsNs service: is it a Network Server?",
}
DEFAULT_HINT = "see the Network Server's own log for why it fails these calls"


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, for the shell to log once. `down_for_ns` and `dropped` are set when it recovered."""

    failing: bool
    address: str
    code: str
    down_for_ns: int = 0
    dropped: int = 0

    @property
    def hint(self) -> str:
        return HINTS.get(self.code, DEFAULT_HINT)


class UpstreamHealth:
    """The health of one Network Server address. Read `failing`, `code`, `since_ns`, `dropped` freely."""

    __slots__ = ("address", "threshold", "failures", "failing", "code", "since_ns", "dropped")

    def __init__(self, address: str, threshold: int = 3) -> None:
        self.address = address
        self.threshold = max(1, threshold)
        self.failures = 0  # failed calls in a row (only health codes)
        self.failing = False
        self.code = ""  # the last health code seen while failing (or on the way there)
        self.since_ns = 0  # when the first failed call of the current run was seen
        self.dropped = 0  # uplinks dropped (any reason) since the first failed call of the current run

    def failed(self, code: str, now: int) -> Transition | None:
        """A call ended with gRPC status `code` (its name). Returns the transition to failing, once."""
        if code in PER_MESSAGE_CODES:
            return None
        if self.failures == 0:
            self.since_ns = now
            self.dropped = 0
        self.failures += 1
        self.code = code
        if self.failing or self.failures < self.threshold:
            return None
        self.failing = True
        return Transition(True, self.address, code)

    def succeeded(self, now: int) -> Transition | None:
        """A call succeeded. The shell calls this only when `failures` is non-zero (a free check per call)."""
        self.failures = 0
        if not self.failing:
            return None
        self.failing = False
        return Transition(False, self.address, self.code, max(0, now - self.since_ns), self.dropped)

    def uplink_dropped(self) -> None:
        """An uplink for this Network Server was dropped; counted from the first failed call of a run on."""
        if self.failures:
            self.dropped += 1

    def report(self) -> dict[str, object]:
        """The readiness view of this Network Server (JSON-ready)."""
        return {
            "part": "upstream",
            "address": self.address,
            "failing": self.failing,
            "code": self.code if self.failing else "",
            "failing_since": format_timestamp_ns(self.since_ns) if self.failing else "",
            "uplinks_dropped": self.dropped if self.failing else 0,
        }
