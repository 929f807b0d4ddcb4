"""Loopback ports for servers under test, from outside the kernel's ephemeral range.

A port found by binding to port 0 comes from the ephemeral range (32768-60999 by default), the same range every
outgoing connection and every other `bind(0)` of the tests running in parallel takes its ports from: between
the test picking it and the daemon binding it, a client's connection elsewhere can take it, and the daemon then
refuses to start ("address already in use"; seen in a fresh-clone CI run). So the ports here come from the
12,000 below that range, split between the pytest-xdist workers (worker i of n takes the ports ≡ i mod n) and
walked in order from a random start, each checked free by binding it once.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator

_SPAN = 12_000


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _candidates() -> Iterator[int]:
    high = _ephemeral_low()
    low = max(1024, high - _SPAN)
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    mine = [port for port in range(low, high) if port % count == index % count]
    start = random.randrange(len(mine))
    return itertools.cycle(mine[start:] + mine[:start])


_NEXT = _candidates()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port of `kind` (SOCK_STREAM or SOCK_DGRAM) that nothing is bound to right now."""
    for _ in range(1000):
        port = next(_NEXT)
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, kind) as s:  # every candidate taken: fall back to the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
