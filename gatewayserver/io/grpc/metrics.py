"""Metrics of the gRPC gateway frontend (`GtwGs.LinkGateway`).

Uplinks it refuses are counted with the core's `gs_uplinks_dropped_total{reason}` like the UDP frontend's; this
counts the rest of a link's traffic that goes no further: oversized statuses, unusable TX acknowledgments, and
downlinks dropped because the gateway stopped reading its stream (after which it is disconnected).
"""

from ...counters import LoopCounter

MESSAGES_DROPPED = LoopCounter(
    "gs_grpc_messages_dropped_total",
    "Gateway link messages not handled: status, TX acknowledgments from gateways, downlinks to them; by reason.",
    ["reason"],
)
