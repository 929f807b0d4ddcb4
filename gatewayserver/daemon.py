"""`gatewayserver run`: build the parts from the configuration, run them, stop them in order.

Shutdown order matters: stop reading datagrams first (no new work), close connections (disconnect events), give
in-flight upstream calls a bounded time, then stop the API servers so a watching operator sees the last events.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import logs, preflight
from .bind_errors import bind_error, probe
from .cluster.identity import instance_id
from .config import Config, ConfigError
from .events.bus import EventBus
from .logs import format_address
from .io.udp.connection import ConnectionSettings
from .io.udp.frontend import UdpFrontend
from .registry import GatewayRegistry, RegistryError
from .io.grpc.frontend import GrpcFrontend
from .server import GatewayServer
from .timer import DeadlineTimer
from .tokens import UplinkTokens
from .upstream.jsonlines import JsonLinesSink
from .upstream.ns import NetworkServerRouter, UpstreamSettings
from .workers.spec import WorkerSpec

if TYPE_CHECKING:
    from .api.streams import StreamLimits
    from .cluster.redis_link import RedisLink
    from .workers.spec import WorkerSpec

log = logging.getLogger("gatewayserver")

_NS = 1_000_000_000


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


@dataclass
class Daemon:
    """Everything a running daemon holds; tests start one in-process and poke at it."""

    config: Config
    server: GatewayServer
    frontends: list[UdpFrontend]
    upstream: Any
    registry: GatewayRegistry
    plans: Any
    bus: EventBus
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    apis: list[Any] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    api: Any = None
    timer: Any = None
    links: Any = None  # the gRPC gateway frontend (GtwGs.LinkGateway), built with the APIs
    #: This process's place among `--workers N` (None: the only process). `group` serves and calls the peers.
    worker: WorkerSpec | None = None
    group: Any = None
    #: The Redis link shared by several instances (`redis_url`), else None.
    redis: RedisLink | None = None
    #: Gateway ownership and cross-instance calls (`gatewayserver.cluster.node`), with `redis_url` only.
    cluster: Any = None
    #: With `redis_url`: the event backend of the APIs, every instance's events (gatewayserver.cluster.events).
    shared_events: Any = None

    @property
    def udp_addresses(self) -> list[tuple[str, int]]:
        return [f.address for f in self.frontends]

    def reload(self) -> None:
        """SIGHUP: re-read the registry (and keys) and apply it to connected gateways at once.

        Gateways the new registry no longer admits are disconnected; the others keep their connection with their
        new entry. A registry that fails to load changes nothing.
        """
        try:
            count = self.registry.reload()
            if count:
                log.info("gateway registry reloaded", extra={"gateways": count})
            else:  # only an explicit `gateways: []` gets here; an empty file is refused
                log.warning("gateway registry reloaded with no gateways", extra={"path": str(self.registry.path)})
        except RegistryError as exc:
            log.error("gateway registry reload failed, keeping the old one", extra={"error": str(exc)})
        else:
            now = time.time_ns()
            self.server.registry_reloaded(now)
            if self.links is not None:
                self.links.registry_reloaded(now)
        for api in self.apis:
            reload = getattr(api, "reload", None)
            if reload is not None:
                reload()

    def readiness(self) -> dict[str, Any]:
        """`/readyz`: ready unless shutting down or a Network Server is failing; names each failing part.

        Redis down is "degraded", not "not ready": the instance still serves its own gateways fully, and a
        readiness that failed with Redis would withdraw every instance from the load balancer at once."""
        failing: list[dict[str, Any]] = []
        if self.stopping.is_set():
            failing.append({"part": "daemon", "reason": "shutting down"})
        reports = getattr(self.upstream, "health_reports", None)
        if reports is not None:
            failing += [report for report in reports() if report["failing"]]
        result: dict[str, Any] = {"ready": not failing, "failing": failing}
        if self.redis is not None:
            degraded = self.redis.readiness()
            result["degraded"] = [degraded] if degraded is not None else []
        return result

    async def stop(self) -> None:
        self.stopping.set()

    async def run_until_stopped(self) -> None:
        await self.stopping.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        config = self.config
        for frontend in self.frontends:
            frontend.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.server.close_all(time.time_ns())
        if self.timer is not None:
            self.timer.close()
        abandoned = await self.upstream.close(config.shutdown_timeout)
        # Exact: still queued + in a call + waiting to retry when shutdown_timeout ran out; beside it, those that
        # failed (no more retries once stopping) or went stale during the wait. Neither reached the Network Server.
        breakdown = getattr(self.upstream, "abandoned", {})
        if abandoned or breakdown.get("dropped_while_stopping"):
            log.warning("uplinks abandoned at shutdown", extra={"count": abandoned, **breakdown})
        for api in reversed(self.apis):
            await api.stop()
        if self.group is not None:  # after the public APIs: peers' forwarded calls are served until then
            await self.group.stop()
        if self.cluster is not None:  # after close_all: the gateways' records are given back
            await self.cluster.stop()
        if self.shared_events is not None:
            await self.shared_events.aclose()
        if self.redis is not None:
            await self.redis.close()
        self.bus.close()
        log.info("stopped")


async def start_daemon(config: Config, worker: WorkerSpec | None = None) -> Daemon:
    """Build and start every part; returns once all listeners are bound.

    As one of several workers (`worker` given), the UDP sockets are the ones the supervisor bound and handed
    down (its steering program attached), and the API ports are bound with SO_REUSEPORT beside the other workers.
    Its public APIs forward what another worker owns, and it serves the internal API its peers call
    (`gatewayserver.workers`).
    """
    checked = preflight.check(config)  # the same checks `gatewayserver config` runs
    plans, registry = checked.plans, checked.registry

    bus = EventBus(
        history_size=config.events_history_size,
        history_max_age_ns=int(config.events_history_age * _NS),
        history_per_gateway=config.events_history_per_gateway,
    )
    token_key = bytes.fromhex(config.uplink_token_key) if config.uplink_token_key else secrets.token_bytes(32)
    settings = ConnectionSettings(
        connection_expires_ns=int(config.connection_expires * _NS),
        downlink_path_expires_ns=int(config.downlink_path_expires * _NS),
        flood_datagrams=config.flood_datagrams,
        flood_window_ns=int(config.flood_window * _NS),
        address_change_block_ns=int(config.address_change_block * _NS),
        max_connections=config.max_gateways,
        new_gateways_per_source=config.new_gateways_per_source,
    )
    holder: dict[str, GatewayServer] = {}

    def on_result(uplink: Any, context: Any, error: BaseException | None) -> None:
        holder["server"].upstream_result(uplink, context, error)

    upstream: Any
    if config.ns_address:
        upstream = NetworkServerRouter(
            config.ns_address,
            config.ns_route,
            UpstreamSettings(
                deadline=config.upstream_deadline,
                max_in_flight=config.upstream_max_in_flight,
                queue_size=config.upstream_queue_size,
                retries=config.upstream_retries,
                max_age=config.upstream_max_age,
                tls=config.ns_tls,
                ca_file=config.ns_ca_file,
                cluster_key=config.cluster_key,
                api_key=config.ns_api_key,
            ),
            on_result,
        )
    else:
        upstream = JsonLinesSink(config.uplink_output, on_result)
    server = GatewayServer(
        registry=registry,
        events=bus,
        upstream=upstream,
        tokens=UplinkTokens(token_key),
        connection_settings=settings,
        forward_crc_failed=config.forward_crc_failed,
        stats_retention_ns=int(config.stats_retention * _NS),
        frequency_plans=plans,
        schedule_late_ns=int(config.schedule_late_time * _NS),
        max_rxpk_per_datagram=config.max_rxpk_per_datagram,
    )
    holder["server"] = server
    upstream.start()
    frontends: list[UdpFrontend] = []
    group: Any = None
    daemon: Daemon | None = None
    try:
        inherited = list(worker.udp_fds) if worker is not None else []
        for number, address in enumerate(config.udp_listen):
            try:
                sock = socket.socket(fileno=inherited[number]) if inherited else None
                frontends.append(await UdpFrontend.listen(server.udp_handler, address, sock))
            except OSError as exc:
                raise bind_error("udp_listen", address, exc, socket.SOCK_DGRAM) from None
        daemon = Daemon(config, server, frontends, upstream, registry, plans, bus, worker=worker)
        if config.redis_url:
            from .cluster.redis_link import RedisLink  # the redis package loads only where it is used

            daemon.redis = RedisLink(config.redis_url)
            await daemon.redis.start()
        # The one timer of the loop: the core's held downlinks and forgotten stats, the UDP connections' expiry.
        daemon.timer = DeadlineTimer(asyncio.get_running_loop(), [server.core, server.udp_handler])
        server.core.on_deadline = server.udp_handler.on_deadline = daemon.timer.poke
        if worker is not None:
            from .workers.group import WorkerGroup

            group = WorkerGroup(worker, server, bus, _stream_limits(config))
            await group.start()
            daemon.group = group
        if daemon.redis is not None:
            daemon.shared_events = _shared_events(daemon)
        daemon.apis = await _start_apis(daemon, shared_ports=worker is not None)
    except BaseException:
        # Undo what started, so a failed start leaves one error line, not teardown noise from orphaned parts.
        for frontend in frontends:
            frontend.close()
        if group is not None:
            await group.stop()
        if daemon is not None and daemon.shared_events is not None:
            await daemon.shared_events.aclose()
        if daemon is not None and daemon.redis is not None:
            await daemon.redis.close()
        await upstream.close(0)
        raise
    loop = asyncio.get_running_loop()
    daemon.tasks = [loop.create_task(f.run()) for f in frontends]
    log.info(
        "gateway server started",
        extra={
            "pid": os.getpid(),
            "udp": ",".join(format_address((h, p)) for h, p in daemon.udp_addresses),
            "grpc": _api_port(daemon.api, "grpc"),
            "http": _api_port(daemon.api, "http"),
            "upstream": config.ns_address or f"json-lines:{config.uplink_output}",
            "frequency_plan": config.frequency_plan,
            "registered_gateways": len(registry),
            **({"instance": instance_id(config), "redis": daemon.redis.address} if daemon.redis else {}),
        },
    )
    _log_missing_keys(config.keys_file)
    return daemon


def settle_heap() -> None:
    """Once the daemon has started: keep what start-up allocated out of every later garbage collection.

    Everything allocated at start-up (modules, protobuf descriptors, grpc, the registry, frequency plans) lives as
    long as the process, yet each full collection walked all of it: 60-80 ms with the event loop held, once or
    twice a minute at a thousand downlinks a second, the largest pause the daemon had (`benchmarks/schedule.py`
    with `SCHEDULE_BENCH_STALLS`). Frozen, a full collection walks only what was allocated since.
    (Raising the young-generation threshold was tried and made latency worse: rarer but much longer pauses.)
    """
    gc.collect()
    gc.freeze()


def _shared_events(daemon: Daemon) -> Any:
    """Every instance's events through Redis (`redis_url`), over the bus or, with `--workers`, the worker's view."""
    from .cluster.events import ClusterEventBackend

    config = daemon.config
    assert daemon.redis is not None
    events = ClusterEventBackend(
        daemon.group.events if daemon.group is not None else daemon.bus,
        daemon.redis,
        config.redis_url,
        instance_id(config),
        history_size=config.events_history_size,
        history_per_gateway=config.events_history_per_gateway,
        history_age_ns=int(config.events_history_age * _NS),
    )
    events.start()
    return events


def _api_port(api: Any, name: str) -> str:
    server = getattr(api, name, None)
    if server is None:
        return "off"
    host = server.listen.rpartition(":")[0]
    return f"{host}:{server.port}"


def _log_missing_keys(path: str) -> None:
    """Say once at start when no API key can be valid: every API call that needs one will be refused."""
    create = "gatewayserver keys create --keys-file {} --name NAME --rights RIGHT_GATEWAY_STATUS_READ ..."
    if not path:
        log.warning(
            "no API keys file (--keys-file / GS_KEYS_FILE): the APIs that need a key refuse every request; "
            f"create one with `{create.format('FILE')}` and restart with --keys-file FILE"
        )
    elif not os.path.exists(path):
        log.warning(
            "API keys file does not exist: the APIs that need a key refuse every request until "
            f"`{create.format(path)}` creates it (picked up without a restart)",
            extra={"path": path},
        )


def _stream_limits(config: Config) -> StreamLimits:
    """The event stream bounds, for the APIs and (with workers) the internal server alike."""
    from .api.streams import StreamLimits

    return StreamLimits(
        max_gateway_ids=config.events_max_gateway_ids,
        max_streams_per_key=config.events_max_streams_per_key,
        max_streams=config.events_max_streams,
    )


async def _start_apis(daemon: Daemon, shared_ports: bool = False) -> list[Any]:
    from .api import ApiServers, ApiSettings, GcsSettings, KeyStore, ListenError, MqttAddresses, TlsFiles

    config = daemon.config
    udp_port = daemon.udp_addresses[0][1] if daemon.udp_addresses else 1700
    daemon.links = GrpcFrontend(daemon.server.core, daemon.registry)
    group = daemon.group
    if group is not None:
        daemon.links.observer = group.links
    gateway_server: Any = group.gateway_server if group is not None else daemon.server
    if daemon.redis is not None:  # several instances: the APIs find a gateway's owner through Redis
        from .cluster.node import ClusterNode

        daemon.cluster = ClusterNode(
            config, daemon.redis, daemon.server, gateway_server, worker=daemon.worker.index if daemon.worker else 0
        )
        gateway_server = daemon.cluster.gateway_server
    events = group.events if group is not None else daemon.bus
    if daemon.shared_events is not None:  # redis_url: every instance's events
        events = daemon.shared_events
    api = ApiServers(
        gateway_server,
        events,
        KeyStore(config.keys_file or None),
        ApiSettings(
            cluster_keys=[bytes.fromhex(config.cluster_key)] if config.cluster_key else [],
            stream_buffer=config.events_subscriber_buffer,
            stream_limits=_stream_limits(config),
            gcs=GcsSettings(server_address=config.gcs_server_address or None, udp_port=udp_port),
            mqtt=MqttAddresses(config.mqtt_public_address, config.mqtt_public_tls_address),
            mqtt_v2=MqttAddresses(config.mqttv2_public_address, config.mqttv2_public_tls_address),
        ),
        grpc_listen=config.grpc_listen,
        http_listen=config.http_listen,
        grpc_tls=TlsFiles(config.grpc_tls_cert, config.grpc_tls_key) if config.grpc_tls_cert else None,
        http_tls=TlsFiles(config.http_tls_cert, config.http_tls_key) if config.http_tls_cert else None,
        ready=daemon.readiness,
        links=daemon.links,
        reuse_port=shared_ports,
        metrics=group.metrics if group is not None else None,
        stream_slots=group.stream_slots if group is not None else None,  # counted over every worker
    )
    if config.grpc_listen and not shared_ports:  # workers: the supervisor probed the port before starting them
        # grpc's C core prints its own multi-line complaint to stderr before raising; find a taken port first.
        code = probe(config.grpc_listen, socket.SOCK_STREAM)
        if code is not None:
            raise bind_error("grpc_listen", config.grpc_listen, OSError(code, os.strerror(code)), socket.SOCK_STREAM)
    if daemon.cluster is not None and api.grpc is not None:
        daemon.cluster.attach(api.grpc.server, api.core.check_cluster_key)
    try:
        await api.start()
    except ListenError as exc:
        option = "grpc_listen" if exc.api == "grpc" else "http_listen"
        raise bind_error(option, exc.listen, exc.cause, socket.SOCK_STREAM) from None
    daemon.api = api
    if daemon.cluster is not None:
        daemon.cluster.start()
    return [api]


async def _main(
    config: Config, worker: WorkerSpec | None = None, started: Callable[[asyncio.Event], None] | None = None
) -> int:
    """Run until SIGTERM/SIGINT (or, for a worker, until `started`'s watch sets the stop event)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    holder: list[Daemon] = []
    # Handlers go in before anything is bound, so a SIGTERM during start-up is an orderly stop, not a kill.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: holder[0].reload() if holder else None)
    daemon = await start_daemon(config, worker)
    holder.append(daemon)
    if started is not None:
        started(stop)
    settle_heap()
    daemon.stopping = stop
    await daemon.run_until_stopped()
    return 0


def run_daemon(
    config: Config, worker: WorkerSpec | None = None, started: Callable[[asyncio.Event], None] | None = None
) -> int:
    """`gatewayserver run` with one worker, or one worker process of several (`worker`, see workers/worker.py)."""
    logs.setup(config.log_level, config.log_format, {"worker": worker.index} if worker is not None else None)
    loop_name = _install_uvloop()
    log.debug("starting", extra={"pid": os.getpid(), "loop": loop_name})  # "gateway server started" follows
    try:
        return asyncio.run(_main(config, worker, started))
    except ConfigError:
        raise
    except OSError as exc:
        log.error("cannot start", extra={"error": str(exc)})
        return 1
