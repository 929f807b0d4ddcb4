"""Fixtures shared by the workers' end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from workers_support import NetworkServerThread


@pytest.fixture(scope="module")
def ns() -> Iterator[NetworkServerThread]:
    """One stand-in Network Server per test module, on its own loop so it outlives each test's loop."""
    thread = NetworkServerThread().start()
    yield thread
    thread.stop()
