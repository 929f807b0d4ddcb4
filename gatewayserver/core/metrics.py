"""Metrics of the gateway connection core: connections per frontend, connects and disconnects.

The per-uplink and per-downlink counters the core also updates are declared in `gatewayserver/metrics.py`; these
are the ones about connections, whatever frontend a gateway uses (`protocol` is the frontend's name).
"""

from prometheus_client import Counter, Gauge

GATEWAYS_CONNECTED = Gauge("gs_gateways_connected", "Gateways with a live connection.", ["protocol"])
GATEWAY_CONNECTS = Counter("gs_gateway_connects_total", "Gateway connections opened.", ["protocol"])
GATEWAY_DISCONNECTS = Counter("gs_gateway_disconnects_total", "Gateway connections closed.", ["reason"])
