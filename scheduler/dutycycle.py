"""Duty-cycle accounting per sub-band over a sliding window (1 h).

The law is "at most duty_cycle of any hour"; the scheduler keeps a share of that for higher priorities (a NORMAL
downlink may use 70 % of it, so a later HIGHEST join-accept still finds room). An emission is admitted only if
*every* 1 h window that contains it stays within the share. Checking just the window ending at the emission's end
and the one starting at its start (what the reference does) is not enough when emissions are booked out of order:
a window straddling an earlier and a later booking can still overflow. We therefore take the maximum over all
windows, which includes those two.

Precondition: emissions recorded in one `SubBandDutyCycle` never overlap (a gateway transmits one packet at a
time; `EmissionTimeline` guarantees it). It is what makes the windows that only partly contain the new emission
no worse than the ones containing it fully, and lets cumulative sums work on a sorted list.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from enum import IntEnum
from fractions import Fraction
from itertools import accumulate

HOUR = 3600 * 1_000_000_000


class TxSchedulePriority(IntEnum):
    """`ttn.lorawan.v3.TxSchedulePriority` values."""

    LOWEST = 0
    LOW = 1
    BELOW_NORMAL = 2
    NORMAL = 3
    ABOVE_NORMAL = 4
    HIGH = 5
    HIGHEST = 6


PRIORITY_SHARE: dict[TxSchedulePriority, Fraction] = {
    TxSchedulePriority.LOWEST: Fraction(40, 100),
    TxSchedulePriority.LOW: Fraction(50, 100),
    TxSchedulePriority.BELOW_NORMAL: Fraction(60, 100),
    TxSchedulePriority.NORMAL: Fraction(70, 100),
    TxSchedulePriority.ABOVE_NORMAL: Fraction(80, 100),
    TxSchedulePriority.HIGH: Fraction(90, 100),
    TxSchedulePriority.HIGHEST: Fraction(1),
}


# Exact int keys only (bool is an int subclass but hashes like 0/1, as the enum lookup accepts it too).
_PRIORITY_BY_VALUE: dict[int, TxSchedulePriority] = {int(p): p for p in TxSchedulePriority}


def as_priority(priority: int) -> TxSchedulePriority:
    # A dict look-up first: the enum constructor costs about a microsecond on every scheduling decision.
    found = _PRIORITY_BY_VALUE.get(priority) if priority.__class__ is int else None
    if found is not None:
        return found
    try:
        return TxSchedulePriority(priority)
    except (ValueError, TypeError):
        raise ValueError(f"invalid priority {priority!r}") from None


def exact_fraction(value: float | int | Fraction) -> Fraction:
    """0.01 as 1/100, not as the binary float nearest to it, so limits land on whole nanoseconds."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(repr(float(value)))


@dataclass(frozen=True, slots=True)
class DutyCycleCheck:
    """Outcome of a check: the worst window's usage including the candidate, and the limit (both ns)."""

    used: int
    limit: int

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit


class SubBandDutyCycle:
    """Emissions of one sub-band and the duty-cycle arithmetic on them (all times in concentrator ns)."""

    __slots__ = ("duty_cycle", "window", "limited", "_limits", "_starts", "_ends", "_durations")

    def __init__(self, duty_cycle: float | Fraction | None, window: int = HOUR) -> None:
        dc = exact_fraction(duty_cycle) if duty_cycle else Fraction(1)  # 0 / missing means unlimited
        self.duty_cycle = dc
        self.window = window
        self.limited = dc < 1
        # floor(window * dc * share) for every priority, indexed by the priority's integer value.
        self._limits = [int(window * dc * PRIORITY_SHARE[p]) for p in TxSchedulePriority]
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._durations: list[int] = []

    def __len__(self) -> int:
        return len(self._starts)

    def emissions(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def first_end(self) -> int | None:
        """End of the oldest remembered emission (it is pruned first, a window after it)."""
        return self._ends[0] if self._ends else None

    def limit(self, priority: int) -> int:
        """Usable airtime (ns) per window for `priority`."""
        return self._limits[priority]

    def usable_fraction(self, priority: int) -> float:
        return float(self.duty_cycle * PRIORITY_SHARE[as_priority(priority)])

    def usage(self, begin: int, end: int) -> int:
        """Airtime (ns) spent in [begin, end)."""
        if end <= begin:
            return 0
        lo = bisect_right(self._ends, begin)
        hi = bisect_left(self._starts, end)
        if lo >= hi:
            return 0
        total = sum(self._durations[lo:hi])
        total -= max(0, begin - self._starts[lo])
        total -= max(0, self._ends[hi - 1] - end)
        return total

    def _window_profile(self, start: int, duration: int) -> tuple[list[int], list[int]] | None:
        """Old airtime U(a) of the window [a, a + w) at every breakpoint a of U among the left edges of the
        windows that contain [start, start + duration), i.e. a in [start + duration - w, start]. U is linear
        between consecutive breakpoints. None when no old emission is near."""
        w = self.window
        lo_edge, hi_edge = start + duration - w, start
        lo = bisect_right(self._ends, lo_edge)
        hi = bisect_left(self._starts, hi_edge + w)
        if lo >= hi:
            return None
        ls = self._starts[lo:hi]
        le = self._ends[lo:hi]
        cum = list(accumulate(self._durations[lo:hi], initial=0))

        def cumulative(x: int) -> int:  # airtime of the local emissions before x
            k = bisect_right(ls, x) - 1
            if k < 0:
                return 0
            return cum[k] + min(x, le[k]) - ls[k]

        points = {lo_edge, hi_edge}
        for x in ls:
            points.add(x)
            points.add(x - w)
        for x in le:
            points.add(x)
            points.add(x - w)
        edges = sorted(a for a in points if lo_edge <= a <= hi_edge)
        return edges, [cumulative(a + w) - cumulative(a) for a in edges]

    def max_window_usage(self, start: int, duration: int) -> int:
        """Largest airtime over the windows containing [start, start+duration), counting that emission too."""
        profile = self._window_profile(start, duration)
        if profile is None:
            return duration
        return duration + max(profile[1])

    def check(self, start: int, duration: int, priority: int) -> DutyCycleCheck:
        limit = self._limits[priority]
        if not self.limited:
            return DutyCycleCheck(0, limit)
        w = self.window
        # Fast path: everything in the union of the relevant windows fits.
        upper = self.usage(start + duration - w, start + w) + duration
        if upper <= limit:
            return DutyCycleCheck(upper, limit)
        # Fast refusal: the window ending at the emission's end or the one starting at its start overflows.
        edge = max(self.usage(start + duration - w, start), self.usage(start + duration, start + w)) + duration
        if edge > limit:
            return DutyCycleCheck(edge, limit)
        return DutyCycleCheck(self.max_window_usage(start, duration), limit)

    def next_candidate(self, start: int, duration: int, priority: int) -> int | None:
        """None if the emission fits at `start`; otherwise a later start before which it cannot fit.

        The windows containing the emission have left edges a in [start + duration - w, start]; it fits iff the
        old airtime U(a) <= limit - duration for all of them. If a* is where the last offending stretch of edges
        ends, every start whose edge range still reaches back before a* fails too, so the next candidate is
        a* + w - duration. This skips whole congested stretches instead of creeping through them.
        """
        if not self.limited:
            return None
        budget = self._limits[priority] - duration
        w = self.window
        if self.usage(start + duration - w, start + w) <= budget:
            return None
        profile = self._window_profile(start, duration)
        if profile is None:
            return None if budget >= 0 else start + 1
        edges, usage = profile
        k = len(edges) - 1
        while k >= 0 and usage[k] <= budget:
            k -= 1
        if k < 0:
            return None
        if k == len(edges) - 1:
            clear_from = edges[k] + 1  # congested up to the last edge: the next range must start past it
        else:
            p, q = edges[k], edges[k + 1]
            drop = usage[k] - usage[k + 1]  # > 0: U falls from above the budget to within it on [p, q]
            clear_from = p - (-(usage[k] - budget) * (q - p) // drop)
        return clear_from + w - duration

    def add(self, start: int, duration: int) -> None:
        end = start + duration
        i = bisect_right(self._starts, start)
        if (i > 0 and self._ends[i - 1] > start) or (i < len(self._starts) and self._starts[i] < end):
            raise ValueError("emissions in one sub-band must not overlap")
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        self._durations.insert(i, duration)

    def remove(self, start: int, duration: int) -> bool:
        """Give back the airtime of an emission that did not happen; False when it is not remembered."""
        i = bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start and self._durations[i] == duration:
            del self._starts[i]
            del self._ends[i]
            del self._durations[i]
            return True
        return False

    def shift(self, delta: int) -> None:
        """Move every emission by `delta` ns (the clock they were booked on was re-anchored)."""
        self._starts = [t + delta for t in self._starts]
        self._ends = [t + delta for t in self._ends]

    def utilization(self, now: int) -> float:
        """Fraction of the window ending at `now` spent transmitting."""
        return self.usage(now - self.window, now) / self.window

    def prune(self, now: int) -> None:
        """Forget emissions that ended a whole window before `now`; no future check can see them."""
        k = bisect_right(self._ends, now - self.window)
        if k:
            del self._starts[:k]
            del self._ends[:k]
            del self._durations[:k]


__all__ = [
    "HOUR",
    "TxSchedulePriority",
    "PRIORITY_SHARE",
    "SubBandDutyCycle",
    "DutyCycleCheck",
    "as_priority",
    "exact_fraction",
]
