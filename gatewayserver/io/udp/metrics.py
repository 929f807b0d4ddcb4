"""Metrics of the Semtech UDP frontend. Per-datagram ones are `LoopCounter`s (no lock per increment)."""

from ...core.metrics import GATEWAY_CONNECTS, GATEWAY_DISCONNECTS, GATEWAYS_CONNECTED
from ...counters import LoopCounter

__all__ = ["DATAGRAMS_DROPPED", "DATAGRAMS_RECEIVED", "GATEWAYS_CONNECTED", "GATEWAY_CONNECTS", "GATEWAY_DISCONNECTS"]
DATAGRAMS_RECEIVED = LoopCounter("gs_udp_datagrams_received_total", "Accepted datagrams by type.", ["type"])
DATAGRAMS_DROPPED = LoopCounter("gs_udp_datagrams_dropped_total", "Refused datagrams by reason.", ["reason"])
