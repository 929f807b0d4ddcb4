"""Metrics of the upstream (Network Server) path."""

from prometheus_client import Counter, Gauge

from ..counters import LoopHistogram

# Observed once per call from the loop thread: a LoopHistogram, no lock per observation.
UPSTREAM_LATENCY = LoopHistogram(
    "gs_upstream_latency_seconds",
    "Duration of calls to the Network Server.",
    ["call"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
UPSTREAM_QUEUE_DEPTH = Gauge("gs_upstream_queue_depth", "Uplinks waiting for a free call slot.")
UPSTREAM_IN_FLIGHT = Gauge("gs_upstream_in_flight", "Calls to the Network Server under way.")
UPSTREAM_ERRORS = Counter("gs_upstream_errors_total", "Failed calls to the Network Server.", ["code"])
UPSTREAM_UP = Gauge(
    "gs_upstream_up",
    "1 while the Network Server at this address takes calls, 0 while it is failing (see /readyz).",
    ["address"],
)
