"""Structured, rate-limited logs: an input flood cannot flood the log."""

from __future__ import annotations

import logging

import orjson

from gatewayserver.logs import JsonFormatter, RateLimit, TextFormatter


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("gatewayserver.server", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_rate_limit_keeps_a_sample_and_reports_what_it_left_out():
    now = [0.0]
    limit = RateLimit(burst=3, window=10.0, clock=lambda: now[0])
    passed = [limit.filter(_record("uplink dropped")) for _ in range(100)]
    assert passed.count(True) == 3
    assert limit.filter(_record("gateway connected"))  # other messages have their own budget
    now[0] = 10.0
    record = _record("uplink dropped")
    assert limit.filter(record)
    assert record.suppressed_similar == 97


def test_formatters_render_the_extras():
    record = _record("gateway connected", gateway_id="gtw-1", remote="192.0.2.1")
    text = TextFormatter().format(record)
    assert "gateway connected gateway_id=gtw-1 remote=192.0.2.1" in text
    doc = orjson.loads(JsonFormatter().format(record))
    assert doc["msg"] == "gateway connected" and doc["gateway_id"] == "gtw-1" and doc["level"] == "info"


def test_addresses_print_as_operators_write_them():
    from gatewayserver.logs import format_address

    assert format_address(("192.0.2.1", 1700)) == "192.0.2.1:1700"
    assert format_address(("2001:db8::1", 1700, 0, 0)) == "[2001:db8::1]:1700"
    assert format_address("already text") == "already text"


def test_grpc_debug_chatter_stays_out_at_debug_level():
    from gatewayserver import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.setup("debug", "text")
        assert logging.getLogger("gatewayserver").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("grpc._cython.cygrpc").isEnabledFor(logging.DEBUG)  # "Loaded running loop"
        assert logging.getLogger("grpc._cython.cygrpc").isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:], root.level = saved
