"""Round-trip times between the server and a gateway (PULL_RESP sent -> TX_ACK received).

They decide how early a downlink must be handed over: a forwarder needs the PULL_RESP before the transmit time
minus the ~30 ms its jit queue uses to load the radio, so the lead time grows with the one-way delay (RTT/2).
Only recent samples count: old ones describe a network path that may no longer exist.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MS = 1_000_000
MAX_SAMPLES = 20
MAX_SAMPLE_AGE = 30 * 60 * 1_000_000_000
MIN_SAMPLES_FOR_LEAD_TIME = 5
DEFAULT_LEAD_TIME = 130 * MS
FORWARDER_MARGIN = 30 * MS


@dataclass(frozen=True, slots=True)
class RTTSummary:
    min: int
    max: int
    median: int
    p90: int
    count: int


def _percentile(sorted_values: list[int], fraction_num: int, fraction_den: int) -> int:
    """Nearest-rank percentile: the smallest value with at least num/den of the samples at or below it."""
    rank = -(-len(sorted_values) * fraction_num // fraction_den)  # ceil
    return sorted_values[max(rank, 1) - 1]


class RTTStats:
    """The last 20 RTT samples younger than 30 min; all times in ns.

    The summary is cached: every scheduling decision asks for the minimum lead time, but samples change only on
    `record` (one per TX_ACK) and when the oldest one ages out, so the sort runs once per change, not per call.
    """

    __slots__ = ("_samples", "_summary", "_lead_time", "_valid_until")

    def __init__(self) -> None:
        self._samples: deque[tuple[int, int]] = deque(maxlen=MAX_SAMPLES)
        self._summary: RTTSummary | None = None
        self._lead_time = DEFAULT_LEAD_TIME
        # The cache holds for every `now` <= this (the oldest sample's expiry); -1: nothing cached.
        self._valid_until = -1

    def record(self, rtt: int, at: int) -> None:
        if rtt < 0:
            raise ValueError("negative round-trip time")
        self._samples.append((at, rtt))
        self._valid_until = -1

    def _prune(self, now: int) -> None:
        samples = self._samples
        while samples and now - samples[0][0] > MAX_SAMPLE_AGE:
            samples.popleft()
            self._valid_until = -1

    def values(self, now: int) -> list[int]:
        self._prune(now)
        return [rtt for _, rtt in self._samples]

    def _refresh(self, now: int) -> None:
        values = sorted(self.values(now))
        if not values:
            self._summary = None
            self._lead_time = DEFAULT_LEAD_TIME
            self._valid_until = 1 << 127  # no sample can age out until the next record
            return
        n = len(values)
        median = (values[(n - 1) // 2] + values[n // 2]) // 2
        summary = self._summary = RTTSummary(values[0], values[-1], median, _percentile(values, 9, 10), n)
        if n < MIN_SAMPLES_FOR_LEAD_TIME:
            self._lead_time = DEFAULT_LEAD_TIME
        else:
            self._lead_time = max(DEFAULT_LEAD_TIME, summary.p90 // 2 + FORWARDER_MARGIN)
        self._valid_until = self._samples[0][0] + MAX_SAMPLE_AGE

    def stats(self, now: int) -> RTTSummary | None:
        if now > self._valid_until:
            self._refresh(now)
        return self._summary

    def minimum_lead_time(self, now: int) -> int:
        if now > self._valid_until:
            self._refresh(now)
        return self._lead_time


__all__ = ["RTTStats", "RTTSummary", "DEFAULT_LEAD_TIME", "MAX_SAMPLES", "MAX_SAMPLE_AGE"]
