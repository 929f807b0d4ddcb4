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


def test_formatters_cut_key_secrets_and_tokens_out_of_every_line():
    key = (
        "NNSXS.OAIHMHZ43XWF5LQM4BC5ND3FADJ2LBAV3PIWZNY."
        "SIOY5R3VGGQRSCMKJV4Z7TDJNZ7OE326RZPSURKWTP7OPKBUNNGWOSGYL2QCGJD7"
    )
    secret = key.rsplit(".", 1)[1]
    try:
        raise ValueError(f"Got more than 8190 bytes when reading: b'Bearer {key[:80]}...'")
    except ValueError as exc:
        error = exc
    exc_info = (ValueError, error, None)
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "bad %s", (key,), exc_info)
    record.header = f"authorization: ClusterKey 00112233445566778899aabbccddeeff and {key}"
    for formatter in (TextFormatter(), JsonFormatter()):
        text = formatter.format(record)
        assert "OAIHMHZ43XWF5LQM4BC5ND3FADJ2LBAV3PIWZNY" in text  # the public key ID may stay
        assert not any(secret[i : i + 8] in text for i in range(len(secret) - 7)), text
        assert "00112233" not in text
        assert "<redacted>" in text


def test_static_fields_mark_every_line_of_a_worker():
    from gatewayserver.logs import StaticFields

    record = logging.LogRecord("gatewayserver", logging.INFO, __file__, 1, "gateway connected", (), None)
    record.gateway_id = "gw-1"
    assert StaticFields({"worker": 2}).filter(record)
    assert TextFormatter().format(record).endswith("gateway connected gateway_id=gw-1 worker=2")
    assert orjson.loads(JsonFormatter().format(record))["worker"] == 2
    own = logging.LogRecord("gatewayserver", logging.INFO, __file__, 1, "x", (), None)
    own.worker = 0  # a line about another worker (the supervisor's) keeps its own value
    StaticFields({"worker": 2}).filter(own)
    assert own.worker == 0


def test_hot_path_lines_are_counted_once_whether_admitted_or_left_out(capsys):
    """`logs.admit` asks the handler's rate limit before a downlink's line is built; what it leaves out costs no
    record, and the count of lines left out is exactly what the filter alone would have reported."""
    from gatewayserver import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs._rate_limit)
    log = logging.getLogger("gatewayserver.core.connection")
    try:
        logs.setup("info", "json")
        now = [0.0]
        assert logs._rate_limit is not None
        logs._rate_limit._clock = lambda: now[0]
        built = 0
        for _ in range(50):
            extra = logs.admit(log, logging.INFO, "downlink sent")
            if extra is not None:
                built += 1
                log.info("downlink sent", extra={"gateway_id": "gtw-1", **extra})
        log.info("downlink sent", extra={"gateway_id": "gtw-1"})  # an ordinary call shares the same budget
        now[0] = 10.0
        extra = logs.admit(log, logging.INFO, "downlink sent")
        assert extra is not None
        log.info("downlink sent", extra={"gateway_id": "gtw-1", **extra})
        assert logs.admit(log, logging.DEBUG, "downlink sent") is None  # level off: nothing to build
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logs._rate_limit = saved[2]
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert built == 20  # the burst; the other 30 were never built
    assert len(lines) == 21
    assert lines[-1]["suppressed_similar"] == 31  # 30 left out before being built, 1 by the filter
    assert all("gs_rate_admitted" not in line for line in lines)
    assert lines[0]["gateway_id"] == "gtw-1"


def test_hot_path_lines_are_all_built_when_another_handler_takes_records(caplog):
    """A handler without the rate limit (caplog here) must see every line: `admit` then leaves it to the filters."""
    from gatewayserver import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs._rate_limit)
    log = logging.getLogger("gatewayserver.core.connection")
    try:
        logs.setup("info", "json")
        root.handlers[:] = [caplog.handler]  # as a test harness or an embedding application may do
        caplog.set_level(logging.INFO, logger=log.name)
        for _ in range(50):
            extra = logs.admit(log, logging.INFO, "downlink sent")
            assert extra == {}
            log.info("downlink sent", extra=extra)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logs._rate_limit = saved[2]
    assert len([r for r in caplog.records if r.getMessage() == "downlink sent"]) == 50
