"""grpc.aio server hosting `Gs`, `GtwGs`, `NsGs`, `Events`, `GatewayConfigurationService`, health and reflection.

Operators call `Gs`/`Events`/`GatewayConfigurationService` with `authorization: Bearer <API key>`; a Network
Server calls `NsGs` with `authorization: ClusterKey <hex>`; a gateway calls `GtwGs` with its own key and its
gateway ID in the metadata `id`. Every failure leaves as a gRPC status carrying the reference's `ErrorDetails`.
`GtwGs.LinkGateway` is authorised here and then served by the gRPC gateway frontend the daemon passes in as
`links` (this module does not import frontends); without one it answers UNIMPLEMENTED.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from gatewayserver.errors import UNIMPLEMENTED, GsError
from gatewayserver.ttnpb import (
    events_pb2,
    events_pb2_grpc,
    gateway_configuration_pb2,
    gateway_configuration_pb2_grpc,
    gateway_pb2,
    gatewayserver_pb2,
    gatewayserver_pb2_grpc,
    identifiers_pb2,
    messages_pb2,
    mqtt_pb2,
    regional_pb2,
)

from . import metrics
from .core import ApiCore
from .errors import grpc_status

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    "ttn.lorawan.v3.Gs",
    "ttn.lorawan.v3.GtwGs",
    "ttn.lorawan.v3.NsGs",
    "ttn.lorawan.v3.Events",
    "ttn.lorawan.v3.GatewayConfigurationService",
)

T = TypeVar("T")


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    return _metadata(context, "authorization")


_STATUS_BY_CODE = {status.value[0]: status for status in grpc.StatusCode}


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    code, message, trailers = grpc_status(exc)
    status = _STATUS_BY_CODE.get(code, grpc.StatusCode.UNKNOWN)
    metrics.count_request("grpc", method, status.name)
    await context.abort(status, message, trailing_metadata=trailers)


async def _unary(
    context: grpc.aio.ServicerContext, method: str, call: Callable[[], Awaitable[T]]
) -> T:
    try:
        result = await call()
    except Exception as exc:
        await _abort(context, exc, method)
        raise  # unreachable: abort raises
    metrics.count_request("grpc", method, "OK")
    return result


class GsService(gatewayserver_pb2_grpc.GsServicer):
    def __init__(self, core: ApiCore) -> None:
        self.core = core

    async def GetGatewayConnectionStats(
        self, request: identifiers_pb2.GatewayIdentifiers, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GatewayConnectionStats:
        async def call() -> gateway_pb2.GatewayConnectionStats:
            principal = self.core.authenticate(_authorization(context), "grpc")
            return await self.core.get_connection_stats(principal, request.gateway_id)

        return await _unary(context, "Gs/GetGatewayConnectionStats", call)

    async def BatchGetGatewayConnectionStats(
        self, request: gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest, context: grpc.aio.ServicerContext
    ) -> gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse:
        async def call() -> gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse:
            principal = self.core.authenticate(_authorization(context), "grpc")
            return await self.core.batch_get_connection_stats(principal, request)

        return await _unary(context, "Gs/BatchGetGatewayConnectionStats", call)


class GatewayLinks(Protocol):
    """What serves `LinkGateway` streams once authorised (`gatewayserver.io.grpc.frontend.GrpcFrontend`)."""

    def entry_for(self, gateway_id: str) -> Any:
        """The gateway's registry entry; raises `GsError` (NOT_FOUND) when it may not connect."""

    async def serve(
        self, entry: Any, requests: AsyncIterator[gatewayserver_pb2.GatewayUp], context: grpc.aio.ServicerContext
    ) -> None:
        """Run the link until it ends."""


class GtwGsService(gatewayserver_pb2_grpc.GtwGsServicer):
    """The calls a gateway makes for itself."""

    def __init__(self, core: ApiCore, links: GatewayLinks | None = None) -> None:
        self.core = core
        self.links = links

    async def LinkGateway(
        self, request_iterator: AsyncIterator[gatewayserver_pb2.GatewayUp], context: grpc.aio.ServicerContext
    ) -> None:
        """Rights first (no work for an unauthorised caller), then the frontend serves the stream."""
        method = "GtwGs/LinkGateway"
        try:
            principal = self.core.authenticate(_authorization(context), "grpc")
            gateway_id = self.core.link_gateway(principal, _metadata(context, "id"))
            if self.links is None:
                raise GsError(
                    "pkg/gatewayserver", "link_unavailable", "gateway links are not served", code=UNIMPLEMENTED
                )
            entry = self.links.entry_for(gateway_id)
        except Exception as exc:
            await _abort(context, exc, method)
            return
        metrics.count_request("grpc", method, "OK")
        await self.links.serve(entry, request_iterator, context)

    async def GetConcentratorConfig(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> regional_pb2.ConcentratorConfig:
        async def call() -> regional_pb2.ConcentratorConfig:
            principal = self.core.authenticate(_authorization(context), "grpc")
            return await self.core.concentrator_config(principal, _metadata(context, "id"))

        return await _unary(context, "GtwGs/GetConcentratorConfig", call)

    async def GetMQTTConnectionInfo(
        self, request: identifiers_pb2.GatewayIdentifiers, context: grpc.aio.ServicerContext
    ) -> mqtt_pb2.MQTTConnectionInfo:
        async def call() -> mqtt_pb2.MQTTConnectionInfo:
            principal = self.core.authenticate(_authorization(context), "grpc")
            return self.core.mqtt_connection_info(principal, request.gateway_id, v2=False)

        return await _unary(context, "GtwGs/GetMQTTConnectionInfo", call)

    async def GetMQTTV2ConnectionInfo(
        self, request: identifiers_pb2.GatewayIdentifiers, context: grpc.aio.ServicerContext
    ) -> mqtt_pb2.MQTTConnectionInfo:
        async def call() -> mqtt_pb2.MQTTConnectionInfo:
            principal = self.core.authenticate(_authorization(context), "grpc")
            return self.core.mqtt_connection_info(principal, request.gateway_id, v2=True)

        return await _unary(context, "GtwGs/GetMQTTV2ConnectionInfo", call)


_SCHEDULE_DOWNLINK = "NsGs/ScheduleDownlink"


class NsGsService(gatewayserver_pb2_grpc.NsGsServicer):
    def __init__(self, core: ApiCore) -> None:
        self.core = core

    async def ScheduleDownlink(
        self, request: messages_pb2.DownlinkMessage, context: grpc.aio.ServicerContext
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        """`_unary` written out: one call per downlink, so no closure and no coroutine of its own per call."""
        try:
            self.core.check_cluster_key(_authorization(context), "grpc")
            result = await self.core.schedule_downlink(request)
        except Exception as exc:
            await _abort(context, exc, _SCHEDULE_DOWNLINK)
            raise  # unreachable: abort raises
        metrics.count_request("grpc", _SCHEDULE_DOWNLINK, "OK")
        return result


class EventsService(events_pb2_grpc.EventsServicer):
    def __init__(self, core: ApiCore) -> None:
        self.core = core

    async def Stream(
        self, request: events_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.Event]:
        try:
            principal = self.core.authenticate(_authorization(context), "grpc")
            start, subscription = await self.core.start_stream(principal, request)
        except Exception as exc:
            await _abort(context, exc, "Events/Stream")
            return
        metrics.count_request("grpc", "Events/Stream", "OK")
        try:
            yield start.to_proto()
            while True:
                batch = await subscription.next_batch()
                if not batch:
                    return
                for event in batch:
                    yield event.to_proto()
        except GsError as exc:  # buffer_full: tell the client why its stream ends
            await _abort(context, exc, "Events/Stream")
        finally:
            subscription.close()

    async def FindRelated(
        self, request: events_pb2.FindRelatedEventsRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.FindRelatedEventsResponse:
        async def call() -> events_pb2.FindRelatedEventsResponse:
            principal = self.core.authenticate(_authorization(context), "grpc")
            return await self.core.find_related(principal, request)

        return await _unary(context, "Events/FindRelated", call)


class GatewayConfigurationService(gateway_configuration_pb2_grpc.GatewayConfigurationServiceServicer):
    def __init__(self, core: ApiCore) -> None:
        self.core = core

    async def GetGatewayConfiguration(
        self, request: gateway_configuration_pb2.GetGatewayConfigurationRequest, context: grpc.aio.ServicerContext
    ) -> gateway_configuration_pb2.GetGatewayConfigurationResponse:
        async def call() -> gateway_configuration_pb2.GetGatewayConfigurationResponse:
            principal = self.core.authenticate(_authorization(context), "grpc")
            return await self.core.gateway_configuration(principal, request)

        return await _unary(context, "GatewayConfigurationService/GetGatewayConfiguration", call)


def server_credentials(cert_file: str, key_file: str) -> grpc.ServerCredentials:
    with open(key_file, "rb") as f:
        key = f.read()
    with open(cert_file, "rb") as f:
        cert = f.read()
    return grpc.ssl_server_credentials([(key, cert)])


class GrpcServer:
    """Owns the grpc.aio server; `await start()` binds (port 0 → ephemeral, see `port`), `await stop()`."""

    def __init__(
        self,
        core: ApiCore,
        listen: str = "0.0.0.0:1884",
        *,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        options: list[tuple[str, Any]] | None = None,
        links: GatewayLinks | None = None,
    ) -> None:
        self.core = core
        self.listen = listen
        self.tls = (tls_cert_file, tls_key_file) if tls_cert_file and tls_key_file else None
        self.server = grpc.aio.server(options=options or [("grpc.so_reuseport", 0)])
        self.health = HealthServicer()
        self.port: int | None = None

        gatewayserver_pb2_grpc.add_GsServicer_to_server(GsService(core), self.server)
        gatewayserver_pb2_grpc.add_GtwGsServicer_to_server(GtwGsService(core, links), self.server)
        gatewayserver_pb2_grpc.add_NsGsServicer_to_server(NsGsService(core), self.server)
        events_pb2_grpc.add_EventsServicer_to_server(EventsService(core), self.server)
        gateway_configuration_pb2_grpc.add_GatewayConfigurationServiceServicer_to_server(
            GatewayConfigurationService(core), self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server,
        )

    async def start(self) -> int:
        if self.tls is not None:
            self.port = self.server.add_secure_port(self.listen, server_credentials(*self.tls))
        else:
            self.port = self.server.add_insecure_port(self.listen)
        if not self.port:
            raise OSError(f"could not bind gRPC listener {self.listen}")
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.debug("gRPC API listening", extra={"listen": self.listen, "port": self.port, "tls": bool(self.tls)})
        return self.port

    async def stop(self, grace: float | None = 2.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


__all__ = ["GatewayLinks", "GrpcServer", "SERVICE_NAMES", "server_credentials"]
