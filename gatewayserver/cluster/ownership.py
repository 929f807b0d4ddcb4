"""Which ownership records and connection stats this process must write to Redis, and when; sans-I/O.

The rule: while a gateway is connected here, Redis says so (`records.owner_key`), with the connection expiry as
the record's expiry. Nothing of this runs on the uplink path: the core tells the book of connects and disconnects
(rare), and a background flusher asks `due(now, ...)` once a second for one batch, which it writes pipelined.

- **Connect** → a *claim*: the record is overwritten at once (the flusher is woken, not debounced), with the first
  stats. A gateway whose datagrams now reach this instance belongs here from its first datagram, whoever held it.
- **While connected** → a *renewal* with the stats every `renew_ns` (conditional: only while the record is still
  ours; one that another instance took is reported back as displaced, and the shell disconnects its own
  connection), and one sooner when the connection's activity changed, at most every `stats_ns` per gateway (never
  per uplink).
- **Disconnect** → a *release*: compare-and-delete of our record with the final stats written, unless the reason
  is `moved` (the record and stats are the new owner's).

Redis down: claims and renewals stay due and go out with the next batch that succeeds; releases wait in a set
bounded by `max_pending` (the oldest given up beyond it: their records expire by themselves).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .records import Owner

MOVED = "moved"
#: The reason a record is given back when a registry reload renames its live connection (`OwnershipSync.renamed`).
RENAMED = "renamed"


@dataclass(slots=True)
class Held:
    """A gateway connected here: the record that says so, and when its next writes are due."""

    record: bytes
    renew_at: int
    stats_at: int
    activity: int = -1  # the connection's activity marker when its stats were last written


@dataclass(slots=True)
class Batch:
    """One flush: claims and renewals (gateway id, record, stats wanted) and releases (gateway id, record, final
    stats bytes)."""

    claims: list[tuple[str, bytes]] = field(default_factory=list)
    renewals: list[tuple[str, bytes, bool]] = field(default_factory=list)
    releases: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.claims or self.renewals or self.releases)

    def __len__(self) -> int:
        return len(self.claims) + len(self.renewals) + len(self.releases)


class OwnershipBook:
    """The ownership records this process (one instance, or one worker of it) holds or must give back."""

    def __init__(
        self, instance: str, worker: int, *, renew_ns: int, stats_ns: int, max_pending: int = 100_000
    ) -> None:
        self.instance = instance
        self.worker = worker
        self.renew_ns = renew_ns
        self.stats_ns = stats_ns
        self.max_pending = max_pending
        self.held: dict[str, Held] = {}
        self._claims: dict[str, bytes] = {}
        self._releases: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()
        #: Releases given up on since the last look (the shell counts them).
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.held)

    @property
    def pending(self) -> int:
        return len(self._claims) + len(self._releases)

    # --- what the core tells ------------------------------------------------------------------------------------

    def connected(self, gateway_id: str, since_ns: int, now: int) -> bytes:
        """A gateway connected here: its record, to be claimed with the next flush (the shell wakes it)."""
        record = Owner(self.instance, self.worker, since_ns).encode()
        self.held[gateway_id] = Held(record, now + self.renew_ns, now + self.stats_ns)
        self._releases.pop(gateway_id, None)
        self._claims[gateway_id] = record
        return record

    def disconnected(self, gateway_id: str, reason: str, final_stats: bytes) -> bool:
        """A gateway's connection here ended; True when a release is due (the shell wakes the flusher)."""
        held = self.held.pop(gateway_id, None)
        self._claims.pop(gateway_id, None)
        if held is None or reason == MOVED:
            return False
        self._releases[gateway_id] = (held.record, final_stats)
        self._releases.move_to_end(gateway_id)
        while len(self._releases) > self.max_pending:
            self._releases.popitem(last=False)
            self.dropped += 1
        return True

    def reconcile(self, live: Iterable[tuple[str, int]], now: int) -> None:
        """Connections the book did not hear of (made before the shell was attached) are claimed now."""
        for gateway_id, since_ns in live:
            if gateway_id not in self.held:
                self.connected(gateway_id, since_ns, now)

    # --- the flusher ----------------------------------------------------------------------------------------------

    def due(self, now: int, activity_of: Callable[[str], int | None]) -> Batch:
        """Everything to write now. `activity_of(gateway_id)`: a number that changes with the connection's traffic
        (None: not connected any more, skipped)."""
        batch = Batch(claims=list(self._claims.items()))
        self._claims.clear()
        batch.releases = [(gid, record, stats) for gid, (record, stats) in self._releases.items()]
        self._releases.clear()
        claimed = {gid for gid, _ in batch.claims}
        for gateway_id, held in self.held.items():
            if gateway_id in claimed:
                held.activity = activity_of(gateway_id) or 0
                continue
            activity = activity_of(gateway_id)
            if activity is None:
                continue
            stats_due = activity != held.activity and now >= held.stats_at
            if stats_due or now >= held.renew_at:
                # A renewal carries the stats too: they expire with the record, even for a gateway sending only
                # keepalives (which change no stats).
                batch.renewals.append((gateway_id, held.record, True))
                held.renew_at = now + self.renew_ns
                held.stats_at = now + self.stats_ns
                held.activity = activity
        return batch

    def failed(self, batch: Batch, now: int) -> None:
        """The batch did not reach Redis: what is still true is due again (with the next flush that works)."""
        for gateway_id, record in batch.claims:
            held = self.held.get(gateway_id)
            if held is not None and held.record == record:
                self._claims.setdefault(gateway_id, record)
        for gateway_id, record, _ in batch.renewals:
            held = self.held.get(gateway_id)
            if held is not None and held.record == record:
                held.renew_at = now
                held.activity = -1
        for gateway_id, record, stats in batch.releases:
            if gateway_id not in self.held and gateway_id not in self._releases:
                self._releases[gateway_id] = (record, stats)
                self._releases.move_to_end(gateway_id, last=False)  # older than anything released since
        while len(self._releases) > self.max_pending:
            self._releases.popitem(last=False)
            self.dropped += 1

    def resync(self, now: int) -> None:
        """Redis was away (and may have come back empty): every record and its stats are due again now."""
        for held in self.held.values():
            held.renew_at = now
            held.activity = -1
            held.stats_at = now

    def displaced(self, gateway_id: str, record: bytes) -> bool:
        """A renewal found another owner's record: True when that renewal was for our current connection (the
        shell disconnects it as `moved`)."""
        held = self.held.get(gateway_id)
        return held is not None and held.record == record

    def take_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped


__all__ = ["MOVED", "Batch", "Held", "OwnershipBook"]
