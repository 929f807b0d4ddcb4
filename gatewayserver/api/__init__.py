"""Operator and cluster APIs: gRPC (`Gs`, `NsGs`, `Events`, `GatewayConfigurationService`, health, reflection)
and HTTP (`/api/v3/...`, `/metrics`, `/healthz`, `/readyz`).

The daemon starts both with `ApiServers`:

    api = ApiServers(gateway_server, bus, KeyStore(config.keys_file),
                     ApiSettings(cluster_keys=[...], gcs=GcsSettings(udp_port=1700)),
                     grpc_listen="0.0.0.0:1884", http_listen="0.0.0.0:1885")
    await api.start()      # binds both; api.grpc.port / api.http.port are the bound ports
    ...
    await api.stop()

`gateway_server` must satisfy `GatewayServerLike` (see `core.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .core import ApiCore, ApiSettings, GatewayServerLike, MqttAddresses
from .gcs import GcsSettings
from .keys import KeyStore, Principal
from .streams import StreamSlots

if TYPE_CHECKING:
    from .grpc_server import GatewayLinks


class ListenError(Exception):
    """An API listener could not bind `listen`; `cause` is what the socket layer said."""

    def __init__(self, api: str, listen: str, cause: BaseException) -> None:
        super().__init__(f"{api} API {listen}: {cause}")
        self.api = api
        self.listen = listen
        self.cause = cause


@dataclass
class TlsFiles:
    cert_file: str
    key_file: str


class ApiServers:
    """Both API servers around one `ApiCore`."""

    def __init__(
        self,
        gateway_server: GatewayServerLike,
        bus: object,
        keys: KeyStore,
        settings: ApiSettings | None = None,
        *,
        grpc_listen: str | None = "0.0.0.0:1884",
        http_listen: str | None = "0.0.0.0:1885",
        grpc_tls: TlsFiles | None = None,
        http_tls: TlsFiles | None = None,
        ready: Callable[[], object] | None = None,
        links: GatewayLinks | None = None,
        reuse_port: bool = False,
        metrics: Callable[[], Awaitable[bytes]] | None = None,
        stream_slots: StreamSlots | None = None,
    ) -> None:
        """`reuse_port`: bind with SO_REUSEPORT, so the worker processes of one daemon serve the same ports.
        `stream_slots`: a worker's open-stream counter, shared with its internal server (see `ApiCore`)."""
        from .grpc_server import GrpcServer
        from .http_server import HttpServer

        self.core = ApiCore(gateway_server, bus, keys, settings, stream_slots=stream_slots)  # type: ignore[arg-type]
        self.grpc = (
            GrpcServer(
                self.core,
                grpc_listen,
                tls_cert_file=grpc_tls.cert_file if grpc_tls else None,
                tls_key_file=grpc_tls.key_file if grpc_tls else None,
                links=links,
                options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
            )
            if grpc_listen
            else None
        )
        self.http = (
            HttpServer(
                self.core,
                http_listen,
                tls_cert_file=http_tls.cert_file if http_tls else None,
                tls_key_file=http_tls.key_file if http_tls else None,
                ready=ready,
                reuse_port=reuse_port,
                metrics=metrics,
            )
            if http_listen
            else None
        )

    async def start(self) -> None:
        """Bind both; a listener that cannot bind raises `ListenError` and leaves nothing running behind it."""
        if self.grpc is not None:
            try:
                await self.grpc.start()
            except (OSError, RuntimeError) as exc:  # grpc reports a failed bind as RuntimeError, without errno
                await self.grpc.server.stop(None)
                raise ListenError("grpc", self.grpc.listen, exc) from exc
        if self.http is not None:
            try:
                await self.http.start()
            except OSError as exc:
                await self.http.stop()
                if self.grpc is not None:  # a started grpc.aio server outliving the loop logs a traceback at exit
                    await self.grpc.stop(0)
                raise ListenError("http", self.http.listen, exc) from exc

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self.grpc is not None:
            await self.grpc.stop()


__all__ = [
    "ApiCore",
    "ApiServers",
    "ApiSettings",
    "GatewayServerLike",
    "GcsSettings",
    "MqttAddresses",
    "KeyStore",
    "ListenError",
    "Principal",
    "TlsFiles",
]
