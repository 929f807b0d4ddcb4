"""Scheduling decisions for one gateway: when, if at all, a downlink may be transmitted.

Pure: every operation is handed `now` (server time, ns) and answers with an `Emission` or a typed error. Times
inside are unwrapped concentrator nanoseconds (see `clock.py`); callers can ask in concentrator time, `tmst`,
server time or GPS time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .clock import ConcentratorClock, to_timestamp
from .dutycycle import HOUR, SubBandDutyCycle, TxSchedulePriority, as_priority
from .emissions import EmissionTimeline, TimeOffAir
from .errors import Conflict, DutyCycle, OverlappingSubBands, SubBandNotFound, TooLate
from .rtt import RTTStats

MAX_FREQUENCY = (1 << 64) - 1
_NEVER = 1 << 127  # later than any concentrator time
# schedule_anytime gives up when it would have to slide further than this past its starting point.
DEFAULT_SEARCH_HORIZON = 2 * HOUR
_MAX_SLIDE_STEPS = 10_000


class SubBandLike(Protocol):
    """What the scheduler reads from a sub-band. Read-only, so frozen dataclasses (the frequency plans') fit."""

    @property
    def min_frequency(self) -> int: ...
    @property
    def max_frequency(self) -> int: ...
    @property
    def duty_cycle(self) -> float | None: ...
    @property
    def max_eirp(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class SubBand:
    min_frequency: int
    max_frequency: int
    duty_cycle: float | None = None
    max_eirp: float | None = None


@dataclass(frozen=True, slots=True)
class Emission:
    """A booked transmission. `starts`/`ends` are concentrator ns; `off_air_until` ends the rest period."""

    starts: int
    duration: int
    off_air_until: int
    frequency: int
    priority: TxSchedulePriority
    sub_band: int  # index into GatewayScheduler.sub_bands

    @property
    def ends(self) -> int:
        return self.starts + self.duration

    @property
    def timestamp(self) -> int:
        """`tmst` (uint32 µs) to put in the txpk."""
        return to_timestamp(self.starts)


@dataclass(frozen=True, slots=True)
class SubBandStats:
    min_frequency: int
    max_frequency: int
    downlink_utilization_limit: float  # the sub-band duty cycle (1.0 when unlimited)
    downlink_utilization: float  # fraction of the last window spent transmitting


def build_sub_bands(sub_bands: Sequence[SubBandLike]) -> list[SubBand]:
    """Normalise to our `SubBand`: duty cycle 0/missing -> 1; identical ranges merged; partial overlaps refused.

    Order is kept: a frequency belongs to the first sub-band containing it.
    """
    result: list[SubBand] = []
    for sb in sub_bands:
        lo, hi = int(sb.min_frequency), int(sb.max_frequency)
        if hi < lo:
            raise OverlappingSubBands(min_frequency=lo, max_frequency=hi)
        duty_cycle = getattr(sb, "duty_cycle", None) or 1.0
        max_eirp = getattr(sb, "max_eirp", None)
        if any(s.min_frequency == lo and s.max_frequency == hi for s in result):
            continue
        for s in result:
            if lo < s.max_frequency and s.min_frequency < hi:  # sharing an end point is allowed
                raise OverlappingSubBands(min_frequency=lo, max_frequency=hi)
        result.append(SubBand(lo, hi, duty_cycle, max_eirp))
    return result


class GatewayScheduler:
    """Emissions, duty cycle, clock and RTT of one connected gateway."""

    def __init__(
        self,
        sub_bands: Sequence[SubBandLike],
        *,
        enforce_duty_cycle: bool = True,
        time_off_air: TimeOffAir | None = None,
        clock: ConcentratorClock | None = None,
        rtt: RTTStats | None = None,
        window: int = HOUR,
    ) -> None:
        if enforce_duty_cycle:
            self.sub_bands = build_sub_bands(sub_bands)
        else:
            self.sub_bands = [SubBand(0, MAX_FREQUENCY, 1.0, None)]
        self.enforce_duty_cycle = enforce_duty_cycle
        self.time_off_air = time_off_air or TimeOffAir()
        self.clock = clock if clock is not None else ConcentratorClock()
        self.rtt = rtt if rtt is not None else RTTStats()
        self.window = window
        self._duty_cycles = [SubBandDutyCycle(sb.duty_cycle, window) for sb in self.sub_bands]
        self._timeline = EmissionTimeline()
        # Concentrator time from which `_prune` has something to drop (a lower bound of the earliest expiry of
        # anything booked); before it `_prune` returns at once instead of bisecting every sub-band per decision.
        self._prune_at = _NEVER

    # --- lookups ---------------------------------------------------------------------------------------------

    def sub_band_index(self, frequency: int) -> int:
        for i, sb in enumerate(self.sub_bands):
            if sb.min_frequency <= frequency <= sb.max_frequency:
                return i
        raise SubBandNotFound(frequency)

    def minimum_lead_time(self, now: int) -> int:
        return self.rtt.minimum_lead_time(now)

    def now_concentrator_time(self, now: int) -> int:
        return self.clock.from_server_time(now)

    # --- scheduling ------------------------------------------------------------------------------------------

    def schedule_at(
        self,
        concentrator_time: int | None,
        frequency: int,
        toa: int,
        priority: int,
        now: int,
        *,
        timestamp: int | None = None,
    ) -> Emission:
        """Book a transmission starting exactly at `concentrator_time` (ns) or at `timestamp` (uint32 µs).

        Checks, in order: sub-band, too late (start - now < minimum lead time), conflict with another emission
        including time-off-air, duty cycle. Raises the matching error; books nothing on failure.
        """
        if (concentrator_time is None) == (timestamp is None):
            raise ValueError("give exactly one of concentrator_time and timestamp")
        index = self.sub_band_index(frequency)
        prio = as_priority(priority)
        clock = self.clock
        now_ct = clock.from_server_time(now)
        if concentrator_time is None:
            assert timestamp is not None
            concentrator_time = clock.from_timestamp(timestamp, reference=now_ct)
        if toa <= 0:
            raise ValueError("time-on-air must be positive")
        lead = self.rtt.minimum_lead_time(now)
        delay = concentrator_time - now_ct
        if delay < lead:
            raise TooLate(delay=delay, min=lead)
        off_air_until = concentrator_time + toa + self.time_off_air.after(toa)
        self._prune(now_ct)
        if self._timeline.conflicts(concentrator_time, off_air_until):
            raise Conflict(starts=concentrator_time, duration=toa)
        dc = self._duty_cycles[index]
        if not dc.limited:  # no arithmetic to do (duty cycle not enforced, or an unlimited sub-band)
            return self._book(concentrator_time, toa, off_air_until, frequency, prio, index)
        check = dc.check(concentrator_time, toa, prio)
        if not check.allowed:
            raise DutyCycle(
                used=check.used / self.window, usable=dc.usable_fraction(prio), priority=prio.name
            )
        return self._book(concentrator_time, toa, off_air_until, frequency, prio, index)

    def schedule_at_server_time(self, server_time: int, frequency: int, toa: int, priority: int, now: int) -> Emission:
        """Class B/C at an absolute server time (converted through the clock sync)."""
        return self.schedule_at(self.clock.from_server_time(server_time), frequency, toa, priority, now)

    def schedule_at_gps_time(self, gps_time: int, frequency: int, toa: int, priority: int, now: int) -> Emission:
        """Class B (ping slots) at a GPS time; needs a gateway that reports GPS time (`NoAbsoluteGatewayTime`)."""
        return self.schedule_at(self.clock.from_gps_time(gps_time), frequency, toa, priority, now)

    def schedule_anytime(
        self,
        frequency: int,
        toa: int,
        priority: int,
        now: int,
        *,
        not_before: int | None = None,
        horizon: int = DEFAULT_SEARCH_HORIZON,
    ) -> Emission:
        """Book the earliest legal start >= max(not_before, now + minimum lead time) (class C "as soon as possible").

        Slides past other emissions (with their time-off-air) and past duty-cycle limits; each duty-cycle refusal
        jumps past the whole congested stretch (`SubBandDutyCycle.next_candidate`), never over a legal start.
        Raises `DutyCycle` when the emission can never fit (longer than the usable share) or no start within
        `horizon` works.
        """
        index = self.sub_band_index(frequency)
        prio = as_priority(priority)
        if toa <= 0:
            raise ValueError("time-on-air must be positive")
        now_ct = self.clock.from_server_time(now)
        earliest = now_ct + self.rtt.minimum_lead_time(now)
        if not_before is not None and not_before > earliest:
            earliest = not_before
        self._prune(now_ct)
        off_air = self.time_off_air.after(toa)
        length = toa + off_air
        dc = self._duty_cycles[index]
        if dc.limited and toa > dc.limit(prio):
            raise DutyCycle(used=toa / self.window, usable=dc.usable_fraction(prio), priority=prio.name)
        t = earliest
        deadline = earliest + horizon
        for _ in range(_MAX_SLIDE_STEPS):
            t = self._timeline.earliest_free(t, length)
            if t > deadline:
                break
            later = dc.next_candidate(t, toa, prio)
            if later is None:
                return self._book(t, toa, t + length, frequency, prio, index)
            t = later
        used = dc.max_window_usage(t, toa)
        raise DutyCycle(used=used / self.window, usable=dc.usable_fraction(prio), priority=prio.name)

    def _book(
        self, starts: int, toa: int, off_air_until: int, frequency: int, prio: TxSchedulePriority, index: int
    ) -> Emission:
        self._timeline.add(starts, off_air_until)
        dc = self._duty_cycles[index]
        dc.add(starts, toa)
        # Booked out of order, this emission may expire before everything else: keep `_prune_at` a lower bound.
        expiry = min(off_air_until, starts + toa + dc.window)
        if expiry < self._prune_at:
            self._prune_at = expiry
        return Emission(starts, toa, off_air_until, frequency, prio, index)

    def shift(self, delta: int) -> None:
        """Move every booking by `delta` concentrator ns, when the clock they were booked against is replaced by
        a real one (bookings made before any uplink, on a stand-in anchor)."""
        self._timeline.shift(delta)
        for dc in self._duty_cycles:
            dc.shift(delta)
        if self._prune_at != _NEVER:
            self._prune_at += delta

    def release(self, emission: Emission) -> bool:
        """Undo a booking the gateway refused (TX_ACK error): its slot and duty-cycle airtime become free again.

        Without this a refused RX1 would block its own RX2 retry when RX1 is long (SF12 lasts over a second) and
        count airtime that was never transmitted against the sub-band.
        """
        freed = self._timeline.remove(emission.starts, emission.off_air_until)
        self._duty_cycles[emission.sub_band].remove(emission.starts, emission.duration)
        return freed

    # --- housekeeping and stats ------------------------------------------------------------------------------

    def _prune(self, now_ct: int) -> None:
        if now_ct < self._prune_at:  # nothing has expired yet (`_prune_at` is a lower bound)
            return
        self._timeline.prune(now_ct)
        for dc in self._duty_cycles:
            dc.prune(now_ct)
        next_at = self.next_deadline()
        self._prune_at = _NEVER if next_at is None else next_at

    def prune(self, now: int) -> None:
        """Drop state no future decision can need (optional: every scheduling call prunes too)."""
        if self.clock.is_synced:
            self._prune(self.clock.from_server_time(now))

    def emissions(self) -> list[tuple[int, int]]:
        """Occupied (start, off-air end) intervals still remembered, in concentrator ns."""
        return self._timeline.intervals()

    def sub_band_emissions(self, index: int) -> list[tuple[int, int]]:
        return self._duty_cycles[index].emissions()

    def sub_band_stats(self, now: int) -> list[SubBandStats]:
        now_ct = self.clock.from_server_time(now) if self.clock.is_synced else None
        stats = []
        for sb, dc in zip(self.sub_bands, self._duty_cycles, strict=True):
            used = dc.utilization(now_ct) if now_ct is not None else 0.0
            stats.append(SubBandStats(sb.min_frequency, sb.max_frequency, float(dc.duty_cycle), used))
        return stats

    def next_deadline(self) -> int | None:
        """Concentrator time at which the oldest remembered emission can be pruned (None: nothing to prune)."""
        expiries = [self._timeline.next_expiry()]
        expiries += [end + dc.window for dc in self._duty_cycles if (end := dc.first_end()) is not None]
        present = [e for e in expiries if e is not None]
        return min(present) if present else None


__all__ = ["GatewayScheduler", "Emission", "SubBand", "SubBandStats", "SubBandLike", "build_sub_bands"]
