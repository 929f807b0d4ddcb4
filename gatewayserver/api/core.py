"""What the gRPC and HTTP servers share: the contract with the daemon, authorisation, and the handlers.

Both transports parse their request into the same protobuf message, call the same method here and render the
result (or the `GsError`) their own way, so rights checks and validation cannot drift apart between them.
"""

from __future__ import annotations

import hmac
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable

import orjson
from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor

from gatewayserver import jsonpb
from gatewayserver.errors import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    PERMISSION_DENIED,
    UNAUTHENTICATED,
    UNIMPLEMENTED,
    GsError,
)
from gatewayserver.events import EventBackend, Subscription
from gatewayserver.events.definitions import EVENTS_STREAM_START, match_all, resolve_names
from gatewayserver.events.event import Event, new_ulid
from gatewayserver.ttnpb import (
    events_pb2,
    gateway_configuration_pb2,
    gateway_pb2,
    gatewayserver_pb2,
    messages_pb2,
    mqtt_pb2,
    regional_pb2,
)

from . import gcs, metrics, streams
from .concentrator import concentrator_config
from .keys import KeyStore, Principal, err_no_gateway_rights, public_auth_type

if TYPE_CHECKING:  # pragma: no cover
    from frequency_plans.loader import FrequencyPlan

log = logging.getLogger(__name__)

RIGHT_STATUS_READ = "RIGHT_GATEWAY_STATUS_READ"
RIGHT_TRAFFIC_READ = "RIGHT_GATEWAY_TRAFFIC_READ"
RIGHT_INFO = "RIGHT_GATEWAY_INFO"
RIGHT_LINK = "RIGHT_GATEWAY_LINK"

MAX_BATCH = 100

# The stubs type DESCRIPTOR as the pure-Python or the upb class; with the upb runtime the two are the same class.
_STATS_DESCRIPTOR = cast(Descriptor, gateway_pb2.GatewayConnectionStats.DESCRIPTOR)

#: Stream request errors that are refusals by a bound, and their `reason` in `gs_event_streams_refused_total`.
_STREAM_REFUSALS = {
    "pkg/events/grpc:too_many_identifiers": "too_many_identifiers",
    "pkg/events:too_many_names": "too_many_names",
    "pkg/events:too_many_patterns": "too_many_patterns",
    "pkg/events:name_too_long": "name_too_long",
    "pkg/events:invalid_regexp": "invalid_regexp",
    "pkg/events/grpc:too_many_streams_per_key": "streams_per_key",
    "pkg/events/grpc:too_many_streams": "streams_total",
}


T = TypeVar("T")


async def resolve(value: T | Awaitable[T]) -> T:
    """A daemon method's result, awaited if it is awaitable: the single-process daemon answers at once, a worker
    of several (`gatewayserver.workers.routing`) may have to ask the worker that owns the gateway."""
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


@runtime_checkable
class GatewayServerLike(Protocol):
    """What the APIs need from the daemon (`gatewayserver.server.GatewayServer`).

    `connection_stats`, `gateway_frequency_plans` and `connected_gateways` may return an awaitable instead of the
    value (a worker forwarding to another); an optional `connection_stats_batch(ids)` coroutine, when present,
    answers a batch at once."""

    def connection_stats(self, gateway_id: str) -> gateway_pb2.GatewayConnectionStats | None:
        """Stats of a connected or recently disconnected gateway; None if never seen (→ NOT_FOUND)."""

    async def schedule_downlink(self, msg: messages_pb2.DownlinkMessage) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        """NsGs.ScheduleDownlink; raises `GsError` with the reference's names and codes."""

    def gateway_frequency_plans(self, gateway_id: str) -> Sequence[FrequencyPlan]:
        """The plans of a registered or connected gateway, in registry order; empty (or a NOT_FOUND GsError) if
        unknown."""

    def connected_gateways(self) -> list[Any]:
        """For `gatewayserver gateways`."""


def err_not_connected(gateway_id: str) -> GsError:
    return GsError(
        "pkg/gatewayserver", "not_connected", "gateway `{gateway_uid}` not connected", code=NOT_FOUND,
        attributes={"gateway_uid": gateway_id},
    )


def err_gateway_not_registered(gateway_id: str) -> GsError:
    return GsError(
        "pkg/gatewayserver", "gateway_not_registered", "gateway `{gateway_uid}` is not registered", code=NOT_FOUND,
        attributes={"gateway_uid": gateway_id},
    )


def err_no_identifiers() -> GsError:
    return GsError("pkg/events/grpc", "no_identifiers", "no identifiers", code=INVALID_ARGUMENT)


def err_validation(field_name: str, reason: str) -> GsError:
    return GsError(
        "pkg/ttnpb", "validation", "invalid `{field}`: {reason}", code=INVALID_ARGUMENT,
        attributes={"field": field_name, "reason": reason},
    )


def err_unsupported_format(fmt: str, filename: str) -> GsError:
    return GsError(
        "pkg/gatewayconfigurationserver", "unsupported_format",
        "configuration `{format}/{filename}` is not available", code=NOT_FOUND,
        attributes={"format": fmt, "filename": filename},
    )


def err_no_configuration_provider() -> GsError:
    return GsError(
        "pkg/gatewayserver", "no_configuration_provider", "no configuration provider", code=UNIMPLEMENTED
    )


def err_no_gateway_id() -> GsError:
    return GsError(
        "pkg/gatewayserver", "no_gateway_id", "no gateway ID in the call metadata `id`", code=INVALID_ARGUMENT
    )


def err_no_cluster_key() -> GsError:
    return GsError("pkg/auth/cluster", "no_cluster_key", "no cluster key specified", code=UNAUTHENTICATED)


def err_cluster_auth_type(auth_type: str) -> GsError:
    auth_type = public_auth_type(auth_type)
    return GsError(
        "pkg/auth/cluster", "auth_type", "invalid authorization type `{auth_type}`", code=INVALID_ARGUMENT,
        attributes={"auth_type": auth_type},
    )


def err_cluster_key() -> GsError:
    return GsError("pkg/auth/cluster", "cluster_key", "invalid cluster key", code=PERMISSION_DENIED)


_GATEWAY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def check_gateway_id(gateway_id: str, field_name: str = "gateway_id") -> str:
    """The reference's ID rule (3–36 lowercase alphanumerics, single inner dashes), checked before any look-up."""
    if (
        not 3 <= len(gateway_id) <= 36
        or not set(gateway_id) <= _GATEWAY_ID_CHARS
        or gateway_id[0] == "-"
        or gateway_id[-1] == "-"
        or "--" in gateway_id
    ):
        raise err_validation(field_name, "must be 3-36 lowercase letters, digits and single dashes")
    return gateway_id


@dataclass(frozen=True)
class MqttAddresses:
    """What `GetMQTTConnectionInfo` (or its V2 twin) hands out: `host[:port]`, either may be empty."""

    public_address: str = ""
    public_tls_address: str = ""

    def __bool__(self) -> bool:
        return bool(self.public_address or self.public_tls_address)


@dataclass
class ApiSettings:
    """Knobs of the APIs; the daemon fills them from its configuration."""

    cluster_keys: Sequence[bytes] = ()
    #: Per-subscriber event buffer before the subscriber is dropped.
    stream_buffer: int = 1024
    #: What goes into generated packet-forwarder configurations.
    gcs: gcs.GcsSettings = field(default_factory=gcs.GcsSettings)
    #: Public MQTT addresses for `GtwGs.GetMQTTConnectionInfo` and `GetMQTTV2ConnectionInfo`; empty: none.
    mqtt: MqttAddresses = field(default_factory=MqttAddresses)
    mqtt_v2: MqttAddresses = field(default_factory=MqttAddresses)
    #: Gateways per stream request, open streams per API key and in total.
    stream_limits: streams.StreamLimits = field(default_factory=streams.StreamLimits)


class ApiCore:
    """The handlers behind `Gs`, `NsGs`, `Events` and `GatewayConfigurationService`."""

    def __init__(
        self,
        gateway_server: GatewayServerLike,
        bus: EventBackend,
        keys: KeyStore,
        settings: ApiSettings | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        stream_slots: streams.StreamSlots | None = None,
    ) -> None:
        """`stream_slots`: the open-stream counter to use; a worker of several passes the one its internal server
        shares (other workers' streams hold slots in it too), a single process gets its own."""
        self.gs = gateway_server
        self.bus = bus
        self.keys = keys
        self.settings = settings or ApiSettings()
        self.clock = clock
        self.stream_slots = stream_slots or streams.StreamSlots(self.settings.stream_limits)

    # --- auth ------------------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, api: str) -> Principal:
        return self.keys.authenticate(authorization, api)

    def check_cluster_key(self, authorization: str | None, api: str = "grpc") -> None:
        try:
            if not authorization:
                raise err_no_cluster_key()
            auth_type, _, value = authorization.strip().partition(" ")
            if auth_type.lower() != "clusterkey":
                raise err_cluster_auth_type(auth_type)
            try:
                presented = bytes.fromhex(value.strip())
            except ValueError:
                raise err_cluster_key() from None
            ok = False
            for key in self.settings.cluster_keys:
                ok |= hmac.compare_digest(presented, key)
            if not ok:
                raise err_cluster_key()
        except GsError:
            metrics.auth_failures.labels(api).inc()
            raise

    # --- Gs ----------------------------------------------------------------------------------------------------

    async def get_connection_stats(
        self, principal: Principal, gateway_id: str
    ) -> gateway_pb2.GatewayConnectionStats:
        check_gateway_id(gateway_id)
        principal.require(gateway_id, RIGHT_STATUS_READ)
        stats = await resolve(self.gs.connection_stats(gateway_id))
        if stats is None:
            raise err_not_connected(gateway_id)
        return stats

    async def list_connections(self, principal: Principal) -> list[dict[str, Any]]:
        """Connected gateways the caller may see (status-read right on each): our extension for operators."""
        gateways = await resolve(self.gs.connected_gateways())
        return [gw for gw in gateways if RIGHT_STATUS_READ in principal.rights_for(gw["gateway_id"])]

    async def batch_get_connection_stats(
        self, principal: Principal, request: gatewayserver_pb2.BatchGetGatewayConnectionStatsRequest
    ) -> gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse:
        ids = [g.gateway_id for g in request.gateway_ids]
        if not 1 <= len(ids) <= MAX_BATCH:
            raise err_validation("gateway_ids", f"between 1 and {MAX_BATCH} gateways")
        for i, gateway_id in enumerate(ids):
            check_gateway_id(gateway_id, f"gateway_ids[{i}].gateway_id")
        for gateway_id in ids:
            principal.require(gateway_id, RIGHT_STATUS_READ)
        mask = request.field_mask if request.HasField("field_mask") and request.field_mask.paths else None
        if mask is not None and not mask.IsValidForDescriptor(_STATS_DESCRIPTOR):
            raise err_validation("field_mask", "unknown field path")
        response = gatewayserver_pb2.BatchGetGatewayConnectionStatsResponse()
        batch = getattr(self.gs, "connection_stats_batch", None)
        found = await batch(ids) if batch is not None else {}
        for gateway_id in ids:
            stats = found.get(gateway_id) if batch is not None else self.gs.connection_stats(gateway_id)
            if stats is None:
                continue  # like the reference: gateways without stats are left out, not an error
            entry = response.entries[gateway_id]
            if mask is None:
                entry.CopyFrom(stats)
            else:
                mask.MergeMessage(stats, entry)
        return response

    # --- NsGs --------------------------------------------------------------------------------------------------

    async def schedule_downlink(
        self, msg: messages_pb2.DownlinkMessage
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        return await self.gs.schedule_downlink(msg)

    # --- Events ------------------------------------------------------------------------------------------------

    def open_stream(
        self, principal: Principal, request: events_pb2.StreamEventsRequest
    ) -> tuple[Event, Subscription]:
        """Validate and authorise a stream request; return the `events.stream.start` event and the subscription.

        Identifiers other than gateways are ignored (this daemon only has gateway events), so the documented
        command that also names an application works; at least one gateway is required.

        The order is the point: bounds that cost nothing (how many identifiers), then the rights for every gateway,
        and only then the `names`, whose regular expressions are the one costly part; a caller without rights
        never gets a pattern compiled. The stream's slot (per key and in total) is taken last and given back when
        the subscription closes. The servers call `start_stream`, which also waits for the other workers.
        """
        try:
            return self._open_stream(principal, request)
        except GsError as exc:
            _count_refusal(exc, principal)
            raise

    async def start_stream(
        self, principal: Principal, request: events_pb2.StreamEventsRequest
    ) -> tuple[Event, Subscription]:
        """`open_stream`, then wait until every source of the stream listens (`Subscription.ready`: at once in a
        single process). With several workers another worker may refuse the stream for the daemon-wide bounds
        (two workers admitting the last slot at once): that refusal is this request's, counted here once, and
        the subscription is closed, giving back every slot it took."""
        start, subscription = self.open_stream(principal, request)
        try:
            await subscription.ready()
        except BaseException:
            subscription.close()
            raise
        error = subscription.error
        if error is not None and subscription.closed and streams.is_limit_refusal(error):
            _count_refusal(error, principal)
            raise error
        return start, subscription

    def parse_stream_request(self, principal: Principal, raw: bytes) -> events_pb2.StreamEventsRequest:
        """An HTTP stream request body → the message, refusing too many identifiers before the message is built.

        Building a message from JSON is Python work per field: 20 bodies of 24,000 identifiers (1 MB each) held
        the loop for seconds before any bound could refuse them. Counting the decoded list costs nothing, and
        the identifier count is the first check `open_stream` makes anyway, so the order of errors is the same.
        """
        try:
            try:
                doc = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError as exc:
                raise jsonpb.JsonError(f"invalid JSON: {exc}") from exc
            identifiers = doc.get("identifiers") if isinstance(doc, dict) else None
            if isinstance(identifiers, list):
                streams.check_identifier_count(len(identifiers), self.settings.stream_limits)
        except GsError as exc:
            _count_refusal(exc, principal)
            raise
        return jsonpb.parse_dict(doc, events_pb2.StreamEventsRequest)  # type: ignore[return-value]

    def _open_stream(
        self, principal: Principal, request: events_pb2.StreamEventsRequest
    ) -> tuple[Event, Subscription]:
        limits = self.settings.stream_limits
        streams.check_identifier_count(len(request.identifiers), limits)
        gateway_ids: list[str] = []
        for ids in request.identifiers:
            if ids.WhichOneof("ids") == "gateway_ids":
                gateway_ids.append(check_gateway_id(ids.gateway_ids.gateway_id, "identifiers.gateway_ids.gateway_id"))
        if not gateway_ids:
            raise err_no_identifiers()
        rights = principal.rights_for_each(gateway_ids)
        for gateway_id, held in rights.items():
            if not held:
                raise err_no_gateway_rights(gateway_id)
        names = resolve_names(request.names)
        release = self.stream_slots.acquire(principal.key_id)
        try:
            now = self.clock()
            after_ns = request.after.ToNanoseconds() if request.HasField("after") else None
            subscription = self.bus.subscribe(
                rights.keys(),
                names.__contains__ if names is not None else match_all,
                self.settings.stream_buffer,
                rights=rights,
                tail=request.tail,
                after_ns=after_ns,
                now_ns=now,
                key_id=principal.key_id,
            )
        except BaseException:
            release()
            raise
        subscription.add_close_callback(release)
        data = None
        if names is not None:
            data = struct_pb2.Value()
            data.list_value.extend(sorted(names))
        start = Event(
            EVENTS_STREAM_START.name,
            now,
            tuple((g, None) for g in rights),
            data,
            (f"rpc:/ttn.lorawan.v3.Events/Stream:{new_ulid(now)}",),
            visibility=(),
        )
        return start, subscription

    async def find_related(
        self, principal: Principal, request: events_pb2.FindRelatedEventsRequest
    ) -> events_pb2.FindRelatedEventsResponse:
        """Events sharing a correlation id, from the in-memory history, limited to what the caller may see.

        The same visibility rule as streaming applies: an event is returned when the caller holds one of its
        visibility rights for one of its gateways.
        """
        correlation_id = request.correlation_id
        if not correlation_id or len(correlation_id) > 100:
            raise err_validation("correlation_id", "between 1 and 100 characters")
        response = events_pb2.FindRelatedEventsResponse()
        subscriptions: dict[str, Subscription] = {}
        for event in await self.bus.related_everywhere(correlation_id):
            for gateway_id, _ in event.gateway_ids:
                check = subscriptions.get(gateway_id)
                if check is None:
                    check = subscriptions[gateway_id] = Subscription(
                        [gateway_id], match_all, 1, rights={gateway_id: principal.rights_for(gateway_id)}
                    )
                if check.accepts(event, gateway_id):
                    response.events.append(event.to_proto())
                    break
        return response

    # --- GtwGs ------------------------------------------------------------------------------------------------

    async def concentrator_config(
        self, principal: Principal, gateway_id: str | None
    ) -> regional_pb2.ConcentratorConfig:
        """`GetConcentratorConfig`: the gateway is the one the caller links as (metadata `id`), with its link key."""
        if not gateway_id:
            raise err_no_gateway_id()
        check_gateway_id(gateway_id, "id")
        principal.require(gateway_id, RIGHT_LINK)
        plans = await resolve(self.gs.gateway_frequency_plans(gateway_id))
        if not plans:
            raise err_gateway_not_registered(gateway_id)
        return concentrator_config(plans)

    def link_gateway(self, principal: Principal, gateway_id: str | None) -> str:
        """`LinkGateway`: the gateway the caller links as (metadata `id`), which its key must hold the link right for.

        Checked before the stream does any work; returns the gateway ID.
        """
        if not gateway_id:
            raise err_no_gateway_id()
        check_gateway_id(gateway_id, "id")
        principal.require(gateway_id, RIGHT_LINK)
        return gateway_id

    def mqtt_connection_info(self, principal: Principal, gateway_id: str, *, v2: bool) -> mqtt_pb2.MQTTConnectionInfo:
        """Where an MQTT gateway connects and as whom (its gateway ID), as this deployment announces it."""
        check_gateway_id(gateway_id)
        principal.require(gateway_id, RIGHT_INFO)
        addresses = self.settings.mqtt_v2 if v2 else self.settings.mqtt
        if not addresses:
            raise err_no_configuration_provider()
        info = mqtt_pb2.MQTTConnectionInfo()
        info.public_address = addresses.public_address
        info.public_tls_address = addresses.public_tls_address
        info.username = gateway_id
        return info

    # --- GatewayConfigurationService ---------------------------------------------------------------------------

    async def gateway_configuration(
        self, principal: Principal, request: gateway_configuration_pb2.GetGatewayConfigurationRequest,
        *, request_host: str | None = None,
    ) -> gateway_configuration_pb2.GetGatewayConfigurationResponse:
        gateway_id = check_gateway_id(request.gateway_ids.gateway_id, "gateway_ids.gateway_id")
        principal.require(gateway_id, RIGHT_INFO)
        if request.format != "semtechudp" or request.filename != "global_conf.json" or request.type:
            raise err_unsupported_format(request.format, request.filename)
        # Every plan of the gateway: one SX1301_conf each (an array when there are several), as the reference does.
        plans = await resolve(self.gs.gateway_frequency_plans(gateway_id))
        if not plans:
            raise err_gateway_not_registered(gateway_id)
        eui = request.gateway_ids.eui or _gateway_eui(self.gs, gateway_id)
        address = gcs.resolve_server_address(self.settings.gcs, request_host)
        contents = gcs.global_conf_json(plans, eui, self.settings.gcs, server_address=address)
        return gateway_configuration_pb2.GetGatewayConfigurationResponse(contents=contents)


def _count_refusal(exc: GsError, principal: Principal) -> None:
    """Count and log (rate-limited, by the log filter) a stream request refused by one of the bounds."""
    reason = _STREAM_REFUSALS.get(exc.full_name)
    if reason is not None:
        metrics.stream_refusals.labels(reason).inc()
        log.warning("event stream refused", extra={"reason": reason, "key_id": principal.key_id, "error": str(exc)})


def _gateway_eui(gs: Any, gateway_id: str) -> bytes | None:
    """The EUI for `gateway_ID`: from the daemon if it can tell, else from an `eui-<hex>` gateway ID."""
    getter = getattr(gs, "gateway_eui", None)
    if getter is not None:
        eui = getter(gateway_id)
        if eui:
            return bytes(eui)
    if gateway_id.startswith("eui-") and len(gateway_id) == 20:
        try:
            return bytes.fromhex(gateway_id[4:])
        except ValueError:
            return None
    return None


# Re-exported for the servers.
__all__ = [
    "ApiCore",
    "ApiSettings",
    "GatewayServerLike",
    "MqttAddresses",
    "RIGHT_INFO",
    "RIGHT_LINK",
    "RIGHT_STATUS_READ",
    "RIGHT_TRAFFIC_READ",
]
