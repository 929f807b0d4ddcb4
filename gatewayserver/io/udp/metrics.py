"""Metrics of the Semtech UDP frontend. Per-datagram ones are `LoopCounter`s (no lock per increment)."""

from prometheus_client import Counter, Gauge

from ...counters import LoopCounter

GATEWAYS_CONNECTED = Gauge("gs_gateways_connected", "Gateways with a live connection.", ["protocol"])
GATEWAY_CONNECTS = Counter("gs_gateway_connects_total", "Gateway connections opened.", ["protocol"])
GATEWAY_DISCONNECTS = Counter("gs_gateway_disconnects_total", "Gateway connections closed.", ["reason"])
DATAGRAMS_RECEIVED = LoopCounter("gs_udp_datagrams_received_total", "Accepted datagrams by type.", ["type"])
DATAGRAMS_DROPPED = LoopCounter("gs_udp_datagrams_dropped_total", "Refused datagrams by reason.", ["reason"])
