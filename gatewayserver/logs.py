"""Structured logging: every record carries its context as fields, in text (key=value) or JSON lines.

Code logs with `log.info("gateway connected", extra={"gateway_id": ...})`; the formatter renders the extras, so
operators can grep text logs and ship JSON logs to a collector without regexes.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

#: Set on a record whose rate limit `admit` already applied, so the handler's filter does not count it twice.
_ADMITTED = "gs_rate_admitted"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message", "asctime", "taskName", _ADMITTED,
}


# Second line of defence behind "never log a header value": whatever reaches a formatter (a library's exception
# text, a repr of request bytes) has credentials cut out. The API key's public ID (39 characters after `NNSXS.`)
# may stay; everything after it, and anything after `Bearer`/`ClusterKey`, goes.
_CREDENTIAL = re.compile(r"(?i)\b(bearer|clusterkey)(\s+)[^\s'\"\\,;]+")
_API_KEY = re.compile(r"(NNSXS\.(?:[A-Z2-7]{39}\.)?)[A-Z2-7.]+")
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """`text` without API key secrets or authorization tokens."""
    lower = text.lower()
    if "nnsxs" not in lower and "bearer" not in lower and "clusterkey" not in lower:
        return text
    text = _CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return _API_KEY.sub(lambda m: m.group(1) + REDACTED, text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [stamp, record.levelname.lower(), record.name, record.getMessage()]
        parts += [f"{key}={value}" for key, value in _extras(record).items()]
        text = " ".join(str(p) for p in parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_extras(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(doc, default=str).decode())


class RateLimit(logging.Filter):
    """At most `burst` records per message per `window` seconds; the rest are counted and reported once.

    Rejections of bad input are logged, and a gateway (or an attacker) can produce them thousands of times a
    second. The counters in /metrics keep the exact numbers; the log keeps a readable sample plus how many similar
    records were left out, so it cannot grow with the attack.
    """

    def __init__(self, burst: int = 20, window: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._clock = clock
        self._state: dict[tuple[str, str], list[float]] = {}  # key -> [window start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.__dict__.get(_ADMITTED):
            return True
        verdict = self.admit(record.name, str(record.msg))
        if verdict is None:
            return False
        if verdict:
            record.suppressed_similar = verdict
        return True

    def admit(self, name: str, msg: str) -> int | None:
        """Count one record of logger `name` with message `msg`: None when it is left out, else how many similar
        records were left out before it (usually 0)."""
        key = (name, msg)
        now = self._clock()
        state = self._state.get(key)
        if state is None or now - state[0] >= self.window:
            if len(self._state) > 10_000:  # message templates are few; this only guards against misuse
                self._state.clear()
            suppressed = int(state[2]) if state is not None else 0
            self._state[key] = [now, 1, 0]
            return suppressed
        if state[1] < self.burst:
            state[1] += 1
            return 0
        state[2] += 1
        return None


#: The rate limit of the handler `setup` installed (None before): `admit` consults it before a record is made.
_rate_limit: RateLimit | None = None


def _limits_every_handler(limit: RateLimit) -> bool:
    """Whether every handler a record reaches applies `limit` (someone may have replaced `setup`'s handler)."""
    handlers = logging.root.handlers
    return bool(handlers) and all(limit in handler.filters for handler in handlers)


def admit(logger: logging.Logger, level: int, msg: str) -> dict[str, Any] | None:
    """For a line logged on a hot path (one per downlink): whether it will be written, decided before it is built.

    A record costs tens of µs to make (the caller's fields, the record, the caller's frame), and at a thousand
    downlinks a second the rate limit leaves out nearly all of them anyway. None: the level is off or the line
    is over the rate limit (counted as left out, exactly as the handler's filter would); otherwise the `extra`
    fields to log it with, which tell the filter it was counted already. Use:

        extra = logs.admit(log, logging.INFO, "downlink sent")
        if extra is not None:
            log.info("downlink sent", extra={**fields, **extra})
    """
    if not logger.isEnabledFor(level):
        return None
    limit = _rate_limit
    if limit is None or not _limits_every_handler(limit):
        return {}  # some output is not rate-limited (tests, library use): build every line, the filters decide
    verdict = limit.admit(logger.name, msg)
    if verdict is None:
        return None
    extra: dict[str, Any] = {_ADMITTED: True}
    if verdict:
        extra["suppressed_similar"] = verdict
    return extra


def format_address(address: Any) -> str:
    """`host:port`, or `[v6-host]:port`: how operators write an address, not Python's tuple repr.

    Socket addresses arrive as `(host, port)` or, for IPv6, `(host, port, flowinfo, scope_id)`.
    """
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


# Loggers of libraries whose debug output drowns ours: grpc logs `Loaded running loop` on every call it handles.
# They stay at WARNING whatever --log-level says; GRPC_VERBOSITY/GRPC_TRACE turn grpc's own tracing on when needed.
QUIET_LOGGERS = ("grpc", "aiohttp.access", "asyncio")


class StaticFields(logging.Filter):
    """Adds the same fields to every record, e.g. `worker=2` in each line of one worker process, so the lines of
    several processes sharing one log can be told apart."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__()
        self.fields = dict(fields)

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self.fields.items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


def setup(level: str = "info", fmt: str = "text", static: dict[str, Any] | None = None) -> None:
    global _rate_limit
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _rate_limit = RateLimit()
    handler.addFilter(_rate_limit)
    if static:
        handler.addFilter(StaticFields(static))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
