"""Calling another instance: where it is (its registration in Redis), one gRPC channel per instance, the cluster
key on every call, a deadline on every call, and every failure turned into an error that names the instance.

The internal service (`service.py`) lives on each instance's public gRPC port; its methods carry the public API's
own messages (a forwarded ScheduleDownlink is the Network Server's `DownlinkMessage`), as the workers' internal
API does, and an error the owner raised comes back as that same `GsError` (name, code, attributes, details).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import grpc

from gatewayserver.errors import GsError
from gatewayserver.workers.peers import typed_error_of
from gatewayserver.workers.wire import identity

from . import metrics
from .records import MAX_RECORD, err_instance_unavailable, instance_key

if TYPE_CHECKING:  # pragma: no cover
    from .redis_link import RedisLink

SERVICE = "gs.cluster.v1.Instance"
SCHEDULE_DOWNLINK = f"/{SERVICE}/ScheduleDownlink"
CONNECTION_STATS = f"/{SERVICE}/ConnectionStats"
GATEWAY_INFO = f"/{SERVICE}/GatewayInfo"
AUTH_SCHEME = "ClusterKey"

#: Deadline of a forwarded call: a Network Server's ScheduleDownlink must be answered well within an RX1 delay.
CALL_DEADLINE = 5.0
#: How long an instance's address is used before it is looked up again.
ADDRESS_CACHE_S = 5.0

_CHANNEL_OPTIONS = [
    # A restarted instance is called again within a second, not after grpc's default backoff of up to 2 minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 16 << 20),
]


def remote_error(instance: str, exc: grpc.aio.AioRpcError) -> GsError:
    """The owner's own typed error if it sent one, else `instance_unavailable` with grpc's reason."""
    typed = typed_error_of(exc, instance=instance)
    if typed is not None:
        return typed
    code = exc.code()
    return err_instance_unavailable(instance, f"{code.name if code else 'UNKNOWN'}: {exc.details() or ''}".strip())


class Instances:
    """The other instances, found through their registrations (`gs:instance:<id>`)."""

    def __init__(self, link: RedisLink, cluster_key: str, *, tls: bool = False) -> None:
        self.link = link
        self.tls = tls
        self._addresses: dict[str, tuple[str, float]] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._calls: dict[tuple[str, str], grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        self._metadata = (("authorization", f"{AUTH_SCHEME} {cluster_key}"),)  # never logged

    async def address_of(self, instance: str) -> str:
        cached = self._addresses.get(instance)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            raw = await self.link.client.get(instance_key(instance))
        except Exception as exc:
            self.link.failed("instance_lookup", exc)
            metrics.FORWARDS_FAILED.labels("redis_unavailable").inc()
            raise err_instance_unavailable(instance, "its address cannot be looked up: Redis unreachable") from None
        self.link.succeeded()
        if not raw or len(raw) > MAX_RECORD:
            self._addresses.pop(instance, None)
            metrics.FORWARDS_FAILED.labels("instance_unregistered").inc()
            raise err_instance_unavailable(instance, "its registration expired: the instance is down")
        address = raw.decode(errors="replace")
        self._addresses[instance] = (address, time.monotonic() + ADDRESS_CACHE_S)
        return address

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            if self.tls:
                channel = grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(), options=_CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
            self._channels[address] = channel
        return channel

    async def unary(self, instance: str, method: str, request: bytes, *, deadline: float = CALL_DEADLINE) -> bytes:
        """Call `method` on `instance`; raises the owner's `GsError`, or `instance_unavailable`."""
        address = await self.address_of(instance)
        call = self._calls.get((address, method))
        if call is None:
            call = self._calls[(address, method)] = self._channel(address).unary_unary(
                method, request_serializer=identity, response_deserializer=identity
            )
        label = method.rpartition("/")[2]
        try:
            response: bytes = await call(request, metadata=self._metadata, timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            metrics.FORWARDED_CALLS.labels(label, code.name if code else "UNKNOWN").inc()
            error = remote_error(instance, exc)
            if error.name == "instance_unavailable":
                metrics.FORWARDS_FAILED.labels("instance_unavailable").inc()
                self._addresses.pop(instance, None)  # it may come back elsewhere
            raise error from None
        metrics.FORWARDED_CALLS.labels(label, "OK").inc()
        return response

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        self._calls.clear()
        for channel in channels.values():
            await channel.close()


__all__ = ["CALL_DEADLINE", "CONNECTION_STATS", "GATEWAY_INFO", "Instances", "SCHEDULE_DOWNLINK", "SERVICE"]
