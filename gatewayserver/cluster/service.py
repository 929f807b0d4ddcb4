"""The internal service other instances call on this instance's public gRPC port (`gs.cluster.v1.Instance`).

Every call must carry `authorization: ClusterKey <hex>`; the key is checked in constant time (`ApiCore.
check_cluster_key`) before the request is even parsed, and a missing or wrong key is refused (UNAUTHENTICATED /
PERMISSION_DENIED), counted in `gs_cluster_calls_refused_total{reason}` and logged without the key. The caller
(another instance) has already checked its own caller's rights or cluster key.

Calls are answered from this instance's gateway server as the public API would (with `--workers`, the routed view
that finds the owning worker), never from the cluster router: a forwarded call is never forwarded again, so two
instances with different views of an owner cannot bounce a call between them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import orjson

from gatewayserver.api.core import resolve
from gatewayserver.api.errors import grpc_status
from gatewayserver.errors import GsError
from gatewayserver.ttnpb import gatewayserver_pb2, messages_pb2

from . import metrics
from gatewayserver.workers.wire import identity

from .instances import SERVICE

log = logging.getLogger(__name__)

_STATUS_BY_CODE = {status.value[0]: status for status in grpc.StatusCode}
#: A forwarded stats batch is one public batch (at most 100 gateways); a little slack, but bounded.
MAX_STATS_BATCH = 200


class InstanceService:
    """`handler()` is added to the public grpc.aio server before it starts."""

    def __init__(self, serving: Any, check_cluster_key: Callable[[str | None, str], None]) -> None:
        self.serving = serving
        self.check_cluster_key = check_cluster_key

    def handler(self) -> grpc.GenericRpcHandler:
        unary: dict[str, Callable[[bytes], Awaitable[bytes]]] = {
            "ScheduleDownlink": self._schedule_downlink,
            "ConnectionStats": self._connection_stats,
            "GatewayInfo": self._gateway_info,
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    self._guarded(call), request_deserializer=identity, response_serializer=identity
                )
                for name, call in unary.items()
            },
        )

    def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        authorization: str | None = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode(errors="replace")
        try:
            self.check_cluster_key(authorization, "grpc")
        except GsError:
            reason = "missing" if not authorization else "wrong"
            metrics.CALLS_REFUSED.labels(reason).inc()
            log.warning("internal cluster call refused", extra={"reason": f"{reason} cluster key",
                                                                "peer": context.peer()})
            raise

    def _guarded(
        self, call: Callable[[bytes], Awaitable[bytes]]
    ) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                self._authenticate(context)
                return await call(request)
            except Exception as exc:
                code, message, trailers = grpc_status(exc)
                await context.abort(_STATUS_BY_CODE.get(code, grpc.StatusCode.UNKNOWN), message,
                                    trailing_metadata=trailers)
                raise  # unreachable: abort raises

        return handler

    async def _schedule_downlink(self, request: bytes) -> bytes:
        message = messages_pb2.DownlinkMessage.FromString(request)
        response = await self.serving.schedule_downlink(message)
        return bytes(response.SerializeToString())

    async def _connection_stats(self, request: bytes) -> bytes:
        req = gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest.FromString(request)
        ids = [ids.gateway_id for ids in req.gateway_ids][:MAX_STATS_BATCH]
        response = gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse()
        batch = getattr(self.serving, "connection_stats_batch", None)
        if batch is not None:
            found = await batch(ids)
        else:
            found = {}
            for gateway_id in ids:
                stats = await resolve(self.serving.connection_stats(gateway_id))
                if stats is not None:
                    found[gateway_id] = stats
        for gateway_id, stats in found.items():
            response.entries[gateway_id].CopyFrom(stats)
        return bytes(response.SerializeToString())

    async def _gateway_info(self, request: bytes) -> bytes:
        """The frequency plans of a gateway connected here without an entry in the caller's registry."""
        gateway_id = request.decode(errors="replace")[:64]
        try:
            plans = await resolve(self.serving.gateway_frequency_plans(gateway_id))
        except GsError:
            return orjson.dumps(None)
        return orjson.dumps({"frequency_plan_ids": [plan.id for plan in plans]})


__all__ = ["InstanceService", "MAX_STATS_BATCH"]
