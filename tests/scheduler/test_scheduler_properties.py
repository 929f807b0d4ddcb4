"""Property tests: no overlapping emissions, no duty-cycle overflow in any window, clock and RTT rules."""

import copy
import itertools
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import (
    HOUR,
    ConcentratorClock,
    Conflict,
    DutyCycle,
    GatewayScheduler,
    RTTStats,
    SubBand,
    TimeOffAir,
    TooLate,
    TxSchedulePriority,
)
from scheduler.clock import TIMESTAMP_MODULUS, rx_window_timestamps

MS = 1_000_000
S = 1_000_000_000
SERVER_EPOCH = 1_700_000_000 * S

# EU-like sub-bands with three different duty cycles so limits are hit quickly.
SUB_BANDS = [
    SubBand(863_000_000, 865_000_000, 0.001, 16.15),
    SubBand(865_000_000, 868_000_000, 0.01, 16.15),
    SubBand(869_400_000, 869_650_000, 0.1, 29.15),
]
FREQUENCIES = [864_000_000, 866_500_000, 869_525_000]
SHARE = {0: 40, 1: 50, 2: 60, 3: 70, 4: 80, 5: 90, 6: 100}


def new_scheduler(time_off_air=None):
    sched = GatewayScheduler(SUB_BANDS, time_off_air=time_off_air or TimeOffAir())
    sched.clock.sync(0, SERVER_EPOCH)
    return sched


def brute_force_limit(duty_cycle, priority):
    return int(Fraction(HOUR) * Fraction(str(duty_cycle)) * Fraction(SHARE[priority], 100))


def overlap(a0, a1, b0, b1):
    return max(0, min(a1, b1) - max(a0, b0))


operation = st.tuples(
    st.sampled_from(["at", "anytime"]),
    st.integers(0, 10 * 60 * S),  # how far `now` advances before the operation
    st.integers(0, 2 * 3600 * S),  # start offset from now (schedule_at) / not_before offset (anytime)
    st.integers(0, 2),  # frequency
    st.integers(20 * MS, 2500 * MS),  # time-on-air
    st.sampled_from(list(TxSchedulePriority)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=60), off_air_ms=st.integers(0, 200))
def test_no_overlap_and_no_duty_cycle_overflow(ops, off_air_ms):
    sched = new_scheduler(TimeOffAir(fraction=0.0, duration=off_air_ms * MS))
    now = SERVER_EPOCH
    booked = []  # every emission ever booked (the scheduler itself prunes)
    for kind, advance, offset, f, toa, prio in ops:
        now += advance
        now_ct = now - SERVER_EPOCH
        try:
            if kind == "at":
                em = sched.schedule_at(now_ct + offset, FREQUENCIES[f], toa, prio, now)
                assert em.starts == now_ct + offset
            else:
                em = sched.schedule_anytime(FREQUENCIES[f], toa, prio, now, not_before=now_ct + offset)
                assert em.starts >= now_ct + offset
            assert em.starts - now_ct >= sched.minimum_lead_time(now)
            booked.append(em)
        except (TooLate, Conflict, DutyCycle):
            pass

    # 1. No two occupancies (transmission + time-off-air) intersect.
    occupied = sorted((em.starts, em.off_air_until) for em in booked)
    for (_, e0), (s1, _) in itertools.pairwise(occupied):
        assert e0 <= s1
    for em in booked:
        assert em.off_air_until - em.ends >= max(30 * MS, off_air_ms * MS)

    # 2. No 1 h window of a sub-band holds more airtime than the share of the highest priority in it.
    for index, sb in enumerate(SUB_BANDS):
        ems = [em for em in booked if em.sub_band == index]
        boundaries = {b for em in ems for b in (em.starts, em.ends)}
        window_ends = boundaries | {b + HOUR for b in boundaries}
        for t in window_ends:
            inside = [em for em in ems if overlap(t - HOUR, t, em.starts, em.ends) > 0]
            if not inside:
                continue
            used = sum(overlap(t - HOUR, t, em.starts, em.ends) for em in inside)
            top = max(em.priority for em in inside)
            assert used <= brute_force_limit(sb.duty_cycle, top), (index, t, used)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(st.tuples(st.integers(0, 3600 * S), st.integers(100 * MS, 2500 * MS)), min_size=1, max_size=40),
    prio=st.sampled_from(list(TxSchedulePriority)),
)
def test_anytime_returns_earliest_legal_start(ops, prio):
    """One nanosecond before the chosen start is never legal (or below not_before)."""
    sched = new_scheduler()
    now = SERVER_EPOCH
    for not_before, toa in ops:
        probe = copy.deepcopy(sched)
        try:
            em = sched.schedule_anytime(FREQUENCIES[0], toa, prio, now, not_before=not_before)
        except DutyCycle:
            continue
        earliest = max(not_before, sched.minimum_lead_time(now))
        if em.starts > earliest:
            try:
                probe.schedule_at(em.starts - 1, FREQUENCIES[0], toa, prio, now)
            except (Conflict, DutyCycle):
                pass
            else:
                raise AssertionError("an earlier start was legal")


# --- clock ------------------------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(
    start_us=st.integers(0, TIMESTAMP_MODULUS - 1),
    gaps=st.lists(
        st.tuples(st.integers(0, 12 * 3600 * 1_000_000), st.integers(-5_000, 5_000)), min_size=1, max_size=30
    ),
)
def test_clock_survives_rollovers_and_long_silences(start_us, gaps):
    """The counter runs with the server clock (+- a few ms of network jitter); gaps up to 12 h."""
    clock = ConcentratorClock()
    true_us = start_us
    server = SERVER_EPOCH
    first = clock.sync(true_us % TIMESTAMP_MODULUS, server)
    assert first == start_us * 1000
    for gap_us, jitter_us in gaps:
        true_us += gap_us
        server += gap_us * 1000 + jitter_us * 1000  # arrival time seen by the server
        ct = clock.sync(true_us % TIMESTAMP_MODULUS, server)
        assert ct == true_us * 1000
        # Round trips through every representation.
        assert clock.from_server_time(clock.to_server_time(ct + 123)) == ct + 123
        assert clock.to_timestamp(ct) == true_us % TIMESTAMP_MODULUS
        assert clock.from_timestamp(clock.to_timestamp(ct + 5 * S)) == ct + 5 * S
        assert clock.from_server_time(server + 2 * S) == ct + 2 * S


def test_clock_three_hour_silence_across_several_wraps():
    clock = ConcentratorClock()
    ts0 = TIMESTAMP_MODULUS - 1_000_000  # one second before a wrap
    base = clock.sync(ts0, SERVER_EPOCH)
    silence_us = 3 * 3600 * 1_000_000  # ~2.5 wraps
    ct = clock.sync((ts0 + silence_us) % TIMESTAMP_MODULUS, SERVER_EPOCH + silence_us * 1000)
    assert ct - base == silence_us * 1000


@settings(max_examples=100, deadline=None)
@given(gps0=st.integers(0, 2**50), ts=st.integers(0, TIMESTAMP_MODULUS - 1), delta=st.integers(-10**12, 10**12))
def test_gps_round_trip(gps0, ts, delta):
    clock = ConcentratorClock()
    ct = clock.sync(ts, SERVER_EPOCH, gps_time=gps0)
    assert clock.from_gps_time(gps0 + delta) == ct + delta
    assert clock.to_gps_time(clock.from_gps_time(gps0 + delta)) == gps0 + delta


@given(ts=st.integers(0, TIMESTAMP_MODULUS - 1), delay=st.integers(0, 15))
def test_rx_windows_wrap(ts, delay):
    rx1, rx2 = rx_window_timestamps(ts, delay)
    assert rx1 == (ts + max(delay, 1) * 1_000_000) % TIMESTAMP_MODULUS
    assert (rx2 - rx1) % TIMESTAMP_MODULUS == 1_000_000


# --- RTT --------------------------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(
    samples=st.lists(st.tuples(st.integers(0, 5 * 60 * S), st.integers(0, 2 * S)), max_size=40),
    probe_after=st.integers(0, 40 * 60 * S),
)
def test_rtt_lead_time_rule(samples, probe_after):
    rtt = RTTStats()
    at = SERVER_EPOCH
    history = []
    for advance, value in samples:
        at += advance
        rtt.record(value, at)
        history.append((at, value))
    now = at + probe_after
    recent = [v for (t, v) in history[-20:] if now - t <= 30 * 60 * S]
    expected = 130 * MS
    if len(recent) >= 5:
        ordered = sorted(recent)
        p90 = ordered[-(-9 * len(ordered) // 10) - 1]
        expected = max(130 * MS, p90 // 2 + 30 * MS)
    assert rtt.minimum_lead_time(now) == expected
    stats = rtt.stats(now)
    if recent:
        assert stats.count == len(recent)
        assert stats.min == min(recent) and stats.max == max(recent)
        assert min(recent) <= stats.median <= max(recent)
    else:
        assert stats is None
