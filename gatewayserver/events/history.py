"""The bounded in-memory event history behind `tail`, `after` and `Events.FindRelated`.

One bound on the total alone lets a single gateway decide what everybody else remembers: a gateway sending
garbage produces drop events far faster than healthy gateways produce uplinks, and a plain ring buffer then holds
nothing but its drops. So the history has three bounds:

- `size`: events kept in total (the oldest go first);
- `per_gateway`: events kept per gateway (a gateway over it loses its own oldest events, nobody else's);
- `max_age_ns`: events older than this (against the newest event's time) go.

An event counts against its first gateway (events without one share the key ""). The daemon's events name one
gateway each; an event naming several is kept once and found by any of its gateways.

How: one deque holds every entry in publish order (the order readers need), and each gateway has a deque of the
sequence numbers of its own live entries. Dropping a gateway's oldest event only pops its own deque, which leaves
a dead entry in the publish-order deque; readers skip dead entries (an entry is live when its sequence number is
not older than its gateway's oldest), the size bound counts live entries only, and the publish-order deque is
compacted once it holds twice the size. Every operation is amortised O(1) per published event.

Sans-I/O: no clock is read; age is judged against the times of the events themselves.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator

from .event import Event

#: The publish-order deque is compacted when it holds more than `_COMPACT_FACTOR * size + _COMPACT_MIN` entries,
#: so dead entries never take more memory than about the history itself, and compaction (O(entries)) runs at
#: most once per `size` appends.
_COMPACT_FACTOR = 2
_COMPACT_MIN = 64


class EventHistory:
    """Recent events, bounded in total, per gateway and by age. Not thread-safe: used from the loop's thread."""

    __slots__ = (
        "_by_key",
        "_compact_at",
        "_entries",
        "_live",
        "_per_gateway_maxlen",
        "_seq",
        "max_age_ns",
        "per_gateway",
        "size",
    )

    def __init__(self, size: int, max_age_ns: int, per_gateway: int = 0) -> None:
        """`size` 0 keeps nothing; `per_gateway` 0 means no per-gateway bound (only the total applies)."""
        self.size = max(0, size)
        self.per_gateway = max(0, per_gateway)
        self.max_age_ns = max_age_ns
        self._entries: deque[tuple[int, str, Event]] = deque()
        self._by_key: dict[str, deque[int]] = {}
        self._live = 0
        self._seq = itertools.count(1)
        self._per_gateway_maxlen = self.per_gateway or None
        self._compact_at = _COMPACT_FACTOR * self.size + _COMPACT_MIN

    def __len__(self) -> int:
        """Live events (what readers can see)."""
        return self._live

    def gateway_count(self, gateway_id: str) -> int:
        """Live events kept for `gateway_id` (the events whose first gateway it is)."""
        seqs = self._by_key.get(gateway_id)
        return len(seqs) if seqs is not None else 0

    def append(self, event: Event) -> None:
        """Remember `event`, then drop what the bounds no longer allow.

        On the uplink hot path (every published event comes here), hence written out flat: in the steady state
        (history full) an append is two deque appends, one eviction and a handful of comparisons.
        """
        size = self.size
        if not size:
            return
        seq = next(self._seq)
        ids = event.gateway_ids
        key = ids[0][0] if ids else ""
        by_key = self._by_key
        seqs = by_key.get(key)
        if seqs is None:
            seqs = by_key[key] = deque(maxlen=self._per_gateway_maxlen)
            grew = True
        else:
            # A full deque drops this gateway's oldest sequence number itself; that entry turns dead.
            grew = len(seqs) != seqs.maxlen
        seqs.append(seq)
        entries = self._entries
        entries.append((seq, key, event))
        if grew:
            if self._live < size:
                self._live += 1
            else:
                # Full: the oldest live entry goes; inlined for the usual case where the front entry is live.
                old_seq, old_key, _ = entries[0]
                old_seqs = by_key[old_key] if old_key in by_key else None
                if old_seqs and old_seqs[0] == old_seq:
                    entries.popleft()
                    old_seqs.popleft()
                    if not old_seqs:
                        del by_key[old_key]
                else:
                    self._live += 1
                    self._evict_oldest()
        oldest_allowed = event.time_ns - self.max_age_ns
        if entries[0][2].time_ns < oldest_allowed:
            self._expire(oldest_allowed)
        if len(entries) > self._compact_at:
            self._compact()

    def _evict_oldest(self) -> None:
        """Drop the oldest live entry (and the dead ones before it)."""
        entries, by_key = self._entries, self._by_key
        while entries:
            seq, key, _ = entries.popleft()
            seqs = by_key.get(key)
            if seqs and seqs[0] == seq:  # live: it is its gateway's oldest
                seqs.popleft()
                self._live -= 1
                if not seqs:
                    del by_key[key]
                return

    def _expire(self, oldest_allowed: int) -> None:
        entries, by_key = self._entries, self._by_key
        while entries and entries[0][2].time_ns < oldest_allowed:
            seq, key, _ = entries.popleft()
            seqs = by_key.get(key)
            if seqs and seqs[0] == seq:
                seqs.popleft()
                self._live -= 1
                if not seqs:
                    del by_key[key]

    def _compact(self) -> None:
        by_key = self._by_key
        kept: deque[tuple[int, str, Event]] = deque()
        for entry in self._entries:
            seqs = by_key.get(entry[1])
            if seqs and seqs[0] <= entry[0]:
                kept.append(entry)
        self._entries = kept

    def newest_first(self) -> Iterator[Event]:
        """Live events, newest first (readers usually want the last few)."""
        by_key = self._by_key
        for seq, key, event in reversed(self._entries):
            seqs = by_key.get(key)
            if seqs and seqs[0] <= seq:
                yield event

    def __iter__(self) -> Iterator[Event]:
        """Live events, oldest first."""
        by_key = self._by_key
        for seq, key, event in self._entries:
            seqs = by_key.get(key)
            if seqs and seqs[0] <= seq:
                yield event

    def stored_entries(self) -> int:
        """Entries held including dead ones (for tests of the memory bound)."""
        return len(self._entries)
