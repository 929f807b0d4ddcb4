"""Example tests: the decisions an operator would recognise (too late, conflicts, duty cycle, sliding, errors)."""

import pytest

from scheduler import (
    HOUR,
    Conflict,
    DutyCycle,
    DwellTime,
    GatewayScheduler,
    NoAbsoluteGatewayTime,
    NoClockSync,
    OverlappingSubBands,
    SubBand,
    SubBandNotFound,
    TimeOffAir,
    TooLate,
    TooLong,
    TxSchedulePriority,
    check_dwell_time,
    check_payload_size,
    lora_time_on_air,
)
from scheduler.clock import TIMESTAMP_MODULUS, rx_window_times, rx_window_timestamps

MS = 1_000_000
S = 1_000_000_000
EPOCH = 1_700_000_000 * S
EU = [
    SubBand(863_000_000, 865_000_000, 0.001, 16.15),
    SubBand(865_000_000, 868_000_000, 0.01, 16.15),
    SubBand(868_000_000, 868_600_000, 0.01, 16.15),
    SubBand(868_700_000, 869_200_000, 0.001, 16.15),
    SubBand(869_400_000, 869_650_000, 0.1, 29.15),
    SubBand(869_700_000, 870_000_000, 0.01, 16.15),
]
NORMAL = TxSchedulePriority.NORMAL


def synced(sub_bands=EU, **kwargs):
    sched = GatewayScheduler(sub_bands, **kwargs)
    sched.clock.sync(0, EPOCH)
    return sched


def test_class_a_rx1_at_uplink_timestamp_plus_delay():
    sched = synced()
    uplink_ts = TIMESTAMP_MODULUS - 300_000  # RX1 lands after the counter wrap
    sched.clock.sync(uplink_ts, EPOCH + 10 * S)
    rx1_ts, rx2_ts = rx_window_timestamps(uplink_ts, 1)
    assert rx1_ts == 700_000 and rx2_ts == 1_700_000
    em = sched.schedule_at(None, 868_100_000, 50 * MS, NORMAL, EPOCH + 10 * S + 20 * MS, timestamp=rx1_ts)
    assert em.timestamp == rx1_ts
    uplink_ct = sched.clock.from_timestamp(uplink_ts)
    assert em.starts == rx_window_times(uplink_ct, 1)[0]


def test_too_late_carries_delay_and_min():
    sched = synced()
    with pytest.raises(TooLate) as info:
        sched.schedule_at(100 * MS, 868_100_000, 50 * MS, NORMAL, EPOCH)
    err = info.value
    assert (err.namespace, err.name, err.grpc_code) == ("pkg/gatewayserver/scheduling", "too_late", 9)
    assert err.attributes == {"delay": 100 * MS, "min": 130 * MS}
    sched.schedule_at(130 * MS, 868_100_000, 50 * MS, NORMAL, EPOCH)  # exactly the lead time is fine


def test_lead_time_grows_with_rtt():
    sched = synced()
    for i in range(5):
        sched.rtt.record(400 * MS, EPOCH + i * S)
    now = EPOCH + 10 * S
    assert sched.minimum_lead_time(now) == 230 * MS
    with pytest.raises(TooLate):
        sched.schedule_at(10 * S + 200 * MS, 868_100_000, 50 * MS, NORMAL, now)


def test_conflict_includes_time_off_air_before_and_after():
    sched = synced(time_off_air=TimeOffAir(duration=100 * MS))
    sched.schedule_at(1 * S, 868_100_000, 50 * MS, NORMAL, EPOCH)  # occupies [1 s, 1.15 s)
    with pytest.raises(Conflict) as info:
        sched.schedule_at(1 * S + 149 * MS, 869_525_000, 10 * MS, NORMAL, EPOCH)
    assert (info.value.name, info.value.grpc_code) == ("conflict", 6)
    with pytest.raises(Conflict):  # would end + rest past 1 s
        sched.schedule_at(1 * S - 150 * MS, 869_525_000, 60 * MS, NORMAL, EPOCH)
    sched.schedule_at(1 * S + 150 * MS, 869_525_000, 10 * MS, NORMAL, EPOCH)
    sched.schedule_at(1 * S - 160 * MS, 869_525_000, 60 * MS, NORMAL, EPOCH)


def test_minimum_time_off_air_is_30ms():
    sched = synced(time_off_air=TimeOffAir(duration=0))
    sched.schedule_at(1 * S, 868_100_000, 50 * MS, NORMAL, EPOCH)
    with pytest.raises(Conflict):
        sched.schedule_at(1 * S + 79 * MS, 868_100_000, 50 * MS, NORMAL, EPOCH)
    sched.schedule_at(1 * S + 80 * MS, 868_100_000, 50 * MS, NORMAL, EPOCH)


def test_duty_cycle_limit_by_priority():
    sched = synced()
    # K sub-band 0.1 %: 3.6 s per hour; NORMAL may use 70 % = 2.52 s, HIGHEST all 3.6 s.
    sched.schedule_at(1 * S, 864_000_000, 2_000 * MS, NORMAL, EPOCH)
    with pytest.raises(DutyCycle) as info:
        sched.schedule_at(10 * S, 864_000_000, 600 * MS, NORMAL, EPOCH)
    err = info.value
    assert (err.name, err.grpc_code) == ("duty_cycle", 8)
    assert err.attributes["priority"] == "NORMAL"
    assert err.attributes["usable"] == pytest.approx(0.0007)
    assert err.attributes["used"] == pytest.approx(2.6 / 3600)
    sched.schedule_at(10 * S, 864_000_000, 520 * MS, NORMAL, EPOCH)  # exactly 2.52 s
    sched.schedule_at(20 * S, 864_000_000, 1_080 * MS, TxSchedulePriority.HIGHEST, EPOCH)  # exactly 3.6 s
    # Other sub-bands are independent.
    sched.schedule_at(30 * S, 868_100_000, 2_000 * MS, NORMAL, EPOCH)


def test_duty_cycle_checks_windows_between_out_of_order_bookings():
    """Edge-window checks alone would accept the middle booking; a window spanning all three overflows."""
    sched = synced()
    sched.schedule_at(10 * S, 864_000_000, 1_000 * MS, NORMAL, EPOCH)  # A
    sched.schedule_at(10 * S + 3000 * S, 864_000_000, 1_000 * MS, NORMAL, EPOCH)  # C, 50 min later
    # B between them: window ending at B's end holds A+B, window starting at B holds B+C: both 2.0 s <= 2.52 s,
    # but [A, A + 1 h) holds A+B+C = 3 s.
    with pytest.raises(DutyCycle):
        sched.schedule_at(10 * S + 1500 * S, 864_000_000, 1_000 * MS, NORMAL, EPOCH)


def test_anytime_slides_past_conflicts_and_duty_cycle():
    sched = synced()
    a = sched.schedule_anytime(864_000_000, 2_000 * MS, NORMAL, EPOCH)
    assert a.starts == 130 * MS  # now + minimum lead time
    b = sched.schedule_anytime(869_525_000, 100 * MS, NORMAL, EPOCH)
    assert b.starts == a.off_air_until  # right after A's time-off-air
    # Only 0.52 s left in K for an hour: a 1 s emission must wait until A leaves the window.
    c = sched.schedule_anytime(864_000_000, 1_000 * MS, NORMAL, EPOCH)
    assert c.starts == a.starts + HOUR - 1_000 * MS + 480 * MS
    sub_band = sched.sub_band_index(864_000_000)
    dc = sched._duty_cycles[sub_band]
    assert dc.max_window_usage(c.starts, 0) <= dc.limit(NORMAL)


def test_anytime_refuses_what_can_never_fit():
    sched = synced()
    with pytest.raises(DutyCycle):
        sched.schedule_anytime(864_000_000, 3_000 * MS, NORMAL, EPOCH)


def test_sub_band_first_match_and_not_found():
    sched = synced()
    assert sched.sub_band_index(865_000_000) == 0  # K, not L
    assert sched.sub_band_index(868_000_000) == 1  # L, not M
    with pytest.raises(SubBandNotFound) as info:
        sched.schedule_at(1 * S, 868_650_000, 50 * MS, NORMAL, EPOCH)
    assert info.value.attributes == {"frequency": 868_650_000}
    assert info.value.grpc_code == 9


def test_duty_cycle_enforcement_off_accepts_everything():
    sched = synced(enforce_duty_cycle=False)
    sched.schedule_at(1 * S, 868_650_000, 3_000 * MS, NORMAL, EPOCH)
    sched.schedule_at(5 * S, 864_000_000, 3_000 * MS, TxSchedulePriority.LOWEST, EPOCH)
    assert len(sched.sub_band_stats(EPOCH)) == 1


def test_sub_bands_validation():
    GatewayScheduler([SubBand(1, 10, 0.01), SubBand(1, 10, 0.01), SubBand(10, 20, 0.0)])  # merge + shared end
    sched = GatewayScheduler([SubBand(1, 10, 0.0)])
    assert sched.sub_bands[0].duty_cycle == 1.0
    with pytest.raises(OverlappingSubBands):
        GatewayScheduler([SubBand(1, 10, 0.01), SubBand(5, 20, 0.01)])


def test_unsynced_clock_and_gps():
    sched = GatewayScheduler(EU)
    with pytest.raises(NoClockSync) as info:
        sched.schedule_at(1 * S, 868_100_000, 50 * MS, NORMAL, EPOCH)
    assert info.value.grpc_code == 14
    sched.clock.sync(0, EPOCH)
    with pytest.raises(NoAbsoluteGatewayTime):
        sched.schedule_at_gps_time(10 * S, 869_525_000, 50 * MS, NORMAL, EPOCH)
    sched.clock.sync(1_000_000, EPOCH + 1 * S, gps_time=1_000 * S)
    em = sched.schedule_at_gps_time(1_005 * S, 869_525_000, 50 * MS, NORMAL, EPOCH + 1 * S)
    assert em.starts == 6 * S
    em = sched.schedule_at_server_time(EPOCH + 8 * S, 869_525_000, 50 * MS, NORMAL, EPOCH + 1 * S)
    assert em.starts == 8 * S


def test_sub_band_stats_and_pruning():
    sched = synced()
    sched.schedule_at(1 * S, 864_000_000, 1_800 * MS, NORMAL, EPOCH)
    stats = sched.sub_band_stats(EPOCH + 10 * S)
    k = stats[0]
    assert (k.min_frequency, k.max_frequency, k.downlink_utilization_limit) == (863_000_000, 865_000_000, 0.001)
    assert k.downlink_utilization == pytest.approx(1.8 / 3600)
    later = EPOCH + 2 * HOUR
    sched.prune(later)
    assert sched.emissions() == [] and sched.sub_band_emissions(0) == []
    assert sched.sub_band_stats(later)[0].downlink_utilization == 0.0
    assert sched.next_deadline() is None


def test_dwell_time_and_payload_size():
    toa = lora_time_on_air(60, 10, 125_000, "4/5", crc=False)
    check_dwell_time(toa, dwell_time=False)
    with pytest.raises(DwellTime) as info:
        check_dwell_time(toa, dwell_time=True)
    assert (info.value.name, info.value.grpc_code) == ("dwell_time", 9)
    check_payload_size(64, 59)
    with pytest.raises(TooLong) as info:
        check_payload_size(65, 59, data_rate=2)
    assert info.value.attributes == {"payload_length": 65, "maximum_length": 64, "data_rate": 2}
    table = {False: 59, True: 19}  # AU DR2 no-dwell / dwell
    check_payload_size(24, table.get, dwell_time=True)
    with pytest.raises(TooLong):
        check_payload_size(25, table.get, dwell_time=True)
    with pytest.raises(TooLong):  # 0 = data rate unusable under dwell time
        check_payload_size(10, {False: 59, True: 0}.get, dwell_time=True)


def test_release_gives_back_the_slot_and_the_airtime():
    sched = synced()
    now = EPOCH + S
    start = sched.clock.from_server_time(now) + 2 * S
    toa = lora_time_on_air(33, 12, 125_000, "4/5", crc=False)
    assert toa > S  # an SF12 join-accept outlasts the RX1-to-RX2 second
    rx1 = sched.schedule_at(start, 868_100_000, toa, NORMAL, now)
    with pytest.raises(Conflict):
        sched.schedule_at(start + S, 869_525_000, toa, NORMAL, now)
    used = sched.sub_band_stats(now + 3 * S)[2].downlink_utilization
    assert used > 0
    assert sched.release(rx1) is True
    assert sched.release(rx1) is False  # releasing twice is harmless
    assert sched.sub_band_stats(now + 3 * S)[2].downlink_utilization == 0
    rx2 = sched.schedule_at(start + S, 869_525_000, toa, NORMAL, now)
    assert rx2.starts == start + S


def test_shift_moves_bookings_with_their_airtime():
    sched = synced()
    now = EPOCH + S
    start = sched.clock.from_server_time(now) + S
    toa = 100 * MS
    booked = sched.schedule_at(start, 868_100_000, toa, NORMAL, now)
    delta = 35 * 60 * S  # a re-anchored clock can be off by up to half a counter wrap
    sched.shift(delta)
    with pytest.raises(Conflict):
        sched.schedule_at(start + delta + 10 * MS, 868_100_000, toa, NORMAL, now)
    sched.schedule_at(start, 868_100_000, toa, NORMAL, now)  # the old place is free
    assert (booked.starts + delta, booked.off_air_until + delta) in sched.emissions()
