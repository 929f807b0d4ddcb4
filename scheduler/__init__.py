"""Sans-I/O downlink scheduler: time-on-air, concentrator clock, RTT, emissions, duty cycle, decisions.

Everything takes explicit times (int nanoseconds, see docs/design.md) and returns values or raises the typed
errors of `scheduler.errors`; nothing here reads a clock or touches a socket.
"""

from .clock import ConcentratorClock, rx_window_times, rx_window_timestamps, to_timestamp, unwrap_timestamp
from .dutycycle import HOUR, PRIORITY_SHARE, SubBandDutyCycle, TxSchedulePriority
from .eirp import check_dwell_time, check_payload_size
from .emissions import EmissionTimeline, TimeOffAir
from .errors import (
    Conflict,
    DutyCycle,
    DwellTime,
    InvalidBandwidth,
    InvalidBitRate,
    InvalidCodingRate,
    InvalidFrequency,
    InvalidPayloadSize,
    InvalidSpreadingFactor,
    NoAbsoluteGatewayTime,
    NoClockSync,
    NoServerTime,
    OverlappingSubBands,
    SchedulerError,
    SubBandNotFound,
    ToaError,
    TooLate,
    TooLong,
)
from .rtt import RTTStats, RTTSummary
from .scheduler import Emission, GatewayScheduler, SubBand, SubBandStats
from .toa import fsk_time_on_air, lora_time_on_air, lrfhss_time_on_air

__all__ = [
    "ConcentratorClock",
    "rx_window_timestamps",
    "rx_window_times",
    "to_timestamp",
    "unwrap_timestamp",
    "HOUR",
    "PRIORITY_SHARE",
    "SubBandDutyCycle",
    "TxSchedulePriority",
    "check_dwell_time",
    "check_payload_size",
    "EmissionTimeline",
    "TimeOffAir",
    "SchedulerError",
    "ToaError",
    "InvalidBandwidth",
    "InvalidBitRate",
    "InvalidCodingRate",
    "InvalidFrequency",
    "InvalidPayloadSize",
    "InvalidSpreadingFactor",
    "TooLate",
    "Conflict",
    "DutyCycle",
    "SubBandNotFound",
    "NoClockSync",
    "NoAbsoluteGatewayTime",
    "NoServerTime",
    "DwellTime",
    "OverlappingSubBands",
    "TooLong",
    "RTTStats",
    "RTTSummary",
    "Emission",
    "GatewayScheduler",
    "SubBand",
    "SubBandStats",
    "fsk_time_on_air",
    "lora_time_on_air",
    "lrfhss_time_on_air",
]
