"""Concentrator clock: maps server time and GPS time onto an unwrapped concentrator time.

The Semtech forwarder stamps packets with `tmst`, a uint32 microsecond counter that wraps every 2^32 µs
(~71.58 min). Inside the scheduler we keep an unwrapped concentrator time in nanoseconds so that emissions,
duty-cycle windows and lead times are plain integer comparisons. Each sync pairs a `tmst` with the server time it
arrived at; server time elapsed since the previous sync tells us how many wraps happened, so a gateway that was
silent for hours lands in the right epoch (as long as the counter and the server clock drift apart by less than
half a wrap, ~35 min).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NoAbsoluteGatewayTime, NoClockSync

TIMESTAMP_MODULUS = 1 << 32  # µs
TIMESTAMP_WRAP_NS = TIMESTAMP_MODULUS * 1000
_HALF_MODULUS = TIMESTAMP_MODULUS // 2


def unwrap_timestamp(timestamp: int, reference_us: int) -> int:
    """The unwrapped µs value congruent to `timestamp` mod 2^32 that is nearest to `reference_us`."""
    delta = (timestamp - reference_us + _HALF_MODULUS) % TIMESTAMP_MODULUS - _HALF_MODULUS
    return reference_us + delta


def to_timestamp(concentrator_time: int) -> int:
    """uint32 µs `tmst` for an unwrapped concentrator time in ns (truncated to the µs)."""
    return (concentrator_time // 1000) % TIMESTAMP_MODULUS


def _check_timestamp(timestamp: int) -> None:
    if not isinstance(timestamp, int) or not 0 <= timestamp < TIMESTAMP_MODULUS:
        raise ValueError(f"timestamp {timestamp!r} is not a uint32")


@dataclass(frozen=True, slots=True)
class _Anchor:
    concentrator_time: int  # ns, unwrapped
    other_time: int  # ns, server or GPS


class ConcentratorClock:
    """One gateway's concentrator clock. Not synced until the first `sync`."""

    __slots__ = ("_server", "_gps")

    def __init__(self) -> None:
        self._server: _Anchor | None = None
        self._gps: _Anchor | None = None

    @property
    def is_synced(self) -> bool:
        return self._server is not None

    @property
    def has_gps_time(self) -> bool:
        return self._gps is not None

    def sync(self, timestamp: int, server_time: int, gps_time: int | None = None) -> int:
        """Record that the counter read `timestamp` µs at `server_time` ns; returns its concentrator time (ns).

        The first sync defines epoch 0. Later syncs pick the wrap count that best matches the server time elapsed
        since the previous sync. A GPS time (ns since the GPS epoch) anchors GPS conversions; a sync without one
        keeps the last GPS anchor (the counter keeps counting while a packet lacks `tmms`).
        """
        _check_timestamp(timestamp)
        if self._server is None:
            concentrator_time = timestamp * 1000
        else:
            expected_ns = self._server.concentrator_time + (server_time - self._server.other_time)
            concentrator_time = unwrap_timestamp(timestamp, expected_ns // 1000) * 1000
        self._server = _Anchor(concentrator_time, server_time)
        if gps_time is not None:
            self._gps = _Anchor(concentrator_time, gps_time)
        return concentrator_time

    def reset(self) -> None:
        """Forget every anchor (e.g. the forwarder restarted and its counter began again)."""
        self._server = self._gps = None

    def _anchor(self) -> _Anchor:
        if self._server is None:
            raise NoClockSync()
        return self._server

    def from_server_time(self, server_time: int) -> int:
        anchor = self._anchor()
        return anchor.concentrator_time + (server_time - anchor.other_time)

    def to_server_time(self, concentrator_time: int) -> int:
        anchor = self._anchor()
        return anchor.other_time + (concentrator_time - anchor.concentrator_time)

    def from_timestamp(self, timestamp: int, reference: int | None = None) -> int:
        """Unwrapped concentrator time (ns) of `timestamp`, nearest to `reference` (default: the last sync)."""
        _check_timestamp(timestamp)
        if reference is None:
            reference = self._anchor().concentrator_time
        return unwrap_timestamp(timestamp, reference // 1000) * 1000

    @staticmethod
    def to_timestamp(concentrator_time: int) -> int:
        return to_timestamp(concentrator_time)

    def from_gps_time(self, gps_time: int) -> int:
        self._anchor()
        if self._gps is None:
            raise NoAbsoluteGatewayTime()
        return self._gps.concentrator_time + (gps_time - self._gps.other_time)

    def to_gps_time(self, concentrator_time: int) -> int:
        self._anchor()
        if self._gps is None:
            raise NoAbsoluteGatewayTime()
        return self._gps.other_time + (concentrator_time - self._gps.concentrator_time)


def rx_window_timestamps(uplink_timestamp: int, rx1_delay_s: int) -> tuple[int, int]:
    """Class A `tmst` values for RX1 (uplink + RX1 delay) and RX2 (one second later), wrapped to uint32."""
    _check_timestamp(uplink_timestamp)
    if rx1_delay_s < 0:
        raise ValueError("negative RX1 delay")
    rx1_delay_s = rx1_delay_s or 1  # LoRaWAN: a delay of 0 means 1 s
    rx1 = (uplink_timestamp + rx1_delay_s * 1_000_000) % TIMESTAMP_MODULUS
    return rx1, (rx1 + 1_000_000) % TIMESTAMP_MODULUS


def rx_window_times(uplink_concentrator_time: int, rx1_delay_s: int) -> tuple[int, int]:
    """Class A concentrator times (ns) of RX1 and RX2 for an uplink received at `uplink_concentrator_time`."""
    if rx1_delay_s < 0:
        raise ValueError("negative RX1 delay")
    rx1_delay_s = rx1_delay_s or 1
    rx1 = uplink_concentrator_time + rx1_delay_s * 1_000_000_000
    return rx1, rx1 + 1_000_000_000


__all__ = [
    "TIMESTAMP_MODULUS",
    "TIMESTAMP_WRAP_NS",
    "ConcentratorClock",
    "unwrap_timestamp",
    "to_timestamp",
    "rx_window_timestamps",
    "rx_window_times",
]
