"""Regional band definitions (the LoRaWAN regional parameters a Gateway Server enforces).

A Gateway Server always applies the *latest* regional-parameters revision of a band, whatever the device
speaks (the Network Server is the one that cares about device PHY versions). So every band here is the
latest revision: RP002-1.0.4, except CN_470_510 whose latest is RP001-1.1 Rev B.

Everything is immutable and built once at import; hot-path lookups are dict hits or short tuple scans.
Frequencies are integer Hz, duty cycles fractions of time, EIRP in dBm, durations integer nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "BANDS",
    "Band",
    "Beacon",
    "Channel",
    "ChannelDwellTime",
    "ChannelGrid",
    "DataRate",
    "DwellTime",
    "FSKModulation",
    "LoRaModulation",
    "LRFHSSModulation",
    "Modulation",
    "Rx2",
    "SubBand",
    "get_band",
]


# --------------------------------------------------------------------------------------------------------------
# Value types shared by bands and plans


@dataclass(frozen=True, slots=True)
class SubBand:
    """A frequency range with one duty-cycle budget and (optionally) one EIRP ceiling.

    Ranges are inclusive at both ends, as in The Things Stack; adjacent sub-bands may share an end point, and
    whichever comes first in the list owns it.
    """

    min_frequency: int
    max_frequency: int
    duty_cycle: float
    max_eirp: float | None = None

    def contains(self, frequency: int) -> bool:
        return self.min_frequency <= frequency <= self.max_frequency


@dataclass(frozen=True, slots=True)
class Channel:
    """A radio channel; `radio` is the concentrator RF chain (None where a plan does not say)."""

    frequency: int
    min_data_rate: int
    max_data_rate: int
    radio: int | None = None
    # Per-channel dwell time (plans only); None = follow the plan-wide switch.
    dwell_time: ChannelDwellTime | None = None


@dataclass(frozen=True, slots=True)
class ChannelDwellTime:
    """A channel's own dwell-time switch; without a duration the plan's duration applies."""

    enabled: bool
    duration: int | None = None  # nanoseconds


@dataclass(frozen=True, slots=True)
class DwellTime:
    """Dwell-time switches. None means "not set" (which the Gateway Server treats as off)."""

    uplinks: bool | None = None
    downlinks: bool | None = None
    duration: int | None = None  # nanoseconds


@dataclass(frozen=True, slots=True)
class Rx2:
    frequency: int
    data_rate: int


@dataclass(frozen=True, slots=True)
class Beacon:
    frequencies: tuple[int, ...]
    data_rate: int
    coding_rate: str


@dataclass(frozen=True, slots=True)
class LoRaModulation:
    spreading_factor: int
    bandwidth: int  # Hz
    coding_rate: str = "4/5"


@dataclass(frozen=True, slots=True)
class FSKModulation:
    bit_rate: int  # bit/s


@dataclass(frozen=True, slots=True)
class LRFHSSModulation:
    modulation_type: int
    operating_channel_width: int  # Hz
    coding_rate: str


Modulation = LoRaModulation | FSKModulation | LRFHSSModulation


@dataclass(frozen=True, slots=True)
class DataRate:
    """One data-rate index of a band.

    `max_mac_payload_dwell` is the limit when the 400 ms dwell-time restriction applies; 0 means the data rate
    may not be used at all under dwell time. Bands without dwell-dependent sizes repeat the plain limit.
    """

    modulation: Modulation
    max_mac_payload: int
    max_mac_payload_dwell: int

    def max_payload(self, dwell_time: bool = False) -> int:
        return self.max_mac_payload_dwell if dwell_time else self.max_mac_payload


@dataclass(frozen=True, slots=True)
class ChannelGrid:
    """A fixed channel raster: channel `first_index + n` is at `base + step * n` for n < count."""

    first_index: int
    base: int
    step: int
    count: int
    min_data_rate: int
    max_data_rate: int

    def index_of(self, frequency: int) -> int | None:
        offset = frequency - self.base
        if offset < 0 or offset % self.step:
            return None
        n = offset // self.step
        return self.first_index + n if n < self.count else None

    def channels(self) -> tuple[Channel, ...]:
        return tuple(
            Channel(self.base + self.step * n, self.min_data_rate, self.max_data_rate) for n in range(self.count)
        )


# --------------------------------------------------------------------------------------------------------------
# The band


# eq=False: bands are singletons compared by identity (their tables are mappings, which do not hash).
@dataclass(frozen=True, slots=True, eq=False)
class Band:
    id: str
    regional_parameters: str
    default_max_eirp: float
    tx_power_offsets: tuple[float, ...]
    max_adr_data_rate: int
    max_uplink_channels: int
    max_downlink_channels: int
    cflist: str  # "frequencies" or "channel_masks"
    tx_param_setup_req: bool
    boot_dwell_time: DwellTime
    data_rates: Mapping[int, DataRate]
    sub_bands: tuple[SubBand, ...]
    uplink_channels: tuple[Channel, ...]
    downlink_channels: tuple[Channel, ...]
    # uplink DR -> RX1 DR for each RX1DROffset (the tuple index is the offset)
    rx1_data_rate_table: Mapping[int, tuple[int, ...]]
    # the same under downlink dwell time, only for bands where it differs (AS923)
    rx1_data_rate_table_dwell: Mapping[int, tuple[int, ...]] | None
    # fixed grids (US/AU/CN): RX1 frequency derives from the uplink channel index; empty = same channel
    uplink_grids: tuple[ChannelGrid, ...]
    downlink_grid: ChannelGrid | None
    default_rx2: Rx2
    beacon: Beacon
    ping_slot_frequencies: tuple[int, ...]
    strict_coding_rate: bool = True
    cflist_frequency_unit: int = 100
    # Filled by _freeze_lookup once the band is built.
    _by_modulation: Mapping[Modulation, tuple[int, int]] = field(default_factory=dict, repr=False)
    _by_lora: Mapping[tuple[int, int, str], tuple[int, int]] = field(default_factory=dict, repr=False)

    # ---- sub-bands and power

    def find_sub_band(self, frequency: int) -> SubBand | None:
        """First sub-band containing the frequency; None means the band does not allow it."""
        for sub_band in self.sub_bands:
            if sub_band.min_frequency <= frequency <= sub_band.max_frequency:
                return sub_band
        return None

    def max_eirp_for(self, frequency: int) -> float:
        """Band-only EIRP ceiling: the default, replaced by the first matching sub-band's ceiling."""
        sub_band = self.find_sub_band(frequency)
        if sub_band is not None and sub_band.max_eirp is not None:
            return sub_band.max_eirp
        return self.default_max_eirp

    # ---- data rates

    def data_rate(self, index: int) -> DataRate:
        """Raises KeyError for an index the band does not define."""
        return self.data_rates[index]

    def max_mac_payload(self, index: int, dwell_time: bool = False) -> int:
        return self.data_rates[index].max_payload(dwell_time)

    def find_data_rate(self, modulation: Modulation, *, downlink: bool = False) -> int | None:
        """Index of a modulation, or None.

        When one modulation has two indices (US SF8/500 is DR4 and DR12), uplinks take the lowest and downlinks
        the highest, as The Things Stack does. Every latest band revision compares the LoRa coding rate too.
        """
        if not self.strict_coding_rate and isinstance(modulation, LoRaModulation):
            modulation = LoRaModulation(modulation.spreading_factor, modulation.bandwidth, "")
        found = self._by_modulation.get(modulation)
        if found is None:
            return None
        return found[1] if downlink else found[0]

    def find_lora_data_rate(
        self, spreading_factor: int, bandwidth: int, coding_rate: str = "4/5", *, downlink: bool = False
    ) -> int | None:
        # Tuple key: no dataclass construction on the per-downlink path.
        found = self._by_lora.get((spreading_factor, bandwidth, coding_rate if self.strict_coding_rate else ""))
        if found is None:
            return None
        return found[1] if downlink else found[0]

    def rx1_data_rate(self, uplink_data_rate: int, offset: int, dwell_time: bool = False) -> int:
        """RX1 data rate for an uplink DR and RX1DROffset; `dwell_time` is the downlink dwell-time flag.

        Raises ValueError for an uplink DR or offset the band has no entry for.
        """
        table = self.rx1_data_rate_table
        if dwell_time and self.rx1_data_rate_table_dwell is not None:
            table = self.rx1_data_rate_table_dwell
        row = table.get(uplink_data_rate)
        if row is None:
            raise ValueError(f"{self.id}: no RX1 data rate for uplink DR{uplink_data_rate}")
        if not 0 <= offset < len(row):
            raise ValueError(f"{self.id}: RX1 data-rate offset {offset} out of range 0..{len(row) - 1}")
        return row[offset]

    # ---- channels

    def uplink_channel_index(self, frequency: int) -> int | None:
        """Band channel index of an uplink frequency on a fixed grid (US/AU/CN); None elsewhere."""
        for grid in self.uplink_grids:
            index = grid.index_of(frequency)
            if index is not None:
                return index
        return None

    def rx1_frequency(self, uplink_frequency: int) -> int | None:
        """RX1 downlink frequency by the band rule.

        Grid bands map the uplink channel index onto the downlink raster (index mod downlink count); an
        uplink that is not on the grid has no RX1 (None). All other bands answer on the uplink frequency
        (a plan may pair channels differently; see `FrequencyPlan.rx1_frequency`).
        """
        if self.downlink_grid is None:
            return uplink_frequency
        index = self.uplink_channel_index(uplink_frequency)
        if index is None:
            return None
        grid = self.downlink_grid
        return grid.base + grid.step * (index % grid.count)

    def tx_power(self, index: int, max_eirp: float | None = None) -> float:
        """EIRP for a TXPower index: max EIRP plus the index's (negative) offset."""
        return (self.default_max_eirp if max_eirp is None else max_eirp) + self.tx_power_offsets[index]


# --------------------------------------------------------------------------------------------------------------
# Builders (keep the tables below readable)


# (index, modulation, maximum MAC payload size, maximum size with dwell time limits or None)
RateEntry = tuple[int, Modulation, int, int | None]


def _lora(sf: int, bw_khz: int, cr: str = "4/5") -> LoRaModulation:
    return LoRaModulation(sf, bw_khz * 1000, cr)


def _rates(entries: Iterable[tuple[int, Modulation, int, int | None]]) -> Mapping[int, DataRate]:
    """(index, modulation, max MAC payload, max MAC payload under dwell or None = same)."""
    return MappingProxyType(
        {i: DataRate(m, size, size if dwell is None else dwell) for i, m, size, dwell in entries}
    )


def _offsets(steps: int) -> tuple[float, ...]:
    return tuple(-2.0 * i for i in range(steps))


def _subtract_table(data_rates: Iterable[int], offsets: int, overrides: Mapping[int, tuple[int, ...]] = {}) -> Mapping[
    int, tuple[int, ...]
]:
    """RX1 DR = max(DR - offset, 0), the rule of most frequency-list bands."""
    table = {dr: tuple(max(dr - off, 0) for off in range(offsets)) for dr in data_rates}
    table.update(overrides)
    return MappingProxyType(table)


def _as923_table(lowest: int, highest: int) -> Mapping[int, tuple[int, ...]]:
    """AS923 / IN865: offsets 0..5 subtract, 6 and 7 add 1 and 2; the result is clamped to [lowest, highest]."""
    effective = (0, 1, 2, 3, 4, 5, -1, -2)
    return MappingProxyType(
        {dr: tuple(min(max(dr - e, lowest), highest) for e in effective) for dr in range(8)}
    )


def _freeze_lookup(band: Band) -> Band:
    """Precompute modulation -> (lowest index, highest index) so lookups are one dict hit."""
    lookup: dict[Modulation, tuple[int, int]] = {}
    for index in sorted(band.data_rates):
        modulation = band.data_rates[index].modulation
        if not band.strict_coding_rate and isinstance(modulation, LoRaModulation):
            modulation = LoRaModulation(modulation.spreading_factor, modulation.bandwidth, "")
        low, _ = lookup.get(modulation, (index, index))
        lookup[modulation] = (low, index)
    object.__setattr__(band, "_by_modulation", MappingProxyType(lookup))
    object.__setattr__(
        band,
        "_by_lora",
        MappingProxyType(
            {
                (m.spreading_factor, m.bandwidth, m.coding_rate): v
                for m, v in lookup.items()
                if isinstance(m, LoRaModulation)
            }
        ),
    )
    return band


FSK_50K = FSKModulation(50_000)

# EU-like DR0..7 (EU, EU_433, RU): sizes 59/59/59/123/250/250/250/250.
_EU_DR0_7: list[RateEntry] = [
    (0, _lora(12, 125), 59, None),
    (1, _lora(11, 125), 59, None),
    (2, _lora(10, 125), 59, None),
    (3, _lora(9, 125), 123, None),
    (4, _lora(8, 125), 250, None),
    (5, _lora(7, 125), 250, None),
    (6, _lora(7, 250), 250, None),
    (7, FSK_50K, 250, None),
]

_EU_LR_FHSS: list[RateEntry] = [
    (8, LRFHSSModulation(0, 137_000, "1/3"), 58, None),
    (9, LRFHSSModulation(0, 137_000, "2/3"), 123, None),
    (10, LRFHSSModulation(0, 336_000, "1/3"), 58, None),
    (11, LRFHSSModulation(0, 336_000, "2/3"), 123, None),
]

# US/AU downlink DR8..13 (SF12..SF7 at 500 kHz).
_US_AU_DOWNLINK: list[RateEntry] = [
    (8, _lora(12, 500), 61, None),
    (9, _lora(11, 500), 137, None),
    (10, _lora(10, 500), 250, None),
    (11, _lora(9, 500), 250, None),
    (12, _lora(8, 500), 250, None),
    (13, _lora(7, 500), 250, None),
]

_AS923_RATES: list[RateEntry] = [
    (0, _lora(12, 125), 59, 0),
    (1, _lora(11, 125), 59, 0),
    (2, _lora(10, 125), 123, 19),
    (3, _lora(9, 125), 123, 61),
    (4, _lora(8, 125), 250, 133),
    (5, _lora(7, 125), 250, 250),
    (6, _lora(7, 250), 250, 250),
    (7, FSK_50K, 250, 250),
]


def _fixed(frequencies: Iterable[int], lo: int = 0, hi: int = 5) -> tuple[Channel, ...]:
    return tuple(Channel(f, lo, hi) for f in frequencies)


_UNSET_DWELL = DwellTime()


def _frequency_list_band(
    band_id: str,
    *,
    default_max_eirp: float,
    offsets: int,
    rates: list[tuple[int, Modulation, int, int | None]],
    sub_bands: tuple[SubBand, ...],
    channels: tuple[Channel, ...],
    rx1: Mapping[int, tuple[int, ...]],
    rx2: Rx2,
    beacon: Beacon,
    ping_slots: tuple[int, ...],
    rx1_dwell: Mapping[int, tuple[int, ...]] | None = None,
    max_adr_data_rate: int = 5,
    tx_param_setup_req: bool = False,
    regional_parameters: str = "RP002-1.0.4",
    cflist_frequency_unit: int = 100,
) -> Band:
    return _freeze_lookup(
        Band(
            id=band_id,
            regional_parameters=regional_parameters,
            default_max_eirp=default_max_eirp,
            tx_power_offsets=_offsets(offsets),
            max_adr_data_rate=max_adr_data_rate,
            max_uplink_channels=16,
            max_downlink_channels=16,
            cflist="frequencies",
            tx_param_setup_req=tx_param_setup_req,
            boot_dwell_time=_UNSET_DWELL,
            data_rates=_rates(rates),
            sub_bands=sub_bands,
            uplink_channels=channels,
            downlink_channels=channels,
            rx1_data_rate_table=rx1,
            rx1_data_rate_table_dwell=rx1_dwell,
            uplink_grids=(),
            downlink_grid=None,
            default_rx2=rx2,
            beacon=beacon,
            ping_slot_frequencies=ping_slots,
            cflist_frequency_unit=cflist_frequency_unit,
        )
    )


# --------------------------------------------------------------------------------------------------------------
# The bands

EU_863_870 = _frequency_list_band(
    "EU_863_870",
    default_max_eirp=16,
    offsets=8,
    rates=_EU_DR0_7 + _EU_LR_FHSS,
    # ETSI sub-bands K, L, M, N, P, R in that order (band O is deliberately absent).
    sub_bands=(
        SubBand(863_000_000, 865_000_000, 0.001, 16.15),
        SubBand(865_000_000, 868_000_000, 0.01, 16.15),
        SubBand(868_000_000, 868_600_000, 0.01, 16.15),
        SubBand(868_700_000, 869_200_000, 0.001, 16.15),
        SubBand(869_400_000, 869_650_000, 0.1, 29.15),
        SubBand(869_700_000, 870_000_000, 0.01, 16.15),
    ),
    channels=_fixed((868_100_000, 868_300_000, 868_500_000)),
    # LR-FHSS uplinks answer on LoRa DR1/DR2 depending on the coding rate.
    rx1=_subtract_table(
        range(8),
        6,
        {8: (1, 0, 0, 0, 0, 0), 9: (2, 1, 0, 0, 0, 0), 10: (1, 0, 0, 0, 0, 0), 11: (2, 1, 0, 0, 0, 0)},
    ),
    rx2=Rx2(869_525_000, 0),
    beacon=Beacon((869_525_000,), 3, "4/5"),
    ping_slots=(869_525_000,),
)

EU_433 = _frequency_list_band(
    "EU_433",
    default_max_eirp=12.15,
    offsets=6,
    rates=_EU_DR0_7,
    sub_bands=(SubBand(433_175_000, 434_665_000, 0.1, 12.15),),
    channels=_fixed((433_175_000, 433_375_000, 433_575_000)),
    rx1=_subtract_table(range(8), 6),
    rx2=Rx2(434_665_000, 0),
    beacon=Beacon((434_655_000,), 3, "4/5"),
    ping_slots=(434_655_000,),
)

RU_864_870 = _frequency_list_band(
    "RU_864_870",
    default_max_eirp=16,
    offsets=8,
    rates=_EU_DR0_7,
    sub_bands=(SubBand(864_000_000, 870_000_000, 0.01, 22.15),),
    channels=_fixed((868_900_000, 869_100_000)),
    rx1=_subtract_table(range(8), 6),
    rx2=Rx2(869_100_000, 0),
    beacon=Beacon((869_100_000,), 3, "4/5"),
    # Not the beacon frequency: RU pings on the other default channel.
    ping_slots=(868_900_000,),
)

IN_865_867 = _frequency_list_band(
    "IN_865_867",
    default_max_eirp=30,
    offsets=11,
    # DR6 is reserved in IN.
    rates=_EU_DR0_7[:6] + [_EU_DR0_7[7]],
    sub_bands=(SubBand(865_000_000, 867_000_000, 1, 16.15),),
    channels=_fixed((865_062_500, 865_402_500, 865_985_000)),
    # IN shares the AS923 RX1 rule but never applies the dwell-time floor.
    rx1=_as923_table(0, 7),
    rx2=Rx2(866_550_000, 2),
    beacon=Beacon((866_500_000,), 4, "4/5"),
    ping_slots=(866_500_000,),
)

KR_920_923 = _frequency_list_band(
    "KR_920_923",
    default_max_eirp=14,
    offsets=8,
    rates=_EU_DR0_7[:6],
    # Note: 923.1 and 923.3 MHz (KR plan channels, KR beacon) lie outside this sub-band.
    sub_bands=(SubBand(920_000_000, 923_000_000, 1, 16.15),),
    channels=_fixed((922_100_000, 922_300_000, 922_500_000)),
    rx1=_subtract_table(range(6), 6),
    rx2=Rx2(921_900_000, 0),
    beacon=Beacon((923_100_000,), 3, "4/5"),
    ping_slots=(923_100_000,),
)

ISM_2400 = _frequency_list_band(
    "ISM_2400",
    default_max_eirp=10,
    offsets=8,
    rates=[
        (i, LoRaModulation(12 - i, 812_000, "4/8LI"), size, None)
        for i, size in enumerate((59, 123, 250, 250, 250, 250, 250, 250))
    ],
    sub_bands=(SubBand(2_400_000_000, 2_500_000_000, 1, 10.15),),
    channels=_fixed((2_403_000_000, 2_425_000_000, 2_479_000_000), 0, 7),
    rx1=_subtract_table(range(8), 6),
    rx2=Rx2(2_423_000_000, 0),
    beacon=Beacon((2_424_000_000,), 3, "4/8LI"),
    ping_slots=(2_424_000_000,),
    max_adr_data_rate=0,
    regional_parameters="ISM_2400 (single version)",
    cflist_frequency_unit=200,
)


def _as923(band_id: str, shift: int, sub_band: SubBand) -> Band:
    """AS923 groups differ by a frequency shift of channels/RX2/beacon, but their sub-bands are explicit."""
    return _frequency_list_band(
        band_id,
        default_max_eirp=16,
        offsets=8,
        rates=_AS923_RATES,
        sub_bands=(sub_band,),
        channels=_fixed((923_200_000 + shift, 923_400_000 + shift)),
        rx1=_as923_table(0, 7),
        rx1_dwell=_as923_table(2, 7),
        rx2=Rx2(923_200_000 + shift, 2),
        beacon=Beacon((923_400_000 + shift,), 3, "4/5"),
        ping_slots=(923_400_000 + shift,),
        tx_param_setup_req=True,
    )


AS_923 = _as923("AS_923", 0, SubBand(923_000_000, 923_500_000, 0.01, 16))
AS_923_2 = _as923("AS_923_2", -1_800_000, SubBand(921_400_000, 922_000_000, 0.01, 16))
AS_923_3 = _as923("AS_923_3", -6_600_000, SubBand(916_500_000, 917_000_000, 0.01, 16))
AS_923_4 = _as923("AS_923_4", -5_900_000, SubBand(917_300_000, 917_500_000, 0.01, 16))


def _grid_band(
    band_id: str,
    *,
    default_max_eirp: float,
    offsets: int,
    rates: list[tuple[int, Modulation, int, int | None]],
    sub_bands: tuple[SubBand, ...],
    uplink_grids: tuple[ChannelGrid, ...],
    downlink_grid: ChannelGrid,
    rx1: Mapping[int, tuple[int, ...]],
    rx2: Rx2,
    beacon: Beacon,
    max_adr_data_rate: int,
    boot_dwell_time: DwellTime,
    tx_param_setup_req: bool,
    regional_parameters: str = "RP002-1.0.4",
) -> Band:
    uplinks = tuple(channel for grid in uplink_grids for channel in grid.channels())
    return _freeze_lookup(
        Band(
            id=band_id,
            regional_parameters=regional_parameters,
            default_max_eirp=default_max_eirp,
            tx_power_offsets=_offsets(offsets),
            max_adr_data_rate=max_adr_data_rate,
            max_uplink_channels=len(uplinks),
            max_downlink_channels=downlink_grid.count,
            cflist="channel_masks",
            tx_param_setup_req=tx_param_setup_req,
            boot_dwell_time=boot_dwell_time,
            data_rates=_rates(rates),
            sub_bands=sub_bands,
            uplink_channels=uplinks,
            downlink_channels=downlink_grid.channels(),
            rx1_data_rate_table=rx1,
            rx1_data_rate_table_dwell=None,
            uplink_grids=uplink_grids,
            downlink_grid=downlink_grid,
            default_rx2=rx2,
            beacon=beacon,
            ping_slot_frequencies=beacon.frequencies,
        )
    )


_US_AU_BEACONS = tuple(923_300_000 + 600_000 * k for k in range(8))

US_902_928 = _grid_band(
    "US_902_928",
    default_max_eirp=30,
    offsets=15,
    rates=[
        (0, _lora(10, 125), 19, None),
        (1, _lora(9, 125), 61, None),
        (2, _lora(8, 125), 133, None),
        (3, _lora(7, 125), 250, None),
        (4, _lora(8, 500), 250, None),
        (5, LRFHSSModulation(0, 1_523_000, "1/3"), 58, None),
        (6, LRFHSSModulation(0, 1_523_000, "2/3"), 133, None),
        # DR7 is not defined.
        *_US_AU_DOWNLINK,
    ],
    sub_bands=(
        SubBand(902_300_000, 914_900_000, 1, 23.15),
        SubBand(923_300_000, 927_500_000, 1, 28.15),
    ),
    uplink_grids=(
        ChannelGrid(0, 902_300_000, 200_000, 64, 0, 3),
        ChannelGrid(64, 903_000_000, 1_600_000, 8, 4, 6),
    ),
    downlink_grid=ChannelGrid(0, 923_300_000, 600_000, 8, 8, 13),
    rx1=MappingProxyType(
        {
            0: (10, 9, 8, 8),
            1: (11, 10, 9, 8),
            2: (12, 11, 10, 9),
            3: (13, 12, 11, 10),
            4: (13, 13, 12, 11),
            5: (10, 9, 8, 8),
            6: (11, 10, 9, 8),
        }
    ),
    rx2=Rx2(923_300_000, 8),
    beacon=Beacon(_US_AU_BEACONS, 8, "4/5"),
    max_adr_data_rate=3,
    boot_dwell_time=DwellTime(uplinks=True, downlinks=False),
    tx_param_setup_req=False,
)

AU_915_928 = _grid_band(
    "AU_915_928",
    default_max_eirp=30,
    offsets=15,
    rates=[
        (0, _lora(12, 125), 59, 0),
        (1, _lora(11, 125), 59, 0),
        (2, _lora(10, 125), 59, 19),
        (3, _lora(9, 125), 123, 61),
        (4, _lora(8, 125), 250, 133),
        (5, _lora(7, 125), 250, 250),
        (6, _lora(8, 500), 250, 250),
        (7, LRFHSSModulation(0, 1_523_000, "1/3"), 58, 58),
        *_US_AU_DOWNLINK,
    ],
    sub_bands=(SubBand(915_000_000, 928_000_000, 1, 30),),
    uplink_grids=(
        ChannelGrid(0, 915_200_000, 200_000, 64, 0, 5),
        ChannelGrid(64, 915_900_000, 1_600_000, 8, 6, 7),
    ),
    downlink_grid=ChannelGrid(0, 923_300_000, 600_000, 8, 8, 13),
    rx1=MappingProxyType(
        {
            0: (8, 8, 8, 8, 8, 8),
            1: (9, 8, 8, 8, 8, 8),
            2: (10, 9, 8, 8, 8, 8),
            3: (11, 10, 9, 8, 8, 8),
            4: (12, 11, 10, 9, 8, 8),
            5: (13, 12, 11, 10, 9, 8),
            6: (13, 13, 12, 11, 10, 9),
            7: (9, 8, 8, 8, 8, 8),
        }
    ),
    rx2=Rx2(923_300_000, 8),
    beacon=Beacon(_US_AU_BEACONS, 8, "4/5"),
    max_adr_data_rate=5,
    boot_dwell_time=DwellTime(uplinks=True, downlinks=False),
    tx_param_setup_req=True,
)

CN_470_510 = _grid_band(
    "CN_470_510",
    default_max_eirp=19.15,
    offsets=8,
    rates=_EU_DR0_7[:6],
    sub_bands=(SubBand(470_000_000, 510_000_000, 1, 19.15),),
    uplink_grids=(ChannelGrid(0, 470_300_000, 200_000, 96, 0, 5),),
    downlink_grid=ChannelGrid(0, 500_300_000, 200_000, 48, 0, 5),
    rx1=_subtract_table(range(6), 6),
    rx2=Rx2(505_300_000, 0),
    beacon=Beacon(tuple(508_300_000 + 200_000 * k for k in range(8)), 2, "4/5"),
    max_adr_data_rate=5,
    boot_dwell_time=_UNSET_DWELL,
    tx_param_setup_req=False,
    regional_parameters="RP001-1.1b",
)


BANDS: Mapping[str, Band] = MappingProxyType(
    {
        band.id: band
        for band in (
            EU_863_870,
            US_902_928,
            AU_915_928,
            AS_923,
            AS_923_2,
            AS_923_3,
            AS_923_4,
            IN_865_867,
            KR_920_923,
            CN_470_510,
            RU_864_870,
            EU_433,
            ISM_2400,
        )
    }
)


def get_band(band_id: str) -> Band:
    """Raises KeyError naming the unknown band."""
    try:
        return BANDS[band_id]
    except KeyError:
        raise KeyError(f"unknown band {band_id!r}") from None

