"""The Redis health core and the cluster options, without I/O."""

from __future__ import annotations

import pytest

from gatewayserver.cluster.health import RedisHealth
from gatewayserver.cluster.identity import advertise_address, instance_id
from gatewayserver.config import ConfigError, parse_redis_url, redact_url, resolve

S = 1_000_000_000


def test_first_outcome_sets_state_without_a_recovery() -> None:
    health = RedisHealth()
    assert health.succeeded(1 * S) is None  # "connected" at start-up is not a recovery
    assert health.up is True and health.report() is None


def test_one_failure_is_down_then_one_success_is_back_with_the_outage_length() -> None:
    health = RedisHealth()
    health.succeeded(0)
    down = health.failed(10 * S, "ConnectionError: refused")
    assert down is not None and not down.up and down.reason == "ConnectionError: refused"
    assert health.failed(11 * S, "TimeoutError: timed out") is None  # logged once per outage
    report = health.report()
    assert report is not None and report["part"] == "redis" and report["reason"] == "TimeoutError: timed out"
    back = health.succeeded(25 * S)
    assert back is not None and back.up and back.down_for_ns == 15 * S
    assert health.report() is None


def test_timeouts_need_three_in_a_row() -> None:
    """A saturated instance reads Redis' replies late: isolated timeouts must not flap the state."""
    health = RedisHealth()
    health.succeeded(0)
    for round_start in range(0, 9, 3):  # timeout, timeout, success: never three in a row
        assert health.failed((round_start + 1) * S, "TimeoutError", soft=True) is None
        assert health.failed((round_start + 2) * S, "TimeoutError", soft=True) is None
        assert health.succeeded((round_start + 3) * S) is None
    assert health.up is True
    assert health.failed(20 * S, "TimeoutError", soft=True) is None
    assert health.failed(21 * S, "TimeoutError", soft=True) is None
    down = health.failed(22 * S, "TimeoutError", soft=True)
    assert down is not None and not down.up and health.up is False


def test_down_at_start_is_one_transition() -> None:
    health = RedisHealth()
    assert health.failed(0, "refused") is not None
    assert health.failed(S, "refused") is None


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://:pw@redis.example.com:6380/3", "redis://user:pw@[::1]:6379", "redis://r"],
)
def test_redis_urls_accepted(url: str) -> None:
    assert parse_redis_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:6379", "redis://"),
        ("127.0.0.1:6379", "redis://"),
        ("redis://:6379/0", "host"),
        ("redis://h:99999/0", "port"),
        ("redis://h:6379/zero", "database"),
    ],
)
def test_redis_urls_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_redis_url(url)


def test_password_never_shown_by_config() -> None:
    assert redact_url("redis://:hunter2@redis.example.com:6379/2") == "redis://<redacted>@redis.example.com:6379/2"
    assert redact_url("rediss://u:hunter2@[::1]:6380") == "rediss://<redacted>@[::1]:6380"
    assert redact_url("redis://redis.example.com") == "redis://redis.example.com"
    config = resolve({"redis_url": "redis://:hunter2@r.example.com:6379/0"}, environ={})
    shown = config.to_dict()["redis_url"]
    assert "hunter2" not in shown and "r.example.com:6379" in shown


def test_identity_defaults() -> None:
    config = resolve({"grpc_listen": "10.0.0.5:1884"}, environ={})
    assert advertise_address(config) == "10.0.0.5:1884"
    assert instance_id(config)  # the host name
    wildcard = resolve({"grpc_listen": "0.0.0.0:1884"}, environ={})
    assert advertise_address(wildcard) == ""
    explicit = resolve({"grpc_listen": "0.0.0.0:1884", "cluster_advertise_address": "gs-a.internal:1884",
                        "instance_id": "gs-a"}, environ={})
    assert advertise_address(explicit) == "gs-a.internal:1884" and instance_id(explicit) == "gs-a"
    with pytest.raises(ConfigError, match="instance_id"):
        resolve({"instance_id": "has space"}, environ={})
