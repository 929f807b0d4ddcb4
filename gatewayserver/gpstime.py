"""GPS time <-> Unix time in integer nanoseconds, with the leap-second table.

GPS time counts SI seconds since 1980-01-06T00:00:00Z without leap seconds; Unix time skips them. So
`gps = unix - GPS_EPOCH + offset(unix)`, where the offset is the number of leap seconds inserted since the GPS
epoch (18 since 2017-01-01). Unix time cannot represent an inserted second (23:59:60); GPS instants inside one
map onto the following Unix second, the same instant as its 00:00:00.

The table must be extended when the IERS announces a new leap second (none is scheduled as of 2026).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

NS: Final = 1_000_000_000
GPS_EPOCH_UNIX_S: Final = 315_964_800  # 1980-01-06T00:00:00Z
GPS_EPOCH_UNIX_NS: Final = GPS_EPOCH_UNIX_S * NS

# Unix seconds at which each leap second took effect (00:00:00 UTC after the inserted 23:59:60), with the
# cumulative GPS-UTC offset from then on.
LEAP_SECONDS: Final[tuple[tuple[int, int], ...]] = (
    (362_793_600, 1),  # 1981-07-01
    (394_329_600, 2),  # 1982-07-01
    (425_865_600, 3),  # 1983-07-01
    (489_024_000, 4),  # 1985-07-01
    (567_993_600, 5),  # 1988-01-01
    (631_152_000, 6),  # 1990-01-01
    (662_688_000, 7),  # 1991-01-01
    (709_948_800, 8),  # 1992-07-01
    (741_484_800, 9),  # 1993-07-01
    (773_020_800, 10),  # 1994-07-01
    (820_454_400, 11),  # 1996-01-01
    (867_715_200, 12),  # 1997-07-01
    (915_148_800, 13),  # 1999-01-01
    (1_136_073_600, 14),  # 2006-01-01
    (1_230_768_000, 15),  # 2009-01-01
    (1_341_100_800, 16),  # 2012-07-01
    (1_435_708_800, 17),  # 2015-07-01
    (1_483_228_800, 18),  # 2017-01-01
)

_UNIX_NS: Final = tuple(unix * NS for unix, _ in LEAP_SECONDS)
# The same instants on the GPS time scale (ns since the GPS epoch).
_GPS_NS: Final = tuple((unix - GPS_EPOCH_UNIX_S + offset) * NS for unix, offset in LEAP_SECONDS)
_OFFSETS_NS: Final = (0,) + tuple(offset * NS for _, offset in LEAP_SECONDS)
_LAST_UNIX_NS: Final = _UNIX_NS[-1]
_LAST_GPS_NS: Final = _GPS_NS[-1]
_LAST_OFFSET_NS: Final = _OFFSETS_NS[-1]


def leap_seconds_at_unix_ns(unix_ns: int) -> int:
    """GPS-UTC offset in seconds at a Unix instant."""
    return _OFFSETS_NS[bisect_right(_UNIX_NS, unix_ns)] // NS


def unix_ns_to_gps_ns(unix_ns: int) -> int:
    """Unix ns -> ns since the GPS epoch."""
    if unix_ns >= _LAST_UNIX_NS:
        return unix_ns - GPS_EPOCH_UNIX_NS + _LAST_OFFSET_NS
    return unix_ns - GPS_EPOCH_UNIX_NS + _OFFSETS_NS[bisect_right(_UNIX_NS, unix_ns)]


def gps_ns_to_unix_ns(gps_ns: int) -> int:
    """ns since the GPS epoch -> Unix ns."""
    if gps_ns >= _LAST_GPS_NS:
        return gps_ns + GPS_EPOCH_UNIX_NS - _LAST_OFFSET_NS
    i = bisect_right(_GPS_NS, gps_ns)
    unix_ns = gps_ns + GPS_EPOCH_UNIX_NS - _OFFSETS_NS[i]
    # Inside an inserted second the previous offset would land before the leap; clamp onto the new day.
    if i < len(_UNIX_NS) and unix_ns > _UNIX_NS[i]:
        return _UNIX_NS[i]
    return unix_ns


def gps_ms_to_unix_ns(gps_ms: int) -> int:
    """`tmms` (ms since the GPS epoch) -> Unix ns."""
    return gps_ns_to_unix_ns(gps_ms * 1_000_000)


def unix_ns_to_gps_ms(unix_ns: int) -> int:
    """Unix ns -> whole ms since the GPS epoch, truncated, as a txpk `tmms`."""
    return unix_ns_to_gps_ns(unix_ns) // 1_000_000
