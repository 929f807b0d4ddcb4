"""This process as one of several instances sharing a Redis: the parts of gateway ownership and cross-instance
calls, built and started by the daemon only when `redis_url` is set.

- `OwnershipSync` (owners.py) keeps this process's gateways' owner records, connection stats and the instance's
  registration in Redis, and lets go of gateways other instances took;
- `ClusterGatewayServer` (router.py) is what the public APIs are given: it finds a gateway's owner in Redis and
  calls that instance (`Instances`, instances.py);
- `InstanceService` (service.py) answers the other instances' calls on the public gRPC port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .identity import advertise_address, instance_id
from .instances import Instances
from .owners import OwnershipSync
from .router import ClusterGatewayServer
from .service import InstanceService

if TYPE_CHECKING:  # pragma: no cover
    from gatewayserver.config import Config
    from gatewayserver.server import GatewayServer

    from .redis_link import RedisLink

_NS = 1_000_000_000


class ClusterNode:
    def __init__(
        self, config: Config, link: RedisLink, server: GatewayServer, serving: Any, *, worker: int = 0
    ) -> None:
        """`server`: this process's own gateway server (its connections); `serving`: what the APIs used before
        (the same, or the workers' routed view), which answers the other instances' calls."""
        self.instance = instance_id(config)
        self.instances = Instances(link, config.cluster_key, tls=bool(config.grpc_tls_cert))
        self.owners = OwnershipSync(
            link, server.core, instance=self.instance, worker=worker, advertise=advertise_address(config),
            ttl_ns=int(config.connection_expires * _NS),
        )
        self.gateway_server = ClusterGatewayServer(serving, server, link, self.instances, self.instance)
        self.serving = serving

    def attach(self, grpc_server: Any, check_cluster_key: Any) -> None:
        """Add the internal service to the public grpc.aio server (before it starts)."""
        service = InstanceService(self.serving, check_cluster_key)
        grpc_server.add_generic_rpc_handlers((service.handler(),))

    def start(self) -> None:
        self.owners.start()

    async def stop(self) -> None:
        """After the daemon disconnected its gateways: their records are given back, then the channels close."""
        await self.owners.stop()
        await self.instances.close()


__all__ = ["ClusterNode"]
