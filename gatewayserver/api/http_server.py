"""aiohttp server: the reference REST bindings under /api/v3, plus /metrics, /healthz and /readyz.

Request bodies are parsed with `jsonpb` (so TTS clients' camelCase, hex/base64 and string integers work),
responses are rendered in TTS's JSON shape, and every error is grpc-gateway's `{"code", "message", "details"}`
with the matching HTTP status.

The events stream writes `{"result": <event>}` per event, separated by a blank line for `Accept:
text/event-stream` and by a newline otherwise, exactly like the reference. Each event's JSON is built once and
shared by all subscribers, and a subscriber's writes are coalesced (`flush_interval`) so a hundred streams at a
thousand events per second cost a few writes per stream per tick instead of one per event.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from gatewayserver import jsonpb
from gatewayserver.errors import RESOURCE_EXHAUSTED, GsError
from gatewayserver.ttnpb import (
    events_pb2,
    gateway_configuration_pb2,
    gatewayserver_pb2,
)

from . import metrics
from .core import ApiCore
from .errors import http_error, stream_error
from .http_guard import (
    MAX_FIELD_SIZE,
    MAX_HEADERS,
    MAX_LINE_SIZE,
    GuardedAppRunner,
    count_and_log,
    error_body,
)
from .keys import Principal

log = logging.getLogger(__name__)

JSON = "application/json"
#: How often an idle stream checks that its client is still there.
IDLE_CHECK_SECONDS = 15.0
#: Largest request body accepted on any route; larger ones get 413 before a handler or key check runs.
MAX_BODY_SIZE = 1 << 20


def _json_response(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON)


def error_response(exc: BaseException, method: str) -> web.Response:
    status, body = http_error(exc)
    metrics.count_request("http", method, str(status))
    return _json_response(status, body)


def _too_large() -> web.Response:
    response = web.Response(
        status=413, body=error_body(RESOURCE_EXHAUSTED, f"request body larger than {MAX_BODY_SIZE} bytes"),
        content_type=JSON,
    )
    response.force_close()  # the rest of the body is not read
    return response


def _authorization(request: web.Request) -> str | None:
    return request.headers.get("Authorization")


def split_listen(listen: str) -> tuple[str, int]:
    """`0.0.0.0:1885`, `[::]:1885`, `:1885` → (host, port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class HttpServer:
    """Owns the aiohttp app; `await start()` binds (port 0 → ephemeral, see `port`), `await stop()`."""

    def __init__(
        self,
        core: ApiCore,
        listen: str = "0.0.0.0:1885",
        *,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        ready: Callable[[], Any] | None = None,
        flush_interval: float = 0.02,
        reuse_port: bool = False,
        metrics: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        self.core = core
        self.listen = listen
        self.reuse_port = reuse_port  # workers of one daemon share the port (SO_REUSEPORT)
        self.ssl_context: ssl.SSLContext | None = None
        if tls_cert_file and tls_key_file:
            self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ssl_context.load_cert_chain(tls_cert_file, tls_key_file)
        self.ready = ready
        #: The exposition for `/metrics`; None: this process's registry (a worker of several merges its peers').
        self.metrics_source = metrics
        self.flush_interval = flush_interval
        self.port: int | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard_middleware], client_max_size=MAX_BODY_SIZE)
        r = app.router
        r.add_get("/api/v3/gs/gateways/{gateway_id}/connection/stats", self.get_connection_stats)
        r.add_post("/api/v3/gs/gateways/connection/stats", self.batch_get_connection_stats)
        r.add_get("/api/v3/gs/gateways/connections", self.list_connections)
        r.add_get("/api/v3/gs/gateways/{gateway_id}/mqtt-connection-info", self.mqtt_connection_info)
        r.add_get("/api/v3/gs/gateways/{gateway_id}/mqttv2-connection-info", self.mqttv2_connection_info)
        r.add_post("/api/v3/events", self.stream_events)
        r.add_get("/api/v3/events/related", self.find_related)
        r.add_get("/api/v3/gcs/gateways/{gateway_id}/semtechudp/global_conf.json", self.global_conf)
        r.add_get("/api/v3/gcs/gateways/configuration/{gateway_id}/{format}/{filename}", self.gateway_configuration)
        r.add_get(
            "/api/v3/gcs/gateways/configuration/{gateway_id}/{format}/{type}/{filename}", self.gateway_configuration
        )
        r.add_get("/metrics", self.metrics)
        r.add_get("/healthz", self.healthz)
        r.add_get("/readyz", self.readyz)
        return app

    @web.middleware
    async def _guard_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Refuse oversized bodies on every route before any work; answer unknown paths like grpc-gateway (JSON,
        code 5 / 12), not with aiohttp's text pages."""
        length = request.content_length
        try:
            if length is not None and length > MAX_BODY_SIZE:
                raise web.HTTPRequestEntityTooLarge(MAX_BODY_SIZE, length)
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            # Declared too large, or a chunked body that grew past the bound while a handler read it.
            count_and_log("body_too_large", 413, request.remote, path=request.path)
            return _too_large()
        except web.HTTPNotFound:
            return _json_response(404, {"code": 5, "message": "Not Found", "details": []})
        except web.HTTPMethodNotAllowed:
            return _json_response(405, {"code": 12, "message": "Method Not Allowed", "details": []})

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> int:
        host, port = split_listen(self.listen)
        self._runner = GuardedAppRunner(
            self.app,
            access_log=None,  # an access log line would carry the request line, which may hold secrets
            handler_cancellation=True,
            shutdown_timeout=1.0,
            max_line_size=MAX_LINE_SIZE,
            max_field_size=MAX_FIELD_SIZE,
            max_headers=MAX_HEADERS,
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, host, port, ssl_context=self.ssl_context, reuse_port=self.reuse_port or None
        )
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        log.debug("HTTP API listening", extra={"listen": self.listen, "port": self.port, "tls": bool(self.ssl_context)})
        return self.port

    async def stop(self) -> None:
        for task in list(self._streams):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _unary(
        self, request: web.Request, method: str, call: Callable[[Principal], Awaitable[bytes]]
    ) -> web.Response:
        """Authenticate, run `call` (which checks the rights it needs) and answer its JSON, or the error body."""
        try:
            principal = self.core.authenticate(_authorization(request), "http")
            body = await call(principal)
        except web.HTTPRequestEntityTooLarge:
            raise  # answered 413 by the middleware
        except Exception as exc:
            return error_response(exc, method)
        metrics.count_request("http", method, "200")
        return web.Response(body=body, content_type=JSON)

    # --- Gs ----------------------------------------------------------------------------------------------------

    async def get_connection_stats(self, request: web.Request) -> web.Response:
        async def call(principal: Principal) -> bytes:
            return jsonpb.to_json(await self.core.get_connection_stats(principal, request.match_info["gateway_id"]))

        return await self._unary(request, "Gs/GetGatewayConnectionStats", call)

    async def batch_get_connection_stats(self, request: web.Request) -> web.Response:
        async def call(principal: Principal) -> bytes:
            body = jsonpb.parse(await request.read(), gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest)
            return jsonpb.to_json(await self.core.batch_get_connection_stats(principal, body))  # type: ignore[arg-type]

        return await self._unary(request, "Gs/BatchGetGatewayConnectionStats", call)

    async def list_connections(self, request: web.Request) -> web.Response:
        """Not in the reference: every connected gateway, for `gatewayserver gateways`."""

        async def call(principal: Principal) -> bytes:
            return orjson.dumps({"gateways": await self.core.list_connections(principal)})

        return await self._unary(request, "Gs/ListConnections", call)

    # --- GtwGs ------------------------------------------------------------------------------------------------

    async def mqtt_connection_info(self, request: web.Request) -> web.Response:
        async def call(principal: Principal) -> bytes:
            gateway_id = request.match_info["gateway_id"]
            return jsonpb.to_json(self.core.mqtt_connection_info(principal, gateway_id, v2=False))

        return await self._unary(request, "GtwGs/GetMQTTConnectionInfo", call)

    async def mqttv2_connection_info(self, request: web.Request) -> web.Response:
        async def call(principal: Principal) -> bytes:
            gateway_id = request.match_info["gateway_id"]
            return jsonpb.to_json(self.core.mqtt_connection_info(principal, gateway_id, v2=True))

        return await self._unary(request, "GtwGs/GetMQTTV2ConnectionInfo", call)

    # --- Events (unary) -----------------------------------------------------------------------------------------

    async def find_related(self, request: web.Request) -> web.Response:
        async def call(principal: Principal) -> bytes:
            req = events_pb2.FindRelatedEventsRequest(correlation_id=request.query.get("correlation_id", ""))
            return jsonpb.to_json(await self.core.find_related(principal, req))

        return await self._unary(request, "Events/FindRelated", call)

    # --- GatewayConfigurationService -------------------------------------------------------------------------

    async def _configuration(
        self, request: web.Request, principal: Principal, fmt: str, type_: str, filename: str
    ) -> gateway_configuration_pb2.GetGatewayConfigurationResponse:
        req = gateway_configuration_pb2.GetGatewayConfigurationRequest(format=fmt, type=type_, filename=filename)
        req.gateway_ids.gateway_id = request.match_info["gateway_id"]
        return await self.core.gateway_configuration(principal, req, request_host=request.host)

    async def global_conf(self, request: web.Request) -> web.Response:
        """The file itself, ready for `curl -o global_conf.json`."""

        async def call(principal: Principal) -> bytes:
            return (await self._configuration(request, principal, "semtechudp", "", "global_conf.json")).contents

        return await self._unary(request, "GatewayConfigurationService/global_conf.json", call)

    async def gateway_configuration(self, request: web.Request) -> web.Response:
        """The reference gRPC-gateway binding: `{"contents": <base64 of the file>}`."""

        async def call(principal: Principal) -> bytes:
            info = request.match_info
            response = await self._configuration(
                request, principal, info["format"], info.get("type", ""), info["filename"]
            )
            return jsonpb.to_json(response)

        return await self._unary(request, "GatewayConfigurationService/GetGatewayConfiguration", call)

    # --- Events ------------------------------------------------------------------------------------------------

    async def stream_events(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:  # `stop` cancels it, also while it waits for the other workers
            self._streams.add(task)
        try:
            return await self._stream_events(request)
        finally:
            if task is not None:
                self._streams.discard(task)

    async def _stream_events(self, request: web.Request) -> web.StreamResponse:
        method = "Events/Stream"
        try:
            principal = self.core.authenticate(_authorization(request), "http")
            body = self.core.parse_stream_request(principal, await request.read())
            start, subscription = await self.core.start_stream(principal, body)
        except web.HTTPRequestEntityTooLarge:
            raise  # answered 413 by the middleware
        except Exception as exc:
            return error_response(exc, method)
        metrics.count_request("http", method, "200")

        sse = "text/event-stream" in request.headers.get("Accept", "")
        separator = b"\n\n" if sse else b"\n"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream" if sse else JSON,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(b'{"result":' + start.to_json() + b"}" + separator)
            await self._pump(request, response, subscription, separator)
        except GsError as exc:  # buffer_full after the queued events were written
            try:
                await response.write(orjson.dumps(stream_error(exc)) + separator)
            except (ConnectionError, RuntimeError):
                pass
        except (ConnectionError, RuntimeError):
            pass  # client went away
        finally:
            subscription.close()
        return response

    async def _pump(
        self, request: web.Request, response: web.StreamResponse, subscription: Any, separator: bytes
    ) -> None:
        prefix, suffix = b'{"result":', b"}" + separator
        flush_interval = self.flush_interval
        while True:
            batch = await subscription.next_batch(timeout=IDLE_CHECK_SECONDS)
            if not batch:
                if subscription.closed:
                    if subscription.error is not None:
                        raise subscription.error
                    return
                transport = request.transport
                if transport is None or transport.is_closing():
                    return
                continue
            if flush_interval > 0 and subscription.pending() == 0:
                # Let a burst accumulate so one write carries many events.
                await asyncio.sleep(flush_interval)
                if subscription.pending():
                    batch += await subscription.next_batch()
            await response.write(b"".join([prefix + event.to_json() + suffix for event in batch]))

    # --- operations --------------------------------------------------------------------------------------------

    async def metrics(self, request: web.Request) -> web.Response:
        if self.metrics_source is not None:
            body = await self.metrics_source()
        else:
            body = generate_latest(REGISTRY)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        """Readiness, not liveness (that is /healthz). A mapping from `ready()` is answered as JSON, 503 unless
        its `ready` is true: the daemon names each failing part (a Network Server's address and gRPC code)."""
        result: Any = True
        if self.ready is not None:
            try:
                result = self.ready()
            except Exception:
                result = False
        if isinstance(result, dict):
            return _json_response(200 if result.get("ready") else 503, result)
        ready = bool(result)
        return web.Response(status=200 if ready else 503, text="ready\n" if ready else "not ready\n")
