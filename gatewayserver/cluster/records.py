"""What instances keep in Redis about gateways and about each other: key names, record values, and the errors a
call about another instance's gateway can end with.

Keys (every one expires; nothing here outlives its owner by more than its expiry):

- `gs:gw:<gateway id>:owner`: the owner record, JSON `{"instance", "worker", "since"}`; expires after the
  connection expiry, renewed while the gateway is connected;
- `gs:gw:<gateway id>:stats`: the owner's serialized `GatewayConnectionStats`; the connection expiry from the last
  write;
- `gs:instance:<instance id>`: the instance's advertise address `host:port`; `INSTANCE_TTL_MS`, renewed by a
  heartbeat every `HEARTBEAT_S`.

Channel `gs:moved`: JSON `{"gateway_id", "instance", "worker"}`, published by a new owner that overwrote another
owner's record; the previous owner disconnects its own connection of that gateway.

The owner record's exact bytes identify one connection (`since` is its connection time), so a compare-and-delete
by an old connection never removes the record of a newer one, here or elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from gatewayserver.errors import UNAVAILABLE, GsError

PREFIX = "gs:"
MOVED_CHANNEL = PREFIX + "moved"
#: How long an instance's registration lives without a heartbeat, and how often the heartbeat renews it.
INSTANCE_TTL_MS = 30_000
HEARTBEAT_S = 10.0

NS = "pkg/gatewayserver/cluster"

#: Bounds on what is read back from Redis (shared, but a bug or a stranger writing there must not cost memory).
MAX_RECORD = 1024
MAX_GATEWAY_ID = 36


def owner_key(gateway_id: str) -> str:
    return f"{PREFIX}gw:{gateway_id}:owner"


def stats_key(gateway_id: str) -> str:
    return f"{PREFIX}gw:{gateway_id}:stats"


def instance_key(instance: str) -> str:
    return f"{PREFIX}instance:{instance}"


@dataclass(frozen=True, slots=True)
class Owner:
    """An owner record: which instance (and, with `--workers`, which worker of it) holds the gateway since when."""

    instance: str
    worker: int
    since_ns: int

    def encode(self) -> bytes:
        return orjson.dumps({"instance": self.instance, "worker": self.worker, "since": self.since_ns})

    @staticmethod
    def decode(raw: bytes | None) -> Owner | None:
        """The record, or None for a missing or unreadable one (treated as "no owner")."""
        if not raw or len(raw) > MAX_RECORD:
            return None
        try:
            doc = orjson.loads(raw)
            return Owner(str(doc["instance"]), int(doc["worker"]), int(doc["since"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def moved_notice(gateway_id: str, owner: Owner) -> bytes:
    return orjson.dumps({"gateway_id": gateway_id, "instance": owner.instance, "worker": owner.worker})


def parse_moved_notice(raw: bytes) -> tuple[str, str] | None:
    """(gateway id, new owner instance) of a notice, or None when it is not one."""
    if not isinstance(raw, bytes | str) or len(raw) > MAX_RECORD:
        return None
    try:
        doc = orjson.loads(raw)
        gateway_id, instance = doc["gateway_id"], doc["instance"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(gateway_id, str) or not isinstance(instance, str) or not 0 < len(gateway_id) <= MAX_GATEWAY_ID:
        return None
    return gateway_id, instance


# --- errors ------------------------------------------------------------------------------------------------------


def err_redis_unavailable(gateway_id: str, reason: str) -> GsError:
    """The gateway is not connected here, and which instance it is connected to cannot be looked up."""
    return GsError(
        NS, "redis_unavailable",
        "gateway `{gateway_uid}` is not connected to this instance, and Redis, which says which instance it is "
        "connected to, is unreachable ({reason}); calls for this instance's own gateways still work",
        code=UNAVAILABLE, attributes={"gateway_uid": gateway_id, "reason": reason},
    )


def err_instance_unavailable(instance: str, reason: str) -> GsError:
    """The instance owning the gateway did not answer (down, restarting, or its address unreachable)."""
    return GsError(
        NS, "instance_unavailable",
        "instance `{instance}`, which the gateway is connected to, is not answering ({reason}); the gateway "
        "reconnects to another instance if it is down",
        code=UNAVAILABLE, attributes={"instance": instance, "reason": reason},
    )


__all__ = [
    "HEARTBEAT_S",
    "INSTANCE_TTL_MS",
    "MOVED_CHANNEL",
    "Owner",
    "err_instance_unavailable",
    "err_redis_unavailable",
    "instance_key",
    "moved_notice",
    "owner_key",
    "parse_moved_notice",
    "stats_key",
]
