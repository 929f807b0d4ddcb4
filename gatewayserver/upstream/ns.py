"""The `GsNs` client: uplinks and TX acknowledgments to Network Servers.

The gateway's ack never waits for this path: the frontend acks, translates and `submit`s. Up to `max_in_flight`
call chains per Network Server run at once; past that, uplinks wait in a bounded queue that finishing chains drain,
and past the queue they are dropped and counted rather than buffered without limit. Transient failures are retried
with backoff while the chain still holds its slot, so retries never multiply the load on a struggling Network
Server. Uplinks older than `max_age` are dropped rather than delivered late, and each Network Server's health
(`health.py`) is logged on every change, exported as `gs_upstream_up` and reported by `/readyz`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from ..ttnpb import messages_pb2, networkserver_pb2_grpc
from .health import UpstreamHealth
from .metrics import UPSTREAM_ERRORS, UPSTREAM_IN_FLIGHT, UPSTREAM_LATENCY, UPSTREAM_QUEUE_DEPTH, UPSTREAM_UP

log = logging.getLogger(__name__)

_TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)

_LATENCY = {call: UPSTREAM_LATENCY.labels(call) for call in ("handle_uplink", "report_tx_ack")}

# Called when an uplink's fate is known: (uplink, context, error or None).
ResultCallback = Callable[[messages_pb2.UplinkMessage, Any, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    deadline: float = 5.0
    max_in_flight: int = 256
    queue_size: int = 20000
    retries: int = 3
    backoff: float = 0.05
    max_age: float = 6.0  # seconds; 0: never stale (see config.py upstream_max_age for the default's reason)
    health_threshold: int = 3  # failed calls in a row that make a Network Server "failing" (health.py)
    tls: bool = False
    ca_file: str = ""
    cluster_key: str = ""
    api_key: str = ""


CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 0),
    # A Network Server restart should cost seconds of queueing, not grpc's default minute-long backoff.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
    # Only the filters a plain unary call needs (no message-size, idle, census or compression filters): about 13 %
    # less CPU per call (87 -> 76 us at 16 in flight, two runs). Deadlines, keepalive, TLS and metadata are not
    # filters of that kind and still work; tests/upstream runs its deadline and error cases on these options.
    ("grpc.minimal_stack", 1),
)


class QueueFull(Exception):
    """The upstream cannot take the message (no queue room at all, or shutting down); the uplink is dropped."""


class UplinkDropped(Exception):
    """Handed to the result callback instead of a call error when the client itself dropped the uplink.

    Never raised: one instance per reason and client is made up front, so a drop costs no allocation.
    `reason` is the `gs_uplinks_dropped_total` label (`stale`, `queue_full`).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: The received time of messages that never go stale (TX acknowledgments have no receive windows to miss).
NEVER_STALE = 1 << 62
#: Stale uplinks dropped in one go before the loop gets a turn (each drop publishes an event).
_STALE_BATCH = 256


def call_metadata(settings: UpstreamSettings) -> tuple[tuple[str, str], ...]:
    if settings.cluster_key:
        return (("authorization", f"ClusterKey {settings.cluster_key}"),)
    if settings.api_key:
        return (("authorization", f"Bearer {settings.api_key}"),)
    return ()


class NetworkServerClient:
    """One Network Server: a channel, a bounded queue and at most `max_in_flight` call chains.

    Every queued entry carries the time its datagram was read (`received_ns`, Unix ns). An uplink older than
    `max_age` is dropped as `stale` when it leaves the queue and before each retry: its receive windows are gone,
    and delivering it would only delay the fresh ones behind it. At the queue bound the *oldest* entry makes room
    for the new one (counted `stale` if it was, else `queue_full`), so after an outage the freshest uplinks are
    the ones that get through.
    """

    def __init__(self, address: str, settings: UpstreamSettings, on_result: ResultCallback) -> None:
        self.address = address
        self.settings = settings
        self._on_result = on_result
        self._metadata = call_metadata(settings)
        options = list(CHANNEL_OPTIONS)
        if settings.tls or settings.ca_file:
            root = open(settings.ca_file, "rb").read() if settings.ca_file else None
            self._channel = grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root), options=options)
        else:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        self._stub = networkserver_pb2_grpc.GsNsStub(self._channel)
        # (message, context, call, received_ns): one tuple per message, as before the received time was added.
        self._queue: collections.deque[tuple[Any, Any, str, int]] = collections.deque()
        self._chains: set[asyncio.Task[None]] = set()
        self._busy = 0
        self._closing = False
        self._flush_pending = False
        # The loop, looked up once: on Python 3.11 every asyncio.get_running_loop() is a getpid() system call.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_age_ns = int(settings.max_age * 1e9)  # 0: uplinks never go stale
        # The read time of the newest submitted uplink: `_flush` runs in the loop turn after the submits, so this
        # is that turn's clock, without another clock read per uplink.
        self._newest_ns = 0
        self._stale = UplinkDropped(
            "stale", f"uplink older than upstream_max_age ({settings.max_age:g} s): its receive windows are gone"
        )
        self._evicted = UplinkDropped(
            "queue_full", f"upstream queue for {address} full: the oldest uplink made room for a newer one"
        )
        self.health = UpstreamHealth(address, settings.health_threshold)
        self._abandoned = 0  # uplinks held by chains cancelled at the shutdown bound
        self._drops = 0  # uplinks this client reported dropped (stale, evicted, failed), for the shutdown line
        self._uplinks_in_backoff = 0
        self.abandoned: dict[str, int] = {}  # after close(): queued, in_flight, retrying, dropped_while_stopping
        UPSTREAM_UP.labels(address).set_function(lambda: 0.0 if self.health.failing else 1.0)

    def start(self) -> None:
        """Nothing to start: call chains are created on demand, so an idle client costs no tasks."""

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return self._busy

    def submit(
        self, message: Any, context: Any = None, call: str = "handle_uplink", received_ns: int = NEVER_STALE
    ) -> None:
        """Send a message to the Network Server. Never blocks; raises `QueueFull` only when there is no queue.

        Messages wait in the queue until the end of the current event-loop turn; then every waiting message below
        the in-flight bound gets its own call chain at once, and past the bound they wait for the next chain to
        finish a call. (A pool of idle workers woken through one event would wake every worker per message.)
        """
        if self._closing:
            raise QueueFull("upstream is shutting down")
        queue = self._queue
        if len(queue) >= self.settings.queue_size:
            if not queue:
                raise QueueFull(f"upstream queue for {self.address} has no room (upstream_queue_size 0)")
            self._evict_oldest(received_ns if received_ns != NEVER_STALE else self._newest_ns)
        queue.append((message, context, call, received_ns))
        if received_ns != NEVER_STALE:
            self._newest_ns = received_ns
        if not self._flush_pending and self._busy < self.settings.max_in_flight:
            self._flush_pending = True
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._flush)

    def _evict_oldest(self, now: int) -> None:
        """The queue is full: drop its oldest entry so the newer one can wait instead (one entry, O(1))."""
        message, context, call, received_ns = self._queue.popleft()
        if call != "handle_uplink":
            log.warning("TX acknowledgment not forwarded: upstream queue full", extra={"address": self.address})
            return
        max_age = self._max_age_ns
        self._dropped(message, context, self._stale if max_age and now - received_ns > max_age else self._evicted)

    def _dropped(self, message: Any, context: Any, error: UplinkDropped) -> None:
        self._drops += 1
        self.health.uplink_dropped()
        try:
            self._on_result(message, context, error)
        except Exception:  # a broken callback must not break the queue
            log.exception("upstream result callback failed")

    def _flush(self) -> None:
        """Start the calls submitted during this loop turn, after every datagram of the turn has been acked.

        grpc.aio is cheaper per call when calls start together (their HTTP/2 frames share writes, their completions
        share wake-ups). Holding uplinks back on purpose to form bigger groups was tried: a 2 or 4 ms window gave
        fewer sustained uplinks/s in the benchmark, not more, so only what arrives together is grouped.
        """
        self._flush_pending = False
        queue = self._queue
        limit = self.settings.max_in_flight
        loop = self._loop or asyncio.get_running_loop()
        create_task = loop.create_task
        chains = self._chains
        max_age = self._max_age_ns
        now = self._newest_ns
        stale_budget = _STALE_BATCH
        while queue and self._busy < limit:
            message, context, call, received_ns = queue.popleft()
            if max_age and now - received_ns > max_age:
                self._dropped(message, context, self._stale)
                stale_budget -= 1
                if not stale_budget:  # give the loop (and the gateways' acks) a turn, then go on
                    self._flush_pending = True
                    loop.call_soon(self._flush)
                    return
                continue
            self._busy += 1
            task = create_task(self._chain(message, context, call, received_ns))
            chains.add(task)
            task.add_done_callback(chains.discard)

    async def _chain(self, message: Any, context: Any, call: str, received_ns: int) -> None:
        queue = self._queue
        max_age = self._max_age_ns
        try:
            while True:
                error = await self._deliver(message, call, received_ns)
                if call == "handle_uplink":
                    if error is not None:
                        self._drops += 1
                        self.health.uplink_dropped()
                    try:
                        self._on_result(message, context, error)
                    except Exception:  # a broken callback must not end the chain
                        log.exception("upstream result callback failed")
                if not queue:
                    return
                # Only a backlog gets here (the queue outgrew the in-flight bound): one clock read per entry taken
                # is small against the call it waits for, and tells how long the entry has waited.
                message, context, call, received_ns = queue.popleft()
                if max_age:
                    now = time.time_ns()
                    stale = 0
                    while now - received_ns > max_age:
                        self._dropped(message, context, self._stale)
                        if not queue:
                            return
                        message, context, call, received_ns = queue.popleft()
                        stale += 1
                        if stale % _STALE_BATCH == 0:  # let the loop breathe; a cancel here counts what is held
                            await asyncio.sleep(0)
                            now = time.time_ns()
        except asyncio.CancelledError:
            if call == "handle_uplink":  # cancelled at the shutdown bound while holding this uplink
                self._abandoned += 1
            raise
        finally:
            self._busy -= 1

    async def _deliver(self, message: Any, call: str, received_ns: int) -> BaseException | None:
        settings = self.settings
        method = self._stub.HandleUplink if call == "handle_uplink" else self._stub.ReportTxAcknowledgment
        histogram = _LATENCY[call]
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await method(message, metadata=self._metadata, timeout=settings.deadline)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                UPSTREAM_ERRORS.labels(code.name).inc()
                self._call_failed(code.name)
                if code in _TRANSIENT and attempt < settings.retries and not self._closing:
                    uplink = call == "handle_uplink"
                    self._uplinks_in_backoff += uplink
                    try:
                        await asyncio.sleep(settings.backoff * (2**attempt))
                    finally:
                        self._uplinks_in_backoff -= uplink
                    max_age = self._max_age_ns
                    if max_age and time.time_ns() - received_ns > max_age:
                        return self._stale  # a retry would deliver what the Network Server can no longer use
                    attempt += 1
                    continue
                return exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # channel closed during shutdown, serialization bugs: count, never crash
                UPSTREAM_ERRORS.labels("INTERNAL").inc()
                return exc
            histogram.observe(time.perf_counter() - started)
            if self.health.failures:  # one attribute read per call while all is well
                self._call_succeeded()
            return None

    def _call_failed(self, code: str) -> None:
        transition = self.health.failed(code, time.time_ns())
        if transition is not None:
            log.error(
                "Network Server failing: uplinks are queued, then dropped",
                extra={
                    "address": transition.address,
                    "code": transition.code,
                    "failed_calls": self.health.failures,
                    "check": transition.hint,
                },
            )

    def _call_succeeded(self) -> None:
        transition = self.health.succeeded(time.time_ns())
        if transition is not None:
            log.warning(
                "Network Server recovered",
                extra={
                    "address": transition.address,
                    "down_for": f"{transition.down_for_ns / 1e9:.1f}s",
                    "last_code": transition.code,
                    "uplinks_dropped": transition.dropped,
                },
            )

    async def close(self, timeout: float) -> int:
        """Stop accepting, give queued and in-flight calls `timeout` seconds, then cancel.

        Returns the uplinks abandoned: still queued, in a call, or waiting to retry at the bound (each cancelled
        chain held exactly one message). `abandoned` keeps the breakdown for the shutdown log line, with the
        uplinks that failed (not retried any more) or went stale during the wait: those never arrived either.
        """
        self._closing = True
        drops_before = self._drops
        self._flush()  # what was submitted this loop turn goes out now, within the same timeout
        await asyncio.sleep(0)  # every chain takes its first step, so a cancelled one counts what it holds
        retrying = 0
        if self._chains:
            _, pending = await asyncio.wait(set(self._chains), timeout=timeout)
            retrying = self._uplinks_in_backoff
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        queued = sum(1 for entry in self._queue if entry[2] == "handle_uplink")
        self._queue.clear()
        self.abandoned = {
            "queued": queued,
            "in_flight": self._abandoned - retrying,
            "retrying": retrying,
            "dropped_while_stopping": self._drops - drops_before,
        }
        await self._channel.close()
        try:
            UPSTREAM_UP.remove(self.address)
        except KeyError:  # another client for the same address (a second daemon in one test process) went first
            pass
        return queued + self._abandoned


@dataclass(frozen=True, slots=True)
class Route:
    prefix: int
    bits: int
    address: str

    def matches(self, dev_addr: int) -> bool:
        return (dev_addr >> (32 - self.bits)) == (self.prefix >> (32 - self.bits)) if self.bits else True


def parse_route(text: str) -> Route:
    """`26000000/7=host:port` → Route. DevAddr prefixes are how NetIDs split the address space."""
    try:
        prefix_text, address = text.split("=", 1)
        hex_part, bits_text = prefix_text.split("/", 1)
        prefix = int(hex_part, 16)
        bits = int(bits_text)
    except ValueError:
        raise ValueError(f"route {text!r}: expected PREFIX/BITS=HOST:PORT, e.g. 26000000/7=ns2:1884") from None
    if not 0 <= bits <= 32 or len(hex_part) != 8 or not address:
        raise ValueError(f"route {text!r}: prefix must be 8 hex digits and bits 0-32")
    return Route(prefix, bits, address)


class NetworkServerRouter:
    """Chooses the Network Server for each uplink by DevAddr; joins and rejoins go to the default."""

    def __init__(
        self, default_address: str, routes: Sequence[str], settings: UpstreamSettings, on_result: ResultCallback
    ) -> None:
        self.settings = settings
        self.abandoned: dict[str, int] = {}
        self.default = NetworkServerClient(default_address, settings, on_result)
        self._clients: dict[str, NetworkServerClient] = {default_address: self.default}
        self._routes: list[tuple[Route, NetworkServerClient]] = []
        for text in routes:
            route = parse_route(text)
            client = self._clients.get(route.address)
            if client is None:
                client = self._clients[route.address] = NetworkServerClient(route.address, settings, on_result)
            self._routes.append((route, client))
        # Longest prefix first, so a specific route wins over a broad one.
        self._routes.sort(key=lambda item: -item[0].bits)
        UPSTREAM_QUEUE_DEPTH.set_function(lambda: sum(c.queue_depth for c in self._clients.values()))
        UPSTREAM_IN_FLIGHT.set_function(lambda: sum(c.in_flight for c in self._clients.values()))

    def start(self) -> None:
        for client in self._clients.values():
            client.start()

    def client_for(self, uplink: messages_pb2.UplinkMessage) -> NetworkServerClient:
        if not self._routes:
            return self.default
        payload = uplink.payload
        if payload.WhichOneof("Payload") != "mac_payload":
            return self.default
        dev_addr = int.from_bytes(payload.mac_payload.f_hdr.dev_addr, "big")
        for route, client in self._routes:
            if route.matches(dev_addr):
                return client
        return self.default

    def submit_uplink(
        self, uplink: messages_pb2.UplinkMessage, context: Any = None, received_ns: int = NEVER_STALE
    ) -> None:
        self.client_for(uplink).submit(uplink, context, "handle_uplink", received_ns)

    def submit_tx_ack(self, ack: Any) -> None:
        self.default.submit(ack, None, "report_tx_ack")

    def health_reports(self) -> list[dict[str, object]]:
        """One readiness report per Network Server address (default first)."""
        return [client.health.report() for client in self._clients.values()]

    async def close(self, timeout: float) -> int:
        results = await asyncio.gather(*(c.close(timeout) for c in self._clients.values()))
        self.abandoned = {
            key: sum(c.abandoned.get(key, 0) for c in self._clients.values())
            for key in ("queued", "in_flight", "retrying", "dropped_while_stopping")
        }
        return sum(results)
