"""Downlink decisions for one gateway, sans-I/O: which window, when, at which power.

Everything here is handed `now` (server time, Unix ns) and the gateway's `GatewayScheduler`; it returns a
`Planned` downlink (emission booked, settings chosen) or raises the reference's errors. The core's `Connection`
(`gatewayserver/core/connection.py`) turns that into the `DownlinkMessage` it hands to the gateway's frontend,
which writes it in its own wire format (a txpk for UDP).

A gateway may have several frequency plans of one band. The scheduler keeps one duty-cycle ledger over the
sub-bands of all of them; each window is then checked against the plans in the gateway's order (or only the plan
the request names in `frequency_plan_id`), and the first plan that allows the frequency, payload size and dwell
time decides the transmit power. So a downlink may use the channels and limits of any of the gateway's plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frequency_plans.bands import FSKModulation, LoRaModulation
from frequency_plans.combine import PlansFromDifferentBands, check_same_band, combined_time_off_air
from frequency_plans.loader import FrequencyPlan
from scheduler import (
    ConcentratorClock,
    NoClockSync,
    Emission,
    GatewayScheduler,
    SchedulerError,
    SubBandNotFound,
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

# How long after receiving an `imme` PULL_RESP the forwarder puts it on air. Semtech's lora_pkt_fwd queues an
# immediate packet in its just-in-time queue this far ahead of its counter (1,001-1,003 ms measured with 4.0.1), so
# "as soon as possible" without a known concentrator clock is booked, reported and duty-cycled at that moment.
IMME_LATENCY_NS = 1_000_000_000


class GatewayDownlinkState:
    """Per-connection downlink state: plans and scheduler (clock, RTT, emissions, duty cycle).

    Raises `frequency_plan_not_configured` / `frequency_plans_not_from_same_band` (GsError) for plans the registry
    should have refused, and the scheduler's `frequency_plans_overlap_sub_band` for sub-bands that do not combine.
    """

    __slots__ = ("entry", "plans", "plan", "scheduler", "synthetic_clock", "_rates", "_eirp", "_covering")

    def __init__(self, entry: GatewayEntry, plans: Any) -> None:
        self.entry = entry
        self.plans = gateway_plans(entry, plans)
        self.plan = self.plans[0]  # the band, and the data-rate index, are the same in every plan
        sub_bands = [sb for plan in self.plans for sb in plan.sub_bands]
        toa = combined_time_off_air(self.plans)
        self.scheduler = GatewayScheduler(
            sub_bands,
            enforce_duty_cycle=entry.enforce_duty_cycle,
            time_off_air=TimeOffAir(fraction=toa.fraction, duration=toa.duration),
            clock=ConcentratorClock(),
        )
        # True while the clock runs on a stand-in anchor (class C sent `imme` before any uplink synced it).
        self.synthetic_clock = False
        # Per-decision look-ups that depend only on the plans, memoised (bounded by `_MEMO_LIMIT` entries each):
        # data rate key -> _Rate, (plan position, frequency) -> tx power, frequency -> positions of the plans
        # whose sub-bands contain it.
        self._rates: dict[tuple[Any, ...], _Rate] = {}
        self._eirp: dict[tuple[int, int], float] = {}
        self._covering: dict[int, tuple[int, ...]] = {}

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


def gateway_plans(entry: GatewayEntry, store: Any) -> tuple[FrequencyPlan, ...]:
    """The gateway's plans in registry order, refused when unknown or of different bands.

    The registry refuses both when it is loaded with the plan store; this is the backstop for registries built
    without one, and the reference's errors say why every downlink to such a gateway fails.
    """
    plans = []
    for plan_id in entry.frequency_plan_ids:
        try:
            plans.append(store.get(plan_id))
        except KeyError:
            raise err.frequency_plan_not_configured(plan_id, entry.frequency_plan_ids) from None
    try:
        check_same_band(plans)
    except PlansFromDifferentBands as exc:
        raise err.frequency_plans_not_from_same_band(str(exc)) from None
    return tuple(plans)


def requested_plan(state: GatewayDownlinkState, plan_id: str) -> int | None:
    """Position of the plan the Network Server asked for (None: any of the gateway's plans).

    Raises `frequency_plan_not_configured` when the gateway does not have that plan: the device expects that
    plan's channels and limits, which this gateway was not set up for.
    """
    if not plan_id:
        return None
    for position, plan in enumerate(state.plans):
        if plan.id == plan_id:
            return position
    raise err.frequency_plan_not_configured(plan_id, state.entry.frequency_plan_ids)


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
    immediate: bool  # the gateway's clock is unknown: it is to send at once (booked at its real delay)
    # Class A: the other window's start, for an automatic RX2 retry after the gateway refuses RX1.
    rx2_timestamp: int | None = None


_MEMO_LIMIT = 64


class _Rate:
    """What the plans say about one downlink data rate, and its time-on-air per PHYPayload length.

    The index is the band's, so the same in every plan; the size limit is per plan (it depends on the plan's
    downlink dwell time), in the order of `GatewayDownlinkState.plans`.
    """

    __slots__ = ("modulation", "kind", "index", "max_mac_payload", "toa")

    def __init__(self, modulation: Any, kind: str, index: int, max_mac_payload: tuple[int, ...]) -> None:
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
    rate = state._rates.get(key)
    if rate is not None:
        return rate
    if kind == "lrfhss":
        raise err.data_rate_rx_window(window, err.lrfhss_downlink())
    modulation, kind = _modulation(data_rate)
    index = state.plan.band.find_data_rate(modulation, downlink=True) if modulation is not None else None
    if index is None:
        raise err.data_rate_rx_window(window)
    rate = _Rate(modulation, kind, index, tuple(plan.max_mac_payload(index) for plan in state.plans))
    if len(state._rates) < _MEMO_LIMIT:
        state._rates[key] = rate
    return rate


def _modulation(data_rate: lorawan_pb2.DataRate) -> tuple[Any, str]:
    kind = data_rate.WhichOneof("modulation")
    if kind == "lora":
        lora = data_rate.lora
        return LoRaModulation(lora.spreading_factor, lora.bandwidth, lora.coding_rate or "4/5"), kind
    if kind == "fsk":
        return FSKModulation(data_rate.fsk.bit_rate), kind
    return None, kind or ""


def _covering(state: GatewayDownlinkState, frequency: int) -> tuple[int, ...]:
    """Positions of the plans whose sub-bands contain `frequency`: the plans under which it may be used at all."""
    found = state._covering.get(frequency)
    if found is None:
        found = tuple(i for i, plan in enumerate(state.plans) if plan.find_sub_band(frequency) is not None)
        if len(state._covering) < _MEMO_LIMIT:
            state._covering[frequency] = found
    return found


def _time_on_air(rate: _Rate, size: int) -> int:
    toa = rate.toa.get(size)
    if toa is None:
        modulation = rate.modulation
        if rate.kind == "lora":
            toa = lora_time_on_air(
                size, modulation.spreading_factor, modulation.bandwidth, modulation.coding_rate, crc=False
            )
        else:
            toa = fsk_time_on_air(size, modulation.bit_rate)
        rate.toa[size] = toa  # callers check the size against a plan first, so this memo stays bounded
    return toa


def _admitting_plan(
    state: GatewayDownlinkState, rate: _Rate, frequency: int, size: int, only: int | None
) -> tuple[int, int]:
    """(plan position, time-on-air) of the first plan that allows this transmission, or raise the reason.

    Plans not covering the frequency are skipped; when some do but none allows the transmission, the first such
    plan's reason (too long, dwell time) is raised, as it says more than `sub_band_not_found`.
    """
    reason: SchedulerError | None = None
    for position in _covering(state, frequency):
        if only is not None and position != only:
            continue
        plan = state.plans[position]
        try:
            check_payload_size(size, rate.max_mac_payload[position], data_rate=rate.index)
            toa = _time_on_air(rate, size)
            dwell = plan.downlink_dwell_time(frequency)
            check_dwell_time(toa, dwell_time=dwell is not None, max_duration=dwell)
        except SchedulerError as exc:
            if reason is None:
                reason = exc
            continue
        return position, toa
    raise reason if reason is not None else SubBandNotFound(frequency)


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
    *,
    plan_id: str = "",
) -> Planned:
    """Book one window or raise why not (plan, data rate, size, dwell time, sub-band, too late, conflict, duty cycle).

    `plan_id` is the request's `frequency_plan_id`: when set, only that plan's channels and limits apply.
    """
    only = requested_plan(state, plan_id)
    rate = _rate(state, data_rate, window)
    index = rate.index
    position, toa = _admitting_plan(state, rate, frequency, len(payload), only)

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
        if state.synthetic_clock:
            # The stand-in anchor only orders `imme` bookings; a tmst made from it would be the server's clock
            # passed off as the concentrator's, which the forwarder refuses or puts on air at a random moment.
            raise NoClockSync()
        emission = sched.schedule_at_server_time(at, frequency, toa, priority, now)
        timestamp = emission.timestamp
    else:
        if not clock.is_synced:
            # Never heard an uplink: the concentrator counter is unknown, so book against a stand-in anchor and
            # let the forwarder send at once (`imme`). The next uplink re-anchors the clock.
            clock.sync((now // 1000) % TIMESTAMP_MODULUS, now)
            state.synthetic_clock = True
        if state.synthetic_clock:
            # `imme` goes on air IMME_LATENCY_NS after the forwarder receives it, never sooner: book that moment
            # (or later, past other emissions and the duty cycle; the shell then holds the PULL_RESP back).
            not_before = clock.from_server_time(now + IMME_LATENCY_NS)
            emission = sched.schedule_anytime(frequency, toa, priority, now, not_before=not_before)
            immediate = True
        else:
            emission = sched.schedule_anytime(frequency, toa, priority, now)
            timestamp = emission.timestamp
    eirp_key = (position, frequency)
    tx_power = state._eirp.get(eirp_key)
    if tx_power is None:
        tx_power = state.plans[position].eirp_for(frequency) - state.entry.antenna_gain
        if len(state._eirp) < _MEMO_LIMIT:
            state._eirp[eirp_key] = tx_power
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
    )


def plan_request(
    state: GatewayDownlinkState,
    payload: bytes,
    request: lorawan_pb2.TxRequest,
    token_timestamp: int | None,
    now: int,
) -> Planned:
    """Try the request's windows in order (RX1, then RX2); raise `tx_schedule` with one error per window.

    A `frequency_plan_id` the gateway does not have fails the whole path (before any window), as the reference does.
    """
    plan_id = request.frequency_plan_id
    requested_plan(state, plan_id)
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
                    state, payload, number, frequency, data_rate, TIMESTAMP, timestamp, request.priority, now,
                    plan_id=plan_id,
                )
            else:
                planned = plan_window(
                    state, payload, number, frequency, data_rate, timing, at, request.priority, now, plan_id=plan_id
                )
        except (GsError, SchedulerError) as exc:
            window_errors.append(err.details_of(err.rx_window_schedule(number, exc)))
            continue
        if number == 1 and rx2_ts is not None and request.rx2_frequency and request.HasField("rx2_data_rate"):
            planned.rx2_timestamp = rx2_ts
        return planned
    raise err.tx_schedule(window_errors)


__all__ = [
    "GatewayDownlinkState",
    "Planned",
    "gateway_plans",
    "plan_request",
    "plan_window",
    "requested_plan",
    "TIMESTAMP",
    "SERVER",
    "GPS",
    "ANYTIME",
    "IMME_LATENCY_NS",
]
