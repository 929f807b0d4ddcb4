"""The test ports come from below the kernel's ephemeral range, distinct, and free when handed out."""

from __future__ import annotations

import socket

import free_ports
import pytest
from free_ports import _ephemeral_low, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_free() -> None:
    low = _ephemeral_low()
    ports = [free_port(socket.SOCK_STREAM if i % 2 else socket.SOCK_DGRAM) for i in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 <= port < low for port in ports), (low, ports)
    for port in ports[:10]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_a_taken_port_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    taken, spare = free_port(), free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        monkeypatch.setattr(free_ports, "_NEXT", iter([taken, spare]))
        assert free_port() == spare
