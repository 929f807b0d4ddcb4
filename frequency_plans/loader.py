"""Gateway frequency plans: our YAML files, their validation, and the start-up store.

Everything is read and checked once, when the store is built; a mistake anywhere stops start-up with a
`FrequencyPlanError` naming the file and the key path, because a wrong plan silently transmits on the wrong
frequencies. After that every lookup is a dict hit or a scan of a handful of tuples.

File format (one plan per file, `*.yml` or `*.yaml`, keys in snake_case; see plans/EU_863_870.yml):

    id, name, band_id, extends, description,
    uplink_channels / downlink_channels: [{frequency, min_data_rate, max_data_rate, radio}],
    lora_standard_channel / fsk_channel / rx2_channel / ping_slot: {frequency, data_rate, radio},
    rx2_default_data_rate, ping_slot_default_data_rate, max_eirp,
    sub_bands: [{min_frequency, max_frequency, duty_cycle, max_eirp}],
    dwell_time: {uplinks, downlinks, duration}, listen_before_talk: {rssi_target, rssi_offset, scan_time},
    time_off_air: {fraction, duration}, radios: [{enable, chip_type, frequency, rssi_offset,
    tx: {min_frequency, max_frequency, notch_frequency}}], clock_source.

`extends: OTHER_ID` overlays this file onto another plan, key by key: a present list or object replaces the
base one wholesale, `null` removes it, absent keys are inherited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .bands import (
    BANDS,
    Band,
    Beacon,
    Channel,
    ChannelDwellTime,
    DwellTime,
    FSKModulation,
    LoRaModulation,
    Rx2,
    SubBand,
)

__all__ = [
    "BUILTIN_PLANS_DIR",
    "Channel",
    "DwellTime",
    "FixedChannel",
    "FrequencyPlan",
    "FrequencyPlanError",
    "FrequencyPlanStore",
    "ListenBeforeTalk",
    "PingSlot",
    "Radio",
    "RadioTx",
    "Rx2",
    "SubBand",
    "TimeOffAir",
    "UnknownFrequencyPlan",
    "to_json_dict",
]

# libyaml when available: start-up parses every plan file, and the pure-Python parser is ~10x slower.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BUILTIN_PLANS_DIR = Path(__file__).resolve().parent / "plans"


class FrequencyPlanError(ValueError):
    """A plan file is unreadable or invalid; the message starts with `file: key.path:`."""


class UnknownFrequencyPlan(KeyError):
    """No plan has this id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown frequency plan"


# --------------------------------------------------------------------------------------------------------------
# Plan value types


@dataclass(frozen=True, slots=True)
class FixedChannel:
    """A single-data-rate channel (LoRa standard, FSK, RX2 or ping-slot override)."""

    frequency: int
    data_rate: int
    radio: int | None = None


@dataclass(frozen=True, slots=True)
class RadioTx:
    min_frequency: int
    max_frequency: int
    notch_frequency: int | None = None


@dataclass(frozen=True, slots=True)
class Radio:
    enable: bool
    chip_type: str
    frequency: int
    rssi_offset: float
    tx: RadioTx | None = None


@dataclass(frozen=True, slots=True)
class ListenBeforeTalk:
    rssi_target: float
    rssi_offset: float
    scan_time: int  # nanoseconds


@dataclass(frozen=True, slots=True)
class TimeOffAir:
    """Gap after each emission: max(fraction x emission time, duration). The scheduler floors it at 30 ms."""

    fraction: float = 0.0
    duration: int = 0  # nanoseconds


@dataclass(frozen=True, slots=True)
class PingSlot:
    """Effective class B ping slot: the plan override, otherwise the band frequencies and beacon DR."""

    frequencies: tuple[int, ...]
    data_rate: int


@dataclass(frozen=True, slots=True, eq=False)
class FrequencyPlan:
    id: str
    band_id: str
    name: str
    band: Band
    uplink_channels: tuple[Channel, ...]
    downlink_channels: tuple[Channel, ...]
    # Effective list used for duty cycle: the plan's own if it has any, otherwise the band's.
    sub_bands: tuple[SubBand, ...]
    rx2: Rx2
    max_eirp: float | None  # plan-wide override; None = none (band values apply)
    dwell_time: DwellTime
    lora_standard_channel: FixedChannel | None
    fsk_channel: FixedChannel | None
    radios: tuple[Radio, ...]
    listen_before_talk: ListenBeforeTalk | None
    time_off_air: TimeOffAir
    ping_slot: PingSlot
    beacon: Beacon
    clock_source: int = 1
    description: str = ""
    extends: str | None = None
    source: str = ""  # the file the plan came from (for messages)
    # Only the sub-bands the plan itself declares (for the EIRP rule); empty when it uses the band's.
    plan_sub_bands: tuple[SubBand, ...] = ()

    def find_sub_band(self, frequency: int) -> SubBand | None:
        """First effective sub-band containing the frequency; None means a downlink there is refused."""
        for sub_band in self.sub_bands:
            if sub_band.min_frequency <= frequency <= sub_band.max_frequency:
                return sub_band
        return None

    def eirp_for(self, frequency: int) -> float:
        """Max EIRP (dBm) for a downlink: band default, band sub-band, plan max_eirp, plan sub-band.

        Each step that applies replaces the previous one, even upwards; band sub-bands count here even when
        the plan has its own sub-bands for duty cycle.
        """
        eirp = self.band.max_eirp_for(frequency)
        if self.max_eirp is not None:
            eirp = self.max_eirp
        for sub_band in self.plan_sub_bands:
            if sub_band.min_frequency <= frequency <= sub_band.max_frequency:
                if sub_band.max_eirp is not None:
                    eirp = sub_band.max_eirp
                break
        return eirp

    def downlink_dwell_time(self, frequency: int) -> int | None:
        """Longest downlink (ns) allowed on `frequency`, None when no dwell time applies there.

        A downlink channel on that frequency with its own dwell-time switch decides (on: its duration, else the
        plan's; off: no limit, even when the plan's downlink dwell time is on); otherwise the plan's switch does.
        """
        for channel in self.downlink_channels:
            if channel.frequency == frequency and channel.dwell_time is not None:
                if not channel.dwell_time.enabled:
                    return None
                return channel.dwell_time.duration or self.dwell_time.duration
        return self.dwell_time.duration if self.dwell_time.downlinks else None

    def max_mac_payload(self, data_rate: int) -> int:
        """Downlink MACPayload limit: the dwell column applies only when the plan's downlink dwell time is on."""
        return self.band.max_mac_payload(data_rate, bool(self.dwell_time.downlinks))

    def rx1_frequency(self, uplink_frequency: int) -> int | None:
        """RX1 frequency: the paired downlink channel when the plan lists one, otherwise the band rule."""
        if self.downlink_channels and self.band.downlink_grid is None:
            for index, channel in enumerate(self.uplink_channels):
                if channel.frequency == uplink_frequency:
                    if index < len(self.downlink_channels):
                        return self.downlink_channels[index].frequency
                    break
        return self.band.rx1_frequency(uplink_frequency)


def to_json_dict(plan: FrequencyPlan) -> dict[str, Any]:
    """The `frequency-plans show` JSON: Hz integers, duty-cycle fractions, EIRP dBm, durations in ns."""

    def channel(c: Channel) -> dict[str, Any]:
        return {
            "frequency": c.frequency,
            "min_data_rate": c.min_data_rate,
            "max_data_rate": c.max_data_rate,
            "radio": c.radio,
        }

    def fixed(c: FixedChannel | None) -> dict[str, Any] | None:
        if c is None:
            return None
        return {"frequency": c.frequency, "data_rate": c.data_rate, "radio": c.radio}

    def radio(r: Radio) -> dict[str, Any]:
        tx = None
        if r.tx is not None:
            tx = {
                "min_frequency": r.tx.min_frequency,
                "max_frequency": r.tx.max_frequency,
                "notch_frequency": r.tx.notch_frequency,
            }
        return {
            "enable": r.enable,
            "chip_type": r.chip_type,
            "frequency": r.frequency,
            "rssi_offset": r.rssi_offset,
            "tx": tx,
        }

    lbt = plan.listen_before_talk
    return {
        "id": plan.id,
        "name": plan.name,
        "band_id": plan.band_id,
        "uplink_channels": [channel(c) for c in plan.uplink_channels],
        "downlink_channels": [channel(c) for c in plan.downlink_channels],
        "sub_bands": [
            {
                "min_frequency": s.min_frequency,
                "max_frequency": s.max_frequency,
                "duty_cycle": s.duty_cycle,
                "max_eirp": s.max_eirp,
            }
            for s in plan.sub_bands
        ],
        "rx2": {"frequency": plan.rx2.frequency, "data_rate": plan.rx2.data_rate},
        "max_eirp": plan.max_eirp,
        "dwell_time": {
            "uplinks": plan.dwell_time.uplinks,
            "downlinks": plan.dwell_time.downlinks,
            "duration": plan.dwell_time.duration,
        },
        "lora_standard_channel": fixed(plan.lora_standard_channel),
        "fsk_channel": fixed(plan.fsk_channel),
        "radios": [radio(r) for r in plan.radios],
        "listen_before_talk": None
        if lbt is None
        else {"rssi_target": lbt.rssi_target, "rssi_offset": lbt.rssi_offset, "scan_time": lbt.scan_time},
    }


# --------------------------------------------------------------------------------------------------------------
# Parsing helpers: every check knows the file and the key path it is looking at


class _Ctx:
    __slots__ = ("file", "path")

    def __init__(self, file: str, path: str = "") -> None:
        self.file = file
        self.path = path

    def key(self, name: str) -> _Ctx:
        return _Ctx(self.file, f"{self.path}.{name}" if self.path else name)

    def item(self, index: int) -> _Ctx:
        return _Ctx(self.file, f"{self.path}[{index}]")

    def error(self, message: str) -> FrequencyPlanError:
        where = f"{self.file}: {self.path}: " if self.path else f"{self.file}: "
        return FrequencyPlanError(where + message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _frequency(value: Any, ctx: _Ctx) -> int:
    if not _is_int(value) or value <= 0:
        raise ctx.error("must be an integer number of Hz")
    return value


def _non_negative_int(value: Any, ctx: _Ctx, what: str = "a non-negative integer") -> int:
    if not _is_int(value) or value < 0:
        raise ctx.error(f"must be {what}")
    return value


def _number(value: Any, ctx: _Ctx) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ctx.error("must be a number")
    return float(value)


def _bool(value: Any, ctx: _Ctx) -> bool:
    if not isinstance(value, bool):
        raise ctx.error("must be true or false")
    return value


def _string(value: Any, ctx: _Ctx) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error("must be a non-empty string")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)\s*$")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _duration(value: Any, ctx: _Ctx) -> int:
    """A duration: an integer of nanoseconds, or a string with a unit (`400ms`, `128us`, `1.5s`)."""
    if _is_int(value) and value >= 0:
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return round(float(match.group(1)) * _UNIT_NS[match.group(2)])
    raise ctx.error("must be a duration: integer nanoseconds or a string like '400ms'")


def _mapping(value: Any, ctx: _Ctx, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error("must be a mapping")
    for key in value:
        if key not in allowed:
            raise ctx.key(str(key)).error(f"unknown key (expected one of: {', '.join(allowed)})")
    for key in required:
        if key not in value:
            raise ctx.key(key).error("is required")
    return value


def _list(value: Any, ctx: _Ctx) -> list[Any]:
    if not isinstance(value, list):
        raise ctx.error("must be a list")
    return value


def _channel(value: Any, ctx: _Ctx, radio_required: bool) -> Channel:
    keys = ("frequency", "min_data_rate", "max_data_rate", "radio", "dwell_time")
    required = keys[:4] if radio_required else keys[:3]
    data = _mapping(value, ctx, keys, required)
    dwell = None
    if data.get("dwell_time") is not None:
        dctx = ctx.key("dwell_time")
        ddata = _mapping(data["dwell_time"], dctx, ("enabled", "duration"), ("enabled",))
        duration = ddata.get("duration")
        dwell = ChannelDwellTime(
            _bool(ddata["enabled"], dctx.key("enabled")),
            None if duration is None else _duration(duration, dctx.key("duration")),
        )
    low = _non_negative_int(data["min_data_rate"], ctx.key("min_data_rate"), "a data-rate index")
    high = _non_negative_int(data["max_data_rate"], ctx.key("max_data_rate"), "a data-rate index")
    if low > high:
        raise ctx.key("max_data_rate").error(f"must not be below min_data_rate ({low})")
    radio = data.get("radio")
    if radio is not None:
        radio = _non_negative_int(radio, ctx.key("radio"), "a radio index")
    return Channel(_frequency(data["frequency"], ctx.key("frequency")), low, high, radio, dwell)


def _fixed_channel(value: Any, ctx: _Ctx, radio_required: bool) -> FixedChannel:
    keys = ("frequency", "data_rate", "radio")
    data = _mapping(value, ctx, keys, keys if radio_required else keys[:2])
    radio = data.get("radio")
    if radio is not None:
        radio = _non_negative_int(radio, ctx.key("radio"), "a radio index")
    return FixedChannel(
        _frequency(data["frequency"], ctx.key("frequency")),
        _non_negative_int(data["data_rate"], ctx.key("data_rate"), "a data-rate index"),
        radio,
    )


def _sub_band(value: Any, ctx: _Ctx) -> SubBand:
    data = _mapping(
        value, ctx, ("min_frequency", "max_frequency", "duty_cycle", "max_eirp"), ("min_frequency", "max_frequency")
    )
    low = _frequency(data["min_frequency"], ctx.key("min_frequency"))
    high = _frequency(data["max_frequency"], ctx.key("max_frequency"))
    if low > high:
        raise ctx.key("max_frequency").error(f"must not be below min_frequency ({low})")
    duty = data.get("duty_cycle")
    duty_cycle = 1.0
    if duty is not None:
        duty_cycle = _number(duty, ctx.key("duty_cycle"))
        if not 0 <= duty_cycle <= 1:
            raise ctx.key("duty_cycle").error("must be a fraction between 0 and 1")
        if duty_cycle == 0:  # as in The Things Stack: 0 means "no limit"
            duty_cycle = 1.0
    eirp = data.get("max_eirp")
    return SubBand(low, high, duty_cycle, None if eirp is None else _number(eirp, ctx.key("max_eirp")))


def _radio(value: Any, ctx: _Ctx) -> Radio:
    data = _mapping(value, ctx, ("enable", "chip_type", "frequency", "rssi_offset", "tx"), ("chip_type", "frequency"))
    tx = None
    if data.get("tx") is not None:
        tctx = ctx.key("tx")
        tdata = _mapping(
            data["tx"], tctx, ("min_frequency", "max_frequency", "notch_frequency"), ("min_frequency", "max_frequency")
        )
        low = _frequency(tdata["min_frequency"], tctx.key("min_frequency"))
        high = _frequency(tdata["max_frequency"], tctx.key("max_frequency"))
        if low > high:
            raise tctx.key("max_frequency").error(f"must not be below min_frequency ({low})")
        notch = tdata.get("notch_frequency")
        tx = RadioTx(low, high, None if notch is None else _frequency(notch, tctx.key("notch_frequency")))
    chip = _string(data["chip_type"], ctx.key("chip_type"))
    return Radio(
        enable=_bool(data.get("enable", True), ctx.key("enable")),
        chip_type=chip,
        frequency=_frequency(data["frequency"], ctx.key("frequency")),
        rssi_offset=_number(data.get("rssi_offset", 0), ctx.key("rssi_offset")),
        tx=tx,
    )


def _dwell_time(value: Any, ctx: _Ctx) -> DwellTime:
    data = _mapping(value, ctx, ("uplinks", "downlinks", "duration"))
    up = data.get("uplinks")
    down = data.get("downlinks")
    up = None if up is None else _bool(up, ctx.key("uplinks"))
    down = None if down is None else _bool(down, ctx.key("downlinks"))
    duration = data.get("duration")
    duration = None if duration is None else _duration(duration, ctx.key("duration"))
    if (up or down) and not duration:
        raise ctx.key("duration").error("is required when dwell time is on for uplinks or downlinks")
    return DwellTime(up, down, duration)


def _lbt(value: Any, ctx: _Ctx) -> ListenBeforeTalk:
    keys = ("rssi_target", "rssi_offset", "scan_time")
    data = _mapping(value, ctx, keys, ("rssi_target", "scan_time"))
    scan = _duration(data["scan_time"], ctx.key("scan_time"))
    if scan <= 0:
        raise ctx.key("scan_time").error("must be positive")
    return ListenBeforeTalk(
        _number(data["rssi_target"], ctx.key("rssi_target")),
        _number(data.get("rssi_offset", 0), ctx.key("rssi_offset")),
        scan,
    )


def _time_off_air(value: Any, ctx: _Ctx) -> TimeOffAir:
    data = _mapping(value, ctx, ("fraction", "duration"))
    fraction = _number(data.get("fraction", 0), ctx.key("fraction"))
    if not 0 <= fraction <= 1:
        raise ctx.key("fraction").error("must be a fraction between 0 and 1")
    return TimeOffAir(fraction, _duration(data.get("duration", 0), ctx.key("duration")))


# Top-level keys: name -> parser of the (non-null) value. None = scalar handled by hand.
def _list_of(parse: Any) -> Any:
    def parse_list(value: Any, ctx: _Ctx) -> tuple[Any, ...]:
        return tuple(parse(item, ctx.item(i)) for i, item in enumerate(_list(value, ctx)))

    return parse_list


_PARSERS: dict[str, Any] = {
    "id": _string,
    "name": _string,
    "description": _string,
    "band_id": _string,
    "extends": _string,
    # `radio` is optional: plans without radios (e.g. ISM_2400_3CH_DRAFT2) describe channels only.
    "uplink_channels": _list_of(lambda v, c: _channel(v, c, False)),
    "downlink_channels": _list_of(lambda v, c: _channel(v, c, False)),
    "lora_standard_channel": lambda v, c: _fixed_channel(v, c, True),
    "fsk_channel": lambda v, c: _fixed_channel(v, c, True),
    "rx2_channel": lambda v, c: _fixed_channel(v, c, False),
    "rx2_default_data_rate": lambda v, c: _non_negative_int(v, c, "a data-rate index"),
    "ping_slot": lambda v, c: _fixed_channel(v, c, False),
    "ping_slot_default_data_rate": lambda v, c: _non_negative_int(v, c, "a data-rate index"),
    "max_eirp": _number,
    "sub_bands": _list_of(_sub_band),
    "dwell_time": _dwell_time,
    "listen_before_talk": _lbt,
    "time_off_air": _time_off_air,
    "radios": _list_of(_radio),
    "clock_source": lambda v, c: _non_negative_int(v, c, "a radio index"),
}


@dataclass
class _RawPlan:
    """One parsed file: typed values per top-level key (None = explicitly removed)."""

    id: str
    file: str
    values: dict[str, Any]
    extends: str | None = None


# Parsed files keyed by (path, display name, mtime, size): a second store (tests, CLI, reload) reparses only
# files that changed. _RawPlan values are never mutated after parsing.
_PARSE_CACHE: dict[tuple[str, str, int, int], _RawPlan] = {}


def _parse_file_cached(path: Path, display: str) -> _RawPlan:
    try:
        stat = path.stat()
    except OSError:
        return _parse_file(path, display)  # reports the error with the file name
    key = (str(path), display, stat.st_mtime_ns, stat.st_size)
    raw = _PARSE_CACHE.get(key)
    if raw is None:
        raw = _PARSE_CACHE[key] = _parse_file(path, display)
    return raw


def _parse_file(path: Path, display: str) -> _RawPlan:
    ctx = _Ctx(display)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ctx.error(f"cannot read: {exc.strerror or exc}") from None
    try:
        document = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ctx.error(f"invalid YAML{where}: {problem}") from None
    data = _mapping(document, ctx, tuple(_PARSERS), ("id",))
    values: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            if key in ("id", "extends"):
                raise ctx.key(key).error("must not be empty")
            values[key] = None
            continue
        values[key] = _PARSERS[key](value, ctx.key(key))
    plan_id = values["id"]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", plan_id):
        raise ctx.key("id").error("must contain only letters, digits, '_', '-' and '.'")
    if "extends" not in values and "band_id" not in values:
        raise ctx.key("band_id").error("is required (or extend a plan that has one)")
    return _RawPlan(plan_id, display, values, values.pop("extends", None))


# --------------------------------------------------------------------------------------------------------------
# Resolution and semantic checks


_NOT_INHERITED = frozenset({"id", "name", "description"})


def _resolve(raw: _RawPlan, by_id: Mapping[str, _RawPlan]) -> tuple[dict[str, Any], dict[str, str]]:
    """Overlay the extends chain (base first); returns values and, per key, the file that supplied it."""
    chain: list[_RawPlan] = [raw]
    seen = {raw.id}
    current = raw
    while current.extends is not None:
        base = by_id.get(current.extends)
        if base is None:
            raise _Ctx(current.file, "extends").error(f"unknown plan {current.extends!r}")
        if base.id in seen:
            cycle = " -> ".join([p.id for p in chain] + [base.id])
            raise _Ctx(current.file, "extends").error(f"cycle: {cycle}")
        seen.add(base.id)
        chain.append(base)
        current = base
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for depth, layer in enumerate(reversed(chain)):
        for key, value in layer.values.items():
            # A plan's identity (id, name, description) is its own; an unnamed extension shows its id.
            if key in _NOT_INHERITED and layer is not raw:
                continue
            # The clock source names one of the radios, so only a layer that defines radios may change it.
            if key == "clock_source" and depth > 0 and "radios" not in layer.values:
                continue
            # An empty list in an overlay means "inherit" (as The Things Stack overlays), null removes.
            if isinstance(value, tuple) and not value and key in values:
                continue
            values[key] = value
            origin[key] = layer.file
    return values, origin


def _check_overlaps(sub_bands: Sequence[SubBand], ctx: _Ctx) -> None:
    for i, a in enumerate(sub_bands):
        for j in range(i):
            b = sub_bands[j]
            if a.min_frequency < b.max_frequency and b.min_frequency < a.max_frequency:
                raise ctx.item(i).error(
                    f"overlaps sub_bands[{j}] ({b.min_frequency}-{b.max_frequency}); sub-bands may only touch"
                )


def _build(raw: _RawPlan, by_id: Mapping[str, _RawPlan]) -> FrequencyPlan:
    values, origin = _resolve(raw, by_id)

    def ctx(key: str) -> _Ctx:
        return _Ctx(origin.get(key, raw.file), key)

    band_id = values.get("band_id")
    if band_id is None:
        raise _Ctx(raw.file, "band_id").error("is required (the extended plans do not set one either)")
    band = BANDS.get(band_id)
    if band is None:
        raise ctx("band_id").error(f"unknown band {band_id!r} (known: {', '.join(BANDS)})")

    radios: tuple[Radio, ...] = values.get("radios") or ()

    def check_rate(index: int, c: _Ctx) -> None:
        if index not in band.data_rates:
            raise c.error(f"data rate {index} is not defined in band {band.id}")

    def check_radio(index: int | None, c: _Ctx) -> None:
        if index is not None and index >= len(radios):
            raise c.error(f"radio {index} does not exist (the plan has {len(radios)} radios)")

    uplinks: tuple[Channel, ...] = values.get("uplink_channels") or ()
    downlinks: tuple[Channel, ...] = values.get("downlink_channels") or ()
    plan_dwell: DwellTime = values.get("dwell_time") or DwellTime()
    for key, channels in (("uplink_channels", uplinks), ("downlink_channels", downlinks)):
        for i, channel in enumerate(channels):
            c = ctx(key).item(i)
            if channel.dwell_time is not None and channel.dwell_time.enabled:
                if not channel.dwell_time.duration and not plan_dwell.duration:
                    raise c.key("dwell_time").key("duration").error(
                        "is required when the channel's dwell time is enabled and the plan sets no duration"
                    )
            check_rate(channel.min_data_rate, c.key("min_data_rate"))
            check_rate(channel.max_data_rate, c.key("max_data_rate"))
            check_radio(channel.radio, c.key("radio"))
    if not uplinks:
        raise ctx("uplink_channels").error("at least one uplink channel is required")
    if band.uplink_grids:
        # Fixed-grid bands derive RX1 from the uplink channel index: an off-grid channel could never be answered.
        for i, channel in enumerate(uplinks):
            if band.uplink_channel_index(channel.frequency) is None:
                raise ctx("uplink_channels").item(i).key("frequency").error(
                    f"{channel.frequency} Hz is not on the {band.id} uplink channel grid"
                )

    for key, kind in (("lora_standard_channel", LoRaModulation), ("fsk_channel", FSKModulation)):
        fixed = values.get(key)
        if fixed is None:
            continue
        check_rate(fixed.data_rate, ctx(key).key("data_rate"))
        if not isinstance(band.data_rates[fixed.data_rate].modulation, kind):
            raise ctx(key).key("data_rate").error(f"data rate {fixed.data_rate} is not a {kind.__name__[:-10]} rate")
        check_radio(fixed.radio, ctx(key).key("radio"))

    for key in ("rx2_channel", "ping_slot"):
        if values.get(key) is not None:
            check_rate(values[key].data_rate, ctx(key).key("data_rate"))
    for key in ("rx2_default_data_rate", "ping_slot_default_data_rate"):
        if values.get(key) is not None:
            check_rate(values[key], ctx(key))

    clock_source = values.get("clock_source")
    if clock_source is None:
        clock_source = 1
    if radios and clock_source >= max(len(radios), 2):
        # Shipped single-radio plans still name radio 1, as the upstream files do; allow 0/1 there.
        raise ctx("clock_source").error(f"radio {clock_source} does not exist")

    plan_sub_bands: tuple[SubBand, ...] = values.get("sub_bands") or ()
    _check_overlaps(plan_sub_bands, ctx("sub_bands"))

    rx2 = band.default_rx2
    if values.get("rx2_channel") is not None:
        rx2 = Rx2(values["rx2_channel"].frequency, values["rx2_channel"].data_rate)
    if values.get("rx2_default_data_rate") is not None:
        rx2 = Rx2(rx2.frequency, values["rx2_default_data_rate"])

    ping_frequencies = band.ping_slot_frequencies
    ping_rate = band.beacon.data_rate
    if values.get("ping_slot") is not None:
        ping_frequencies = (values["ping_slot"].frequency,)
        ping_rate = values["ping_slot"].data_rate
    if values.get("ping_slot_default_data_rate") is not None:
        ping_rate = values["ping_slot_default_data_rate"]

    return FrequencyPlan(
        id=raw.id,
        band_id=band.id,
        name=values.get("name") or raw.id,
        band=band,
        uplink_channels=uplinks,
        downlink_channels=downlinks,
        sub_bands=plan_sub_bands or band.sub_bands,
        rx2=rx2,
        max_eirp=values.get("max_eirp"),
        dwell_time=plan_dwell,
        lora_standard_channel=values.get("lora_standard_channel"),
        fsk_channel=values.get("fsk_channel"),
        radios=radios,
        listen_before_talk=values.get("listen_before_talk"),
        time_off_air=values.get("time_off_air") or TimeOffAir(),
        ping_slot=PingSlot(ping_frequencies, ping_rate),
        beacon=band.beacon,
        clock_source=clock_source,
        description=values.get("description") or "",
        extends=raw.extends,
        source=raw.file,
        plan_sub_bands=plan_sub_bands,
    )


# --------------------------------------------------------------------------------------------------------------
# The store


def _plan_files(directory: Path) -> Iterator[Path]:
    return iter(sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()))


class FrequencyPlanStore:
    """All plans, loaded and validated at construction; later directories override earlier ids.

    Built-in plans come first, then each operator directory in order. Raises FrequencyPlanError on the first
    mistake found.
    """

    def __init__(self, extra_dirs: Sequence[Path] = ()) -> None:
        raws: dict[str, _RawPlan] = {}
        sources: list[tuple[Path, bool]] = [(BUILTIN_PLANS_DIR, True)]
        sources += [(Path(d), False) for d in extra_dirs]
        for directory, builtin in sources:
            if not directory.is_dir():
                raise FrequencyPlanError(f"{directory}: not a directory of frequency plans")
            in_this_dir: dict[str, str] = {}
            for path in _plan_files(directory):
                display = f"plans/{path.name}" if builtin else str(path)
                raw = _parse_file_cached(path, display)
                if raw.id in in_this_dir:
                    raise _Ctx(display, "id").error(f"plan {raw.id!r} is also defined in {in_this_dir[raw.id]}")
                in_this_dir[raw.id] = display
                raws[raw.id] = raw
        plans = {plan_id: _build(raw, raws) for plan_id, raw in raws.items()}
        self._plans: Mapping[str, FrequencyPlan] = MappingProxyType(dict(sorted(plans.items())))

    def get(self, plan_id: str) -> FrequencyPlan:
        try:
            return self._plans[plan_id]
        except KeyError:
            raise UnknownFrequencyPlan(f"unknown frequency plan {plan_id!r}") from None

    def __contains__(self, plan_id: object) -> bool:
        return plan_id in self._plans

    def __len__(self) -> int:
        return len(self._plans)

    def ids(self) -> list[str]:
        return list(self._plans)

    def plans(self) -> list[FrequencyPlan]:
        return list(self._plans.values())

