"""A real redis-server per test (see redis_support.py): cheap to start (tens of ms) and no state leaks between
tests, including the ones that stop and restart it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_support import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(password="test-redis-password") as server:
        yield server
