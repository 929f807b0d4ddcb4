"""Downlink decisions for one gateway, sans-I/O: which window, when, at which power, and the txpk to send.

Everything here is handed `now` (server time, Unix ns) and the gateway's `GatewayScheduler`; it returns a
`Planned` downlink (emission booked, txpk body ready) or raises the reference's errors. The asyncio shell in
`service.py` only sends, holds and times out what this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frequency_plans.bands import FSKModulation, LoRaModulation
from scheduler import (
    ConcentratorClock,
    Emission,
    GatewayScheduler,
    SchedulerError,
    TimeOffAir,
    check_dwell_time,
    check_payload_size,
    fsk_time_on_air,
    lora_time_on_air,
    rx_window_timestamps,
)
from scheduler.clock import TIMESTAMP_MODULUS

from ..errors import GsError
from ..gpstime import unix_ns_to_gps_ns
from ..io.udp.translate import txpk_from_downlink
from ..registry import GatewayEntry
from ..ttnpb import lorawan_pb2
from . import errors as err

CLASS_A = lorawan_pb2.CLASS_A
CLASS_B = lorawan_pb2.CLASS_B
CLASS_C = lorawan_pb2.CLASS_C

_NS = 1_000_000_000

# How a window's start is given. `timestamp`: concentrator µs (class A); `server`/`gps`: absolute time in Unix ns
# (class B/C), `gps` meaning "through the gateway's GPS time"; `anytime`: class C as soon as possible.
TIMESTAMP, SERVER, GPS, ANYTIME = "timestamp", "server", "gps", "anytime"


class GatewayDownlinkState:
    """Per-connection downlink state: plan, scheduler (clock, RTT, emissions, duty cycle) and shell bookkeeping."""

    __slots__ = ("entry", "plan", "scheduler", "synthetic_clock", "held", "_rates", "_eirp")

    def __init__(self, entry: GatewayEntry, plans: Any) -> None:
        self.entry = entry
        plan_list = [plans.get(plan_id) for plan_id in entry.frequency_plan_ids]
        self.plan = plan_list[0]
        sub_bands = [sb for plan in plan_list for sb in plan.sub_bands]
        toa = self.plan.time_off_air
        self.scheduler = GatewayScheduler(
            sub_bands,
            enforce_duty_cycle=entry.enforce_duty_cycle,
            time_off_air=TimeOffAir(fraction=toa.fraction, duration=toa.duration),
            clock=ConcentratorClock(),
        )
        # True while the clock runs on a stand-in anchor (class C sent `imme` before any uplink synced it).
        self.synthetic_clock = False
        # Shell: PULL_RESPs held back for schedule-late, id -> timer handle.
        self.held: dict[int, Any] = {}
        # Per-decision look-ups that depend only on the plan, memoised (bounded by `_MEMO_LIMIT` entries each):
        # data rate key -> _Rate, frequency -> tx power.
        self._rates: dict[tuple[Any, ...], _Rate] = {}
        self._eirp: dict[int, float] = {}

    def sync(self, timestamp: int, now: int, gateway_time_ns: int | None) -> int:
        gps_ns = unix_ns_to_gps_ns(gateway_time_ns) if gateway_time_ns is not None else None
        clock = self.scheduler.clock
        if not self.synthetic_clock:
            return clock.sync(timestamp, now, gps_ns)
        # The first real uplink replaces the stand-in anchor: start the counter's epoch afresh and move what was
        # booked on the stand-in (same server times) onto the real concentrator time line.
        self.synthetic_clock = False
        before = clock.from_server_time(now)
        clock.reset()
        concentrator_time = clock.sync(timestamp, now, gps_ns)
        self.scheduler.shift(concentrator_time - before)
        return concentrator_time


@dataclass(slots=True)
class Planned:
    """A booked downlink and everything needed to send and report it."""

    window: int  # 1 or 2 (class A), the settings used for class B/C
    emission: Emission
    frequency: int
    data_rate: lorawan_pb2.DataRate
    data_rate_index: int
    tx_power: float  # EIRP minus antenna gain, dBm
    tx_server_time: int  # Unix ns of the start of transmission
    timestamp: int | None  # tmst written, if any
    gps_time_ms: int | None
    immediate: bool
    body: bytes  # the PULL_RESP body {"txpk": ...}
    # Class A: the other window's start, for an automatic RX2 retry after the gateway refuses RX1.
    rx2_timestamp: int | None = None


_MEMO_LIMIT = 64


class _Rate:
    """What the plan says about one downlink data rate, and its time-on-air per PHYPayload length."""

    __slots__ = ("modulation", "kind", "index", "max_mac_payload", "toa")

    def __init__(self, modulation: Any, kind: str, index: int, max_mac_payload: int) -> None:
        self.modulation = modulation
        self.kind = kind
        self.index = index
        self.max_mac_payload = max_mac_payload
        self.toa: dict[int, int] = {}


def _rate(state: GatewayDownlinkState, data_rate: lorawan_pb2.DataRate, window: int) -> _Rate:
    """The plan's view of `data_rate` (memoised per gateway); raises the data rate error when the band lacks it."""
    kind = data_rate.WhichOneof("modulation")
    if kind == "lora":
        lora = data_rate.lora
        key: tuple[Any, ...] = (lora.spreading_factor, lora.bandwidth, lora.coding_rate)
    elif kind == "fsk":
        key = (data_rate.fsk.bit_rate,)
    else:
        key = (kind,)
    rate = state._rates.get(key)  # noqa: SLF001 - the state's memo belongs to this module
    if rate is not None:
        return rate
    plan = state.plan
    modulation, kind = _modulation(data_rate)
    index = plan.band.find_data_rate(modulation, downlink=True) if modulation is not None else None
    if index is None:
        raise err.data_rate_rx_window(window)
    rate = _Rate(modulation, kind, index, plan.max_mac_payload(index))
    if len(state._rates) < _MEMO_LIMIT:  # noqa: SLF001
        state._rates[key] = rate  # noqa: SLF001
    return rate


def _modulation(data_rate: lorawan_pb2.DataRate) -> tuple[Any, str]:
    kind = data_rate.WhichOneof("modulation")
    if kind == "lora":
        lora = data_rate.lora
        return LoRaModulation(lora.spreading_factor, lora.bandwidth, lora.coding_rate or "4/5"), kind
    if kind == "fsk":
        return FSKModulation(data_rate.fsk.bit_rate), kind
    return None, kind or ""


def plan_window(
    state: GatewayDownlinkState,
    payload: bytes,
    window: int,
    frequency: int,
    data_rate: lorawan_pb2.DataRate,
    timing: str,
    at: int | None,
    priority: int,
    now: int,
) -> Planned:
    """Book one window or raise why not (data rate, size, dwell time, sub-band, too late, conflict, duty cycle)."""
    plan = state.plan
    rate = _rate(state, data_rate, window)
    modulation, kind, index = rate.modulation, rate.kind, rate.index
    size = len(payload)
    check_payload_size(size, rate.max_mac_payload, data_rate=index)
    toa = rate.toa.get(size)
    if toa is None:
        if kind == "lora":
            toa = lora_time_on_air(
                size, modulation.spreading_factor, modulation.bandwidth, modulation.coding_rate, crc=False
            )
        else:
            toa = fsk_time_on_air(size, modulation.bit_rate)
        rate.toa[size] = toa  # sizes are bounded by the check above
    dwell = plan.downlink_dwell_time(frequency)
    check_dwell_time(toa, dwell_time=dwell is not None, max_duration=dwell)

    sched = state.scheduler
    clock = sched.clock
    timestamp: int | None = None
    gps_ms: int | None = None
    immediate = False
    if timing == TIMESTAMP:
        assert at is not None
        emission = sched.schedule_at(None, frequency, toa, priority, now, timestamp=at)
        timestamp = emission.timestamp
    elif timing == GPS:
        assert at is not None
        gps_ns = unix_ns_to_gps_ns(at)
        emission = sched.schedule_at_gps_time(gps_ns, frequency, toa, priority, now)
        gps_ms = gps_ns // 1_000_000
    elif timing == SERVER:
        assert at is not None
        emission = sched.schedule_at_server_time(at, frequency, toa, priority, now)
        timestamp = emission.timestamp
    else:
        if not clock.is_synced:
            # Never heard an uplink: the concentrator counter is unknown, so book against a stand-in anchor and
            # let the forwarder send at once (`imme`). The next uplink re-anchors the clock.
            clock.sync((now // 1000) % TIMESTAMP_MODULUS, now)
            state.synthetic_clock = True
        emission = sched.schedule_anytime(frequency, toa, priority, now)
        if state.synthetic_clock:
            immediate = True
        else:
            timestamp = emission.timestamp
    tx_power = state._eirp.get(frequency)  # noqa: SLF001
    if tx_power is None:
        tx_power = plan.eirp_for(frequency) - state.entry.antenna_gain
        if len(state._eirp) < _MEMO_LIMIT:  # noqa: SLF001
            state._eirp[frequency] = tx_power  # noqa: SLF001
    if kind == "lora":
        body = txpk_from_downlink(
            payload,
            frequency_hz=frequency,
            eirp_dbm=tx_power,
            spreading_factor=modulation.spreading_factor,
            bandwidth_hz=modulation.bandwidth,
            coding_rate=modulation.coding_rate,
            timestamp=timestamp,
            gps_time_ms=gps_ms,
            immediate=immediate,
        )
    else:
        body = txpk_from_downlink(
            payload,
            frequency_hz=frequency,
            eirp_dbm=tx_power,
            bit_rate=modulation.bit_rate,
            timestamp=timestamp,
            gps_time_ms=gps_ms,
            immediate=immediate,
        )
    return Planned(
        window=window,
        emission=emission,
        frequency=frequency,
        data_rate=data_rate,
        data_rate_index=index,
        tx_power=tx_power,
        tx_server_time=clock.to_server_time(emission.starts),
        timestamp=timestamp,
        gps_time_ms=gps_ms,
        immediate=immediate,
        body=body,
    )


def plan_request(
    state: GatewayDownlinkState,
    payload: bytes,
    request: lorawan_pb2.TxRequest,
    token_timestamp: int | None,
    now: int,
) -> Planned:
    """Try the request's windows in order (RX1, then RX2); raise `tx_schedule` with one error per window."""
    device_class = getattr(request, "class")
    rx1_ts = rx2_ts = None
    timing = ANYTIME
    at: int | None = None
    if device_class == CLASS_A:
        if token_timestamp is None:
            raise err.no_uplink_token()
        rx1_ts, rx2_ts = rx_window_timestamps(token_timestamp, int(request.rx1_delay))
    elif request.HasField("absolute_time"):
        at = request.absolute_time.seconds * _NS + request.absolute_time.nanos
        if device_class == CLASS_B or state.scheduler.clock.has_gps_time:
            timing = GPS
        else:
            timing = SERVER
    elif device_class == CLASS_B:
        raise err.no_absolute_time()
    windows = (
        (1, request.rx1_frequency, request.rx1_data_rate if request.HasField("rx1_data_rate") else None, rx1_ts),
        (2, request.rx2_frequency, request.rx2_data_rate if request.HasField("rx2_data_rate") else None, rx2_ts),
    )
    window_errors = []
    for number, frequency, data_rate, timestamp in windows:
        if not frequency or data_rate is None:
            window_errors.append(err.details_of(err.rx_window_schedule(number, err.rx_empty())))
            continue
        try:
            if timestamp is not None:
                planned = plan_window(
                    state, payload, number, frequency, data_rate, TIMESTAMP, timestamp, request.priority, now
                )
            else:
                planned = plan_window(state, payload, number, frequency, data_rate, timing, at, request.priority, now)
        except (GsError, SchedulerError) as exc:
            window_errors.append(err.details_of(err.rx_window_schedule(number, exc)))
            continue
        if number == 1 and rx2_ts is not None and request.rx2_frequency and request.HasField("rx2_data_rate"):
            planned.rx2_timestamp = rx2_ts
        return planned
    raise err.tx_schedule(window_errors)


__all__ = ["GatewayDownlinkState", "Planned", "plan_request", "plan_window", "TIMESTAMP", "SERVER", "GPS", "ANYTIME"]
