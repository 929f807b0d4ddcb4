"""GPS <-> Unix with leap seconds; expected values computed by hand from the leap-second table."""

from __future__ import annotations

import pytest

from gatewayserver import gpstime as g

NS = 1_000_000_000


@pytest.mark.parametrize(
    ("unix_s", "gps_s"),
    [
        (315_964_800, 0),  # GPS epoch 1980-01-06
        (362_793_599, 46_828_799),  # 1981-06-30T23:59:59, offset 0
        (362_793_600, 46_828_801),  # 1981-07-01, offset 1
        (915_148_800, 599_184_013),  # 1999-01-01, offset 13
        (1_483_228_799, 1_167_264_016),  # 2016-12-31T23:59:59, offset 17
        (1_483_228_800, 1_167_264_018),  # 2017-01-01, offset 18
        (1_700_000_000, 1_384_035_218),  # 2023-11-14T22:13:20
        (1_795_316_963, 1_479_352_181),  # 2026-11-22T03:09:23
    ],
)
def test_conversions(unix_s: int, gps_s: int) -> None:
    assert g.unix_ns_to_gps_ns(unix_s * NS) == gps_s * NS
    assert g.gps_ns_to_unix_ns(gps_s * NS) == unix_s * NS
    assert g.gps_ms_to_unix_ns(gps_s * 1000 + 123) == unix_s * NS + 123_000_000
    assert g.unix_ns_to_gps_ms(unix_s * NS + 999_999) == gps_s * 1000


def test_inserted_second_maps_onto_next_day() -> None:
    # GPS 1167264017 is 2016-12-31T23:59:60 UTC, which Unix time cannot represent.
    assert g.gps_ns_to_unix_ns(1_167_264_017 * NS + 500_000_000) == 1_483_228_800 * NS
    assert g.gps_ns_to_unix_ns(1_167_264_016 * NS + 500_000_000) == 1_483_228_799 * NS + 500_000_000


def test_leap_seconds() -> None:
    assert g.leap_seconds_at_unix_ns(315_964_800 * NS) == 0
    assert g.leap_seconds_at_unix_ns(1_483_228_799 * NS) == 17
    assert g.leap_seconds_at_unix_ns(1_483_228_800 * NS) == 18
    assert g.leap_seconds_at_unix_ns(1_800_000_000 * NS) == 18


def test_monotonic_round_trip_around_every_leap() -> None:
    for unix_s, _ in g.LEAP_SECONDS:
        for delta in (-2, -1, 0, 1, 2):
            t = (unix_s + delta) * NS + 1
            assert g.gps_ns_to_unix_ns(g.unix_ns_to_gps_ns(t)) == t
