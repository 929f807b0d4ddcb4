"""Metrics of the Gateway Server core: uplinks, status messages and downlinks.

Everything here is updated per uplink or per downlink from the event loop's thread, so these are
`counters.LoopCounter`/`LoopHistogram`s (no lock per update; see that module).
"""

from prometheus_client import Gauge

from .counters import LoopCounter, LoopHistogram

UPLINKS_RECEIVED = LoopCounter(
    "gs_uplinks_received_total",
    "Uplink messages translated from gateways' rxpk (entries that never became one count only as dropped).",
)
UPLINKS_FORWARDED = LoopCounter("gs_uplinks_forwarded_total", "Uplinks accepted by a Network Server or written out.")
UPLINKS_DROPPED = LoopCounter("gs_uplinks_dropped_total", "Uplinks not forwarded, by reason.", ["reason"])
STATUS_RECEIVED = LoopCounter("gs_status_received_total", "Gateway status messages received.")
DOWNLINKS_ATTEMPTED = LoopCounter("gs_downlinks_attempted_total", "ScheduleDownlink requests handled.")
DOWNLINKS_SENT = LoopCounter("gs_downlinks_sent_total", "Downlinks handed to a gateway (PULL_RESP sent).")
DOWNLINKS_FAILED = LoopCounter(
    "gs_downlinks_failed_total", "Downlinks that could not be scheduled or sent.", ["reason"]
)
TX_ACKS_RECEIVED = LoopCounter("gs_tx_acks_received_total", "TX acknowledgments from gateways, by result.", ["result"])
GATEWAY_RTT = LoopHistogram(
    "gs_gateway_rtt_seconds",
    "Round-trip time PULL_RESP to TX_ACK.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0),
)
SUB_BAND_UTILIZATION = Gauge(
    "gs_sub_band_utilization_ratio",
    "Highest share of a sub-band's duty-cycle limit in use across gateways (1 = at the limit).",
    ["sub_band"],
)
