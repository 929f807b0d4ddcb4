"""How an instance names itself to its peers: its instance ID and the gRPC address they call it at."""

from __future__ import annotations

import socket

from gatewayserver.config import Config

_WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def instance_id(config: Config) -> str:
    """`instance_id`, or the host name: unique per host, which is the common deployment (one instance a host)."""
    return config.instance_id or socket.gethostname()


def advertise_address(config: Config) -> str:
    """`cluster_advertise_address`, else `grpc_listen` when peers could dial it as it is (not a wildcard host, not
    port 0); "" when neither."""
    if config.cluster_advertise_address:
        return str(config.cluster_advertise_address)
    listen = str(config.grpc_listen or "")
    host, _, port = listen.rpartition(":")
    return "" if host in _WILDCARDS or port == "0" else listen


__all__ = ["advertise_address", "instance_id"]
