"""Transmit power, dwell time and payload-size checks for a downlink.

Kept free of the frequency-plan package: callers pass numbers, sequences of sub-band-like objects and callables,
so this module does not depend on how plans are loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import DwellTime, TooLong

DEFAULT_DWELL_TIME = 400_000_000  # ns; regional parameters' dwell-time limit
LORAWAN_PHY_OVERHEAD = 5  # MHDR (1) + MIC (4) around the MACPayload


class EirpSubBand(Protocol):
    min_frequency: int
    max_frequency: int
    max_eirp: float | None


def _first_match(sub_bands: Iterable[EirpSubBand], frequency: int) -> EirpSubBand | None:
    for sb in sub_bands:
        if sb.min_frequency <= frequency <= sb.max_frequency:
            return sb
    return None


@dataclass(frozen=True, slots=True)
class TxPower:
    eirp: float  # dBm, the regulatory ceiling that applies
    tx_power: float  # dBm sent to the gateway: EIRP minus antenna gain


def max_eirp(
    frequency: int,
    *,
    band_max_eirp: float,
    band_sub_bands: Iterable[EirpSubBand] = (),
    plan_max_eirp: float | None = None,
    plan_sub_bands: Iterable[EirpSubBand] = (),
    antenna_gain: float = 0.0,
) -> TxPower:
    """EIRP for a downlink on `frequency`, each set step overriding the previous one (the reference's order):

    band default -> first band sub-band containing f (if it has a max EIRP) -> plan `max-eirp` -> first plan
    sub-band containing f with a max EIRP. A later step replaces an earlier one even when higher (e.g. RU: band
    default 16 dBm, whole-band sub-band 22.15 dBm -> 22.15). Then the antenna gain is subtracted.
    """
    eirp = float(band_max_eirp)
    sb = _first_match(band_sub_bands, frequency)
    if sb is not None and sb.max_eirp is not None:
        eirp = float(sb.max_eirp)
    if plan_max_eirp is not None:
        eirp = float(plan_max_eirp)
    sb = _first_match(plan_sub_bands, frequency)
    if sb is not None and sb.max_eirp is not None:
        eirp = float(sb.max_eirp)
    return TxPower(eirp, eirp - antenna_gain)


def check_dwell_time(time_on_air: int, *, dwell_time: bool, max_duration: int | None = None) -> None:
    """Refuse a transmission longer than the dwell time when the plan (or channel) enables downlink dwell time."""
    if not dwell_time:
        return
    limit = DEFAULT_DWELL_TIME if max_duration is None else max_duration
    if time_on_air > limit:
        raise DwellTime(duration=time_on_air, max_duration=limit)


def check_payload_size(
    phy_payload_length: int,
    max_mac_payload: int | Callable[[bool], int],
    *,
    dwell_time: bool = False,
    data_rate: Any = None,
) -> None:
    """PHYPayload must be <= max MACPayload + 5 for the data rate.

    `max_mac_payload` is the number, or a callable taking `dwell_time` (the band table's no-dwell / dwell
    columns). A maximum of 0 means the data rate is unusable under dwell time.
    """
    maximum = max_mac_payload(dwell_time) if callable(max_mac_payload) else max_mac_payload
    if maximum <= 0 or phy_payload_length > maximum + LORAWAN_PHY_OVERHEAD:
        raise TooLong(
            payload_length=phy_payload_length,
            maximum_length=maximum + LORAWAN_PHY_OVERHEAD if maximum > 0 else 0,
            data_rate=data_rate,
        )


__all__ = ["max_eirp", "TxPower", "check_dwell_time", "check_payload_size", "DEFAULT_DWELL_TIME"]
