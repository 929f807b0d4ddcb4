"""A gateway's transmissions on its concentrator timeline: one at a time, each followed by time-off-air.

Every emission occupies [start, end + off_air): the radio transmits during [start, end) and must then rest (plan
time-off-air, at least 30 ms). Occupancies never intersect, so the timeline stays sorted by start *and* by
occupancy end, and both the conflict check and the "earliest free slot" search are bisections on one list.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

MIN_TIME_OFF_AIR = 30_000_000  # ns


@dataclass(frozen=True, slots=True)
class TimeOffAir:
    """Plan time-off-air: max(duration, fraction * time-on-air), never below 30 ms."""

    fraction: float = 0.0
    duration: int = MIN_TIME_OFF_AIR

    def after(self, time_on_air: int) -> int:
        by_fraction = int(time_on_air * self.fraction) if self.fraction else 0
        return max(MIN_TIME_OFF_AIR, self.duration, by_fraction)


class EmissionTimeline:
    """Occupied intervals of one gateway, in concentrator nanoseconds."""

    __slots__ = ("_starts", "_ends")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []  # occupancy ends: transmission end + time-off-air

    def __len__(self) -> int:
        return len(self._starts)

    def intervals(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def conflicts(self, start: int, occupancy_end: int) -> bool:
        i = bisect_right(self._starts, start)
        if i > 0 and self._ends[i - 1] > start:
            return True
        return i < len(self._starts) and self._starts[i] < occupancy_end

    def add(self, start: int, occupancy_end: int) -> None:
        """Insert an occupancy; the caller has checked `conflicts` (re-checked here: overlap is never allowed)."""
        if occupancy_end <= start:
            raise ValueError("empty occupancy")
        i = bisect_right(self._starts, start)
        if (i > 0 and self._ends[i - 1] > start) or (i < len(self._starts) and self._starts[i] < occupancy_end):
            raise ValueError("occupancy overlaps an existing emission")
        self._starts.insert(i, start)
        self._ends.insert(i, occupancy_end)

    def remove(self, start: int, occupancy_end: int) -> bool:
        """Forget one occupancy (a transmission the gateway refused); False when it is not remembered."""
        i = bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start and self._ends[i] == occupancy_end:
            del self._starts[i]
            del self._ends[i]
            return True
        return False

    def shift(self, delta: int) -> None:
        """Move every occupancy by `delta` ns (the clock they were booked on was re-anchored)."""
        self._starts = [t + delta for t in self._starts]
        self._ends = [t + delta for t in self._ends]

    def earliest_free(self, not_before: int, length: int) -> int:
        """Earliest start >= not_before where [start, start + length) touches no occupancy."""
        starts, ends = self._starts, self._ends
        t = not_before
        i = bisect_right(starts, t)
        if i > 0 and ends[i - 1] > t:
            t = ends[i - 1]
        n = len(starts)
        while i < n and starts[i] < t + length:
            t = max(t, ends[i])
            i += 1
        return t

    def prune(self, before: int) -> None:
        """Forget occupancies that ended at or before `before` (they can no longer conflict)."""
        k = bisect_right(self._ends, before)
        if k:
            del self._starts[:k]
            del self._ends[:k]

    def next_expiry(self) -> int | None:
        return self._ends[0] if self._ends else None


__all__ = ["TimeOffAir", "EmissionTimeline", "MIN_TIME_OFF_AIR"]
