"""What the HTTP server answers to requests it refuses before any handler runs, without echoing or logging them.

aiohttp's own error path (`RequestHandler.handle_error`) logs the parser's exception with a traceback, and the
parser puts the offending bytes into the exception's message: an `Authorization` header over the line limit
(8190 bytes) reached the log with the key ID and most of its secret, and the same text went back as the 400 body.
Header values, the request line and raw request bytes are attacker-chosen and may carry secrets, so here a refused
request is described only by a fixed reason, its HTTP status and the peer address: the exception's text is never
formatted, logged or sent. Each refusal is counted (`gs_api_http_rejected_total{reason}`) and logged through the
rate limit like every other bad input.

aiohttp has no public hook for this error path, so `GuardedAppRunner` swaps in a `RequestHandler` subclass; the
tests in tests/api/test_api_http_guard.py fail if a new aiohttp version changes the path.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, InvalidHeader, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from gatewayserver.errors import INTERNAL, INVALID_ARGUMENT, RESOURCE_EXHAUSTED

from . import metrics

log = logging.getLogger(__name__)

#: aiohttp's limits (its defaults, made explicit so the docs can name them): bytes per request line or header
#: field, and header fields per request.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128


def classify(status: int, exc: BaseException | None) -> tuple[str, int, int, str]:
    """(reason label, HTTP status, gRPC code, public message) for a request aiohttp refused with `exc`.

    Only the exception's type (and aiohttp's fixed messages, compared, never copied) decide; its text may hold
    request bytes.
    """
    if isinstance(exc, LineTooLong):
        return (
            "header_too_large", 431, INVALID_ARGUMENT,
            f"request line or header field larger than {MAX_FIELD_SIZE} bytes",
        )
    if isinstance(exc, BadHttpMethod):
        return "bad_method", 400, INVALID_ARGUMENT, "malformed HTTP request (bad method)"
    if isinstance(exc, InvalidHeader):
        return "invalid_header", 400, INVALID_ARGUMENT, "malformed HTTP request (invalid header field)"
    if isinstance(exc, HttpProcessingError):
        if exc.message == "Too many headers received":
            return "too_many_headers", 431, INVALID_ARGUMENT, f"more than {MAX_HEADERS} header fields"
        if exc.code == 413:
            return "body_too_large", 413, RESOURCE_EXHAUSTED, "request body too large"
        return "malformed", 400, INVALID_ARGUMENT, "malformed HTTP request"
    if status == 413:
        return "body_too_large", 413, RESOURCE_EXHAUSTED, "request body too large"
    if 400 <= status < 500:
        return "malformed", status, INVALID_ARGUMENT, "malformed HTTP request"
    return "internal", 500, INTERNAL, "internal error"


def error_body(code: int, message: str) -> bytes:
    """grpc-gateway's error shape, like every other error of the API."""
    return orjson.dumps({"code": code, "message": message, "details": []})


def count_and_log(reason: str, status: int, remote: str | None, **extra: Any) -> None:
    metrics.http_rejected.labels(reason).inc()
    log.warning("refused HTTP request", extra={"reason": reason, "status": status, "remote": remote, **extra})


class GuardedRequestHandler(RequestHandler):
    """aiohttp's protocol with an error path that neither logs nor echoes the request."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        reason, status, code, public = classify(status, exc)
        if reason == "internal":
            # A bug of ours, not bad input: keep the traceback, under an ID the caller can quote. The formatter
            # redacts key material from it (gatewayserver.logs) as a second line of defence.
            correlation_id = secrets.token_hex(16)
            metrics.http_rejected.labels(reason).inc()
            log.error(
                "internal error in HTTP request",
                exc_info=exc,
                extra={"correlation_id": correlation_id, "path": request.path},
            )
        else:
            count_and_log(reason, status, request.remote)
        if request.writer.output_size > 0:  # part of a response is out: the connection is all we can end
            raise ConnectionError("response already started")
        response = web.Response(status=status, body=error_body(code, public), content_type="application/json")
        response.force_close()
        return response


class GuardedServer(Server):
    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """`web.AppRunner` whose connections use `GuardedRequestHandler`."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        if type(server) is not Server:  # pragma: no cover - an aiohttp we were not tested with
            raise RuntimeError(f"unexpected aiohttp server class {type(server).__name__}")
        server.__class__ = GuardedServer
        return server
