"""The daemon's gateway side, as the APIs and the upstream see it: a shell around the core and the UDP handler.

The frontend-neutral core (`core.gateways.GatewayCore`) holds every connected gateway, whatever its frontend; the
UDP frontend's sans-I/O handler (`io.udp.handler.UdpHandler`) feeds it Semtech datagrams, the gRPC frontend
(`io.grpc`) its `LinkGateway` streams. This object builds the first two, and answers the API calls
(`GatewayServerLike` in `api/core.py`) and the upstream's results. It is a shell: it reads the wall clock and hands
`now` to the cores, which never read one themselves. It imports the UDP frontend only to build it; the daemon
owns the sockets, the streams and the one timer.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from .core.gateways import GatewayCore, Upstream
from .downlink.planner import GatewayDownlinkState
from .errors import NOT_FOUND, GsError
from .events.bus import EventBackend
from .io.udp.connection import ConnectionSettings, UdpConnections
from .io.udp.handler import DEFAULT_MAX_RXPK, UdpHandler
from .jsonpb import float32_value, format_timestamp_ns
from .metrics import SUB_BAND_UTILIZATION
from .registry import GatewayEntry, GatewayRegistry
from .tokens import UplinkTokens
from .ttnpb import gateway_pb2, gatewayserver_pb2, messages_pb2

log = logging.getLogger(__name__)

_NS = 1_000_000_000


class GatewayServer:
    """The core, the UDP handler, and the API's view of them (reading the clock for them)."""

    def __init__(
        self,
        *,
        registry: GatewayRegistry,
        events: EventBackend,
        upstream: Upstream,
        tokens: UplinkTokens,
        connection_settings: ConnectionSettings | None = None,
        forward_crc_failed: bool = False,
        stats_retention_ns: int = 48 * 3600 * _NS,
        frequency_plans: Any = None,
        schedule_late_ns: int = 800_000_000,
        max_rxpk_per_datagram: int = DEFAULT_MAX_RXPK,
        clock: Any = time.time_ns,
    ) -> None:
        self.clock = clock
        self.core = GatewayCore(
            registry=registry, events=events, upstream=upstream, tokens=tokens, frequency_plans=frequency_plans,
            forward_crc_failed=forward_crc_failed, stats_retention_ns=stats_retention_ns,
        )
        self.core.sub_band_watch = self._watch_sub_bands
        self.udp = UdpConnections(registry, connection_settings)
        self.udp_handler = UdpHandler(
            self.core, self.udp, schedule_late_ns=schedule_late_ns, max_rxpk_per_datagram=max_rxpk_per_datagram
        )
        self._utilization_labels: set[str] = set()

    # The core's parts, read through it rather than kept twice.
    @property
    def registry(self) -> GatewayRegistry:
        return self.core.registry

    @property
    def events(self) -> EventBackend:
        return self.core.events

    @property
    def upstream(self) -> Upstream:
        return self.core.upstream

    @property
    def tokens(self) -> UplinkTokens:
        return self.core.tokens

    @property
    def frequency_plans(self) -> Any:
        return self.core.frequency_plans

    # --- upstream -------------------------------------------------------------------------------------------------

    def upstream_result(self, uplink: messages_pb2.UplinkMessage, conn: Any, error: BaseException | None) -> None:
        """Called by the upstream when a Network Server accepted or finally refused an uplink."""
        self.core.upstream_result(uplink, conn, error, self.clock())

    # --- APIs -------------------------------------------------------------------------------------------------------

    def connection_stats(self, gateway_id: str) -> gateway_pb2.GatewayConnectionStats | None:
        return self.core.connection_stats(gateway_id, self.clock())

    async def schedule_downlink(
        self, message: messages_pb2.DownlinkMessage
    ) -> gatewayserver_pb2.ScheduleDownlinkResponse:
        return self.core.schedule_downlink(message, self.clock())

    def connected_gateways(self) -> list[dict[str, Any]]:
        """A JSON-ready summary per live connection, for `gatewayserver gateways` and dashboards."""
        now = self.clock()
        out = []
        for conn in self.core.connections():
            stats = conn.stats(now)
            rtt = stats.round_trip_times
            out.append(
                {
                    "gateway_id": conn.gateway_id,
                    "eui": conn.eui.hex().upper(),
                    "address": conn.link.remote_ip(),
                    "protocol": conn.protocol,
                    "connected_at": format_timestamp_ns(conn.connected_at_ns),
                    "last_uplink_received_at": (
                        format_timestamp_ns(conn.last_uplink_ns) if conn.last_uplink_ns else None
                    ),
                    "uplink_count": conn.uplink_count,
                    "downlink_count": conn.downlink_count,
                    "rtt_median_ms": (rtt.median.seconds * 1000 + rtt.median.nanos / 1e6) if rtt.count else None,
                    "sub_bands": [
                        {
                            "min_frequency": sb.min_frequency,
                            "max_frequency": sb.max_frequency,
                            # float32 fields: printed as float32 (0.001), not as the double they widen to
                            "utilization": float32_value(sb.downlink_utilization),
                            "limit": float32_value(sb.downlink_utilization_limit),
                        }
                        for sb in stats.sub_bands
                    ],
                }
            )
        out.sort(key=lambda item: str(item["gateway_id"]))
        return out

    def gateway_entry(self, gateway_id: str) -> GatewayEntry | None:
        conn = self.core.get(gateway_id)
        if conn is not None:
            return conn.entry
        entry = self.registry.by_id(gateway_id)
        if entry is not None:
            return entry
        if gateway_id.startswith("eui-") and len(gateway_id) == 20:
            try:
                return self.registry.lookup(bytes.fromhex(gateway_id[4:]))
            except ValueError:
                return None
        return None

    def gateway_eui(self, gateway_id: str) -> bytes | None:
        entry = self.gateway_entry(gateway_id)
        return entry.eui if entry is not None else None

    def gateway_frequency_plans(self, gateway_id: str) -> list[Any]:
        """The gateway's frequency plans in registry order (all of one band; the registry checks that)."""
        entry = self.gateway_entry(gateway_id)
        if entry is None:
            raise GsError(
                "pkg/gatewayserver", "gateway_not_registered", "gateway `{gateway_uid}` is not registered",
                code=NOT_FOUND, attributes={"gateway_uid": gateway_id},
            )
        return [self.frequency_plans.get(plan_id) for plan_id in entry.frequency_plan_ids]

    # --- lifecycle --------------------------------------------------------------------------------------------------

    def registry_reloaded(self, now: int) -> None:
        """Apply a reloaded registry to the live UDP connections (the gRPC frontend checks its links itself)."""
        self.udp_handler.registry_reloaded(now)

    def retained_stats_count(self) -> tuple[int, int]:
        """Retained stats of disconnected (registered, unregistered) gateways."""
        return self.core.retained_stats_count()

    def close_all(self, now: int) -> None:
        """Shutdown: every gateway disconnected (`shutdown`), whatever its frontend."""
        self.udp_handler.close_all(now)
        self.core.close_all(now)

    # --- metrics ----------------------------------------------------------------------------------------------------

    def _watch_sub_bands(self, state: GatewayDownlinkState) -> None:
        """Register the utilisation gauge per sub-band once; it is computed at scrape time across gateways."""
        for sb in state.scheduler.sub_bands:
            label = f"{sb.min_frequency}-{sb.max_frequency}"
            if label in self._utilization_labels:
                continue
            self._utilization_labels.add(label)
            SUB_BAND_UTILIZATION.labels(label).set_function(
                functools.partial(self._utilization, sb.min_frequency, sb.max_frequency)
            )

    def _utilization(self, lo: int, hi: int) -> float:
        return self.core.utilization(lo, hi, self.clock())
