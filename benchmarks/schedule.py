"""ScheduleDownlink throughput and latency over gRPC, and the cost of one pure scheduling decision.

Run: .venv/bin/python benchmarks/schedule.py [--seconds 10] [--gateways 50] [--concurrency 128] [--clients 1]
     [--ns standin|jsonlines] [--no-floor] [--api-ceiling] [--two-call-floor] [--half-rate]
     [--wait-quiet 30] [--log-level info] [--workers 1,2 [--channels 16]]

Two parts:

1. Decision cost (in this process, no I/O): `plan_request` for a class A downlink (token window, data rate,
   payload size, time-on-air, dwell time, emission and duty-cycle booking, EIRP, txpk JSON) and the bare
   `GatewayScheduler.schedule_at`, in µs per call.
2. gRPC: the daemon runs in a separate process pinned to one CPU (`--serve`), with the NsGs gRPC API, a UDP
   listener and gateways simulated here (real forwarder behaviour: PULL_DATA, uplinks, TX_ACK for every
   PULL_RESP). Clients call NsGs.ScheduleDownlink with class A requests carrying valid uplink tokens (minted
   with the daemon's token key, each for its own RX1 slot so every call really books an emission and sends a
   PULL_RESP) and report calls/s, p50/p99 latency and the daemon's CPU seconds. TX acknowledgments go where they
   go in production: to a Network Server over gRPC (`--ns standin`, the Node.js stand-in of
   `benchmarks/standin_ns`, default when `node` is installed) or, with `--ns jsonlines`, to JSON lines on
   /dev/null.
3. The ceiling, in the same run (the machine is shared, so only ratios within one run mean much): the same gRPC
   client against a do-nothing NsGs handler in its own process pinned to the same CPU; the report gives
   ScheduleDownlink's share of it, both in calls/s and in calls per daemon CPU-second (the latter does not
   depend on whether the client or the server is the bottleneck). `--api-ceiling` also runs the real daemon
   with a do-nothing downlink service behind its gRPC API (authentication, error mapping, metrics included).
   `--two-call-floor` runs the do-nothing handler once more, now starting one outbound
   `GsNs.ReportTxAcknowledgment` per call to a stand-in Network Server, as the daemon does per downlink: its
   share of the ceiling is the most any daemon making that call with grpc.aio could reach.

4. `--workers 1,2`: part 2 once per worker count, each a `gatewayserver run --workers N` (config in a YAML file;
   fixed API ports, since each worker binds them with SO_REUSEPORT), in the same run and beside the same ceiling.
   The client opens `--channels` gRPC channels, each with its own TCP connection (`grpc.use_local_subchannel_pool`),
   so the kernel's SO_REUSEPORT hash spreads them over the workers; a call reaching a worker that does not own the
   gateway is forwarded to the owner (`gs_worker_forwarded_calls_total`, read from the daemon-wide /metrics). CPU
   is reported per process: "daemon" is the supervisor and every worker summed.

Every measurement reports the cores used by the daemon, the client (this process: gRPC client and simulated
gateways), the stand-in and everything else ("other"); `--wait-quiet S` waits up to S seconds for the machine to
go quiet first. `--log-level info` runs the daemon at the level a daemon has by default (its log to a file).
`SCHEDULE_BENCH_STALLS=FILE` writes diagnostics next to FILE: garbage-collection pauses, event-loop lag, the
daemon's own-code CPU per ScheduleDownlink and per datagram, a per-call latency timeline and CPU per process and
core every 100 ms (see `StallProbe`, `CpuSampler`).

Gateways are registered with `enforce_duty_cycle: false`: one gateway's duty cycle would otherwise refuse all
but a few dozen downlinks per hour, and refusals are cheaper than bookings, which would flatter the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_NS = 1_000_000_000
TOKEN_KEY = bytes.fromhex("5c" * 32)
CLUSTER_KEY = bytes.fromhex("c1" * 16)
EUI_BASE = 0x00800000A0000000
SLOT_US = 100_000  # SF7, 17-byte payload: 46 ms on air + 30 ms off air fits in 100 ms


def _lora(sf: int) -> Any:
    from gatewayserver.ttnpb import lorawan_pb2

    dr = lorawan_pb2.DataRate()
    dr.lora.spreading_factor = sf
    dr.lora.bandwidth = 125_000
    dr.lora.coding_rate = "4/5"
    return dr


def class_a_request(token: bytes) -> Any:
    from gatewayserver.ttnpb import lorawan_pb2, messages_pb2

    msg = messages_pb2.DownlinkMessage(raw_payload=b"\x60" + bytes(16), correlation_ids=["bench:down"])
    req = msg.request
    setattr(req, "class", lorawan_pb2.CLASS_A)
    req.downlink_paths.add().uplink_token = token
    req.rx1_delay = lorawan_pb2.RX_DELAY_1
    req.rx1_frequency = 868_100_000
    req.rx1_data_rate.CopyFrom(_lora(7))
    req.rx2_frequency = 869_525_000
    req.rx2_data_rate.CopyFrom(_lora(12))
    req.priority = lorawan_pb2.HIGH
    return msg


# --- part 1: decision cost ------------------------------------------------------------------------------------


def decision_cost(n: int) -> dict[str, float]:
    from frequency_plans.loader import FrequencyPlanStore
    from gatewayserver.downlink.planner import GatewayDownlinkState, plan_request
    from gatewayserver.registry import GatewayEntry

    plans = FrequencyPlanStore()
    out: dict[str, float] = {}
    for label, enforce in (("duty_cycle_off", False), ("duty_cycle_on", True)):
        entry = GatewayEntry("bench-gw", bytes(8), ("EU_863_870",), enforce_duty_cycle=enforce)
        state = GatewayDownlinkState(entry, plans)
        now = 1_700_000_000 * _NS
        state.sync(0, now, None)
        req = class_a_request(b"").request
        payload = b"\x60" + bytes(16)
        # Duty cycle on: 868.1 MHz allows 36 s/h, ~690 bookings of 46 ms at HIGH; stay below it.
        count = n if not enforce else min(n, 600)
        start = time.perf_counter_ns()
        for i in range(count):
            plan_request(state, payload, req, (i * SLOT_US) % (1 << 32), now)
        out[f"plan_request_{label}_us"] = (time.perf_counter_ns() - start) / count / 1000
    entry = GatewayEntry("bench-gw", bytes(8), ("EU_863_870",), enforce_duty_cycle=True)
    state = GatewayDownlinkState(entry, plans)
    state.sync(0, now, None)
    sched = state.scheduler
    start = time.perf_counter_ns()
    count = 600
    for i in range(count):
        sched.schedule_at(None, 868_100_000, 46_336_000, 5, now, timestamp=(1_000_000 + i * SLOT_US))
    out["scheduler_schedule_at_us"] = (time.perf_counter_ns() - start) / count / 1000
    return out


# --- part 2: the daemon process ---------------------------------------------------------------------------------


def write_registry(work: Path, gateways: int) -> Path:
    registry = work / "gateways.yml"
    registry.write_text(
        json.dumps(
            {
                "gateways": [
                    {
                        "eui": f"{EUI_BASE + i:016x}",
                        "gateway_id": f"bench-{i}",
                        "frequency_plan_id": "EU_863_870",
                        "enforce_duty_cycle": False,
                    }
                    for i in range(gateways)
                ]
            }
        )
    )
    return registry


def daemon_settings(registry: Path, ns_address: str, grpc: str = "127.0.0.1:0", http: str = "127.0.0.1:0",
                    udp: str = "127.0.0.1:0", log_level: str = "error") -> dict[str, Any]:
    """The daemon's options, the same for `--serve` (in-process) and `gatewayserver run --workers N` (YAML)."""
    return {
        "udp_listen": [udp],
        "grpc_listen": grpc,
        "http_listen": http,
        "gateways": str(registry),
        "uplink_output": os.devnull,
        **({"ns_address": ns_address} if ns_address else {}),
        "uplink_token_key": TOKEN_KEY.hex(),
        "cluster_key": CLUSTER_KEY.hex(),
        "log_level": log_level,
        "flood_datagrams": 0,
    }


async def serve(
    port_file: Path, gateways: int, cpu: int | None, ns_address: str = "", stub_downlinks: bool = False,
    log_level: str = "error",
) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    from gatewayserver.config import resolve
    from gatewayserver.daemon import start_daemon

    registry = write_registry(Path(tempfile.mkdtemp()), gateways)
    config = resolve(daemon_settings(registry, ns_address, log_level=log_level), environ={})
    if log_level != "error":  # as `gatewayserver run` sets logging up (stderr, rate-limited); error: as before
        from gatewayserver import logs

        logs.setup(config.log_level)
    daemon = await start_daemon(config)
    if stub_downlinks:  # --api-ceiling: everything but the downlink service
        from gatewayserver.ttnpb import gatewayserver_pb2

        def schedule(message: Any, now: int) -> Any:
            return gatewayserver_pb2.ScheduleDownlinkResponse(rx1=True)

        daemon.server.core.schedule_downlink = schedule  # type: ignore[method-assign]
    grpc_port = None
    for api in daemon.apis:
        grpc_server = getattr(api, "grpc", None)
        if grpc_server is not None and grpc_server.port:
            grpc_port = grpc_server.port
    api_servers = None
    if grpc_port is None:  # the daemon does not start its APIs itself yet: start the real gRPC API next to it
        from gatewayserver.api import ApiServers, ApiSettings, KeyStore

        api_servers = ApiServers(
            daemon.server, daemon.bus, KeyStore(None), ApiSettings(cluster_keys=[CLUSTER_KEY]),
            grpc_listen="127.0.0.1:0", http_listen=None,
        )
        await api_servers.start()
        assert api_servers.grpc is not None  # grpc_listen was given
        grpc_port = api_servers.grpc.port
    from gatewayserver import daemon as daemon_module

    settle = getattr(daemon_module, "settle_heap", None)
    if settle is not None:  # as `gatewayserver run` does once started
        settle()
    port_file.write_text(json.dumps({"udp": daemon.udp_addresses[0][1], "grpc": grpc_port}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    stalls = StallProbe() if os.environ.get("SCHEDULE_BENCH_STALLS") else None
    if stalls is not None:
        await asyncio.sleep(0.1)  # the UDP frontends' run() has installed their datagram handler
        stalls.account(daemon)
    await stop.wait()
    if stalls is not None:
        stalls.report(f"{os.environ['SCHEDULE_BENCH_STALLS']}.{os.getpid()}")
    if api_servers is not None:
        await api_servers.stop()
    await daemon.shutdown()


class CpuSampler:
    """Diagnostics (`SCHEDULE_BENCH_STALLS`): CPU seconds per process and per core every 100 ms, from a thread, so
    a latency build-up in the timeline can be laid beside who had the CPU then."""

    def __init__(self, pids: dict[str, int]) -> None:
        import threading

        self.pids = pids
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(0.1):
            sample: dict[str, float] = {"t": time.perf_counter_ns()}
            for name, pid in self.pids.items():
                try:
                    sample[name] = cpu_seconds(pid)
                except OSError:
                    pass
            for line in Path("/proc/stat").read_text().splitlines():
                if line.startswith("cpu") and line[3:4].isdigit():
                    parts = [int(x) for x in line.split()[1:]]
                    sample[line.split()[0]] = (sum(parts[:8]) - parts[3] - parts[4]) / tick
            self.samples.append(sample)

    def stop(self, path: str) -> None:
        self._stop.set()
        self.thread.join()
        Path(path).write_text(json.dumps(self.samples))


class StallProbe:
    """Diagnostics (`SCHEDULE_BENCH_STALLS=FILE`): what holds the daemon's event loop, written to FILE at exit.

    Garbage collections are timed through `gc.callbacks` (per generation), and a task asleep for 5 ms at a time
    records how late it wakes: a late wake-up is a loop turn that ran long (a collection, a burst of callbacks).
    """

    def __init__(self) -> None:
        import gc

        self.gc: dict[int, list[int]] = {0: [], 1: [], 2: []}
        self.lags: list[int] = []
        self.woke: list[int] = []  # perf_counter_ns (CLOCK_MONOTONIC, the same in every process) of each probe
        self._gc_start = 0
        gc.callbacks.append(self._on_gc)
        self.task = asyncio.get_running_loop().create_task(self._probe())

    def account(self, daemon: Any) -> None:
        """Thread CPU time spent in the daemon's own code per ScheduleDownlink (the core's decision, the PULL_RESP
        included) and per datagram (the TX_ACK to the core and the upstream's queue), without grpc's work."""
        self.cpu: dict[str, list[int]] = {"schedule_downlink": [0, 0], "datagram": [0, 0]}

        def timed(name: str, fn: Any) -> Any:
            slot = self.cpu[name]
            clock = time.thread_time_ns

            def wrapper(*args: Any) -> Any:
                t0 = clock()
                try:
                    return fn(*args)
                finally:
                    slot[0] += clock() - t0
                    slot[1] += 1

            return wrapper

        core = daemon.server.core
        core.schedule_downlink = timed("schedule_downlink", core.schedule_downlink)
        for frontend in daemon.frontends:
            frontend._protocol.handler = timed("datagram", frontend._protocol.handler)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter_ns()
        else:
            self.gc[info["generation"]].append(time.perf_counter_ns() - self._gc_start)

    async def _probe(self) -> None:
        while True:
            t0 = time.perf_counter_ns()
            await asyncio.sleep(0.005)
            self.lags.append(time.perf_counter_ns() - t0 - 5_000_000)
            self.woke.append(t0)

    def report(self, path: str) -> None:
        import gc

        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        def summary(values: list[int]) -> dict[str, float]:
            if not values:
                return {"count": 0}
            ordered = sorted(values)
            return {
                "count": len(values), "total_ms": round(sum(values) / 1e6, 1),
                "p50_ms": round(ordered[len(ordered) // 2] / 1e6, 2),
                "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6, 2),
                "max_ms": round(ordered[-1] / 1e6, 2),
            }

        out: dict[str, Any] = {f"gc{gen}": summary(v) for gen, v in self.gc.items()}
        out["loop_lag"] = summary(self.lags)
        for name, (ns, count) in getattr(self, "cpu", {}).items():
            out[f"cpu_us_per_{name}"] = (round(ns / count / 1000, 1), count) if count else (0, 0)
        out["loop_lag_over_10ms"] = sum(1 for v in self.lags if v > 10_000_000)
        out["loop_lag_over_50ms"] = sum(1 for v in self.lags if v > 50_000_000)
        worst = sorted(range(len(self.lags)), key=self.lags.__getitem__)[-10:]
        out["worst_lags_at_ns"] = [(self.woke[i], round(self.lags[i] / 1e6, 1)) for i in worst]
        gc_events = [(gen, ns) for gen, values in self.gc.items() for ns in values if ns > 5_000_000]
        out["gc_over_5ms"] = [(gen, round(ns / 1e6, 1)) for gen, ns in gc_events]
        Path(path).write_text(json.dumps(out, indent=1))


async def serve_floor(port_file: Path, cpu: int | None, ns_address: str = "") -> None:
    """The gRPC floor: a NsGs server whose handler does nothing, on the same kind of process and CPU.

    With `ns_address` (`--two-call-floor`), each call also starts one `GsNs.ReportTxAcknowledgment` to that
    Network Server, as the daemon does per TX acknowledgment: the same channel options, metadata and stub, a TX
    acknowledgment shaped like the daemon's, not awaited by the served call, at most 256 in flight (the daemon's
    `max_in_flight`; beyond that a call is skipped and counted). What that server reaches is the best any design
    can do that serves a downlink and makes one outbound call per downlink with grpc.aio in one process."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    import grpc

    from gatewayserver.ttnpb import gatewayserver_pb2, gatewayserver_pb2_grpc

    outbound: Any = None
    if ns_address:
        from ns_call import tx_ack

        from gatewayserver.ttnpb import networkserver_pb2_grpc
        from gatewayserver.upstream.ns import CHANNEL_OPTIONS

        channel = grpc.aio.insecure_channel(ns_address, options=list(CHANNEL_OPTIONS))
        report = networkserver_pb2_grpc.GsNsStub(channel).ReportTxAcknowledgment
        ack = tx_ack()
        metadata = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)
        counts = {"made": 0, "failed": 0, "skipped": 0}
        in_flight: set[Any] = set()

        async def one() -> None:
            try:
                await report(ack, metadata=metadata, timeout=5.0)
                counts["made"] += 1
            except grpc.RpcError:
                counts["failed"] += 1

        def outbound() -> None:
            if len(in_flight) >= 256:
                counts["skipped"] += 1
                return
            task = asyncio.ensure_future(one())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

    class Trivial(gatewayserver_pb2_grpc.NsGsServicer):
        async def ScheduleDownlink(self, request: Any, context: Any) -> Any:
            if outbound is not None:
                outbound()
            return gatewayserver_pb2.ScheduleDownlinkResponse(rx1=True)

    server = grpc.aio.server()
    gatewayserver_pb2_grpc.add_NsGsServicer_to_server(Trivial(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(json.dumps({"grpc": port}))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)
    if ns_address:
        port_file.with_suffix(".outbound.json").write_text(json.dumps(counts))


async def read_port_file(port_file: Path) -> dict[str, Any]:
    """The ports a `--serve`/`--serve-floor` child wrote once listening (waits up to 15 s for them)."""
    for _ in range(300):
        if port_file.exists() and port_file.read_text():
            break
        await asyncio.sleep(0.05)
    ports: dict[str, Any] = json.loads(port_file.read_text())
    return ports


async def floor(
    args: argparse.Namespace, tokens: list[bytes], channels: int = 1, standin: Any = None
) -> dict[str, Any]:
    """The do-nothing ceiling; with a stand-in Network Server, the two-call floor (see `serve_floor`)."""
    ns_address = f"127.0.0.1:{standin.grpc_port}" if standin is not None else ""
    work = Path(tempfile.mkdtemp())
    port_file = work / "ports.json"
    cpu = (os.cpu_count() or 1) - 1
    cmd = [sys.executable, __file__, "--serve-floor", str(port_file), "--cpu", str(cpu)]
    if ns_address:
        cmd += ["--ns-address", ns_address]
    proc = subprocess.Popen(cmd)
    try:
        port = (await read_port_file(port_file))["grpc"]
        cpu_before = cpu_seconds(proc.pid)
        meter = process_meter(proc.pid, standin)
        meter.start()
        latencies, errors, elapsed = await call_loop(port, tokens, args.concurrency, None, channels)
        cores = meter.stop()
        cpu_used = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    result: dict[str, Any] = {"calls_per_s": round(len(latencies) / elapsed),
                              "calls_per_cpu_s": round(len(latencies) / cpu_used), "cores": cores}
    if ns_address:
        result["outbound"] = json.loads(port_file.with_suffix(".outbound.json").read_text())
    return result


async def two_call_floor(args: argparse.Namespace, tokens: list[bytes]) -> dict[str, Any] | None:
    """`floor` with one outbound call per served call to a stand-in Network Server of its own."""
    wait_quiet_before(args)
    standin = start_standin()
    if standin is None:
        return None
    try:
        result = await floor(args, tokens, standin=standin)
        result["tx_acks_at_standin"] = standin.stats()["tx_acks"]
    finally:
        standin.close()
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- part 2: clients ------------------------------------------------------------------------------------------


def open_channels(target: str, count: int) -> list[Any]:
    """`count` grpc.aio channels to `target`, each on its own TCP connection.

    Channels of one process with the same target and arguments share one subchannel (one TCP connection) through
    gRPC's global subchannel pool; a local pool per channel gives each its own connection. With `--workers N` the
    kernel's SO_REUSEPORT hash places each connection on one worker, so several connections are what spreads the
    calls over the workers. One channel is opened exactly as before (no options).
    """
    import grpc

    options = [("grpc.use_local_subchannel_pool", 1)] if count > 1 else []
    return [grpc.aio.insecure_channel(target, options=options) for _ in range(count)]


async def call_loop(
    grpc_port: int, tokens: list[bytes], concurrency: int, pace: float | None = None, channels: int = 1
) -> tuple[list[int], int, float]:
    """Call ScheduleDownlink once per token, `concurrency` in flight; with `pace`, call i starts at i / pace s.

    The calls go round-robin over `channels` connections (see `open_channels`)."""
    import grpc

    from gatewayserver.ttnpb import gatewayserver_pb2_grpc

    metadata = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)
    requests = [class_a_request(t) for t in tokens]
    latencies: list[int] = []
    errors = 0
    opened = open_channels(f"127.0.0.1:{grpc_port}", max(1, min(channels, concurrency)))
    try:
        stubs = [gatewayserver_pb2_grpc.NsGsStub(channel) for channel in opened]
        for channel in opened:
            await channel.channel_ready()
        index = 0

        async def worker(stub: Any) -> None:
            nonlocal index, errors
            while index < len(requests):
                req = requests[index]
                if pace is not None:
                    delay = start + index / pace - time.perf_counter()
                    index += 1
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    index += 1
                t0 = time.perf_counter_ns()
                try:
                    await stub.ScheduleDownlink(req, metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append(time.perf_counter_ns() - t0)
                if timeline is not None:
                    timeline.append((t0, latencies[-1]))

        timeline: list[tuple[int, int]] | None = [] if os.environ.get("SCHEDULE_BENCH_STALLS") else None
        probe = StallProbe() if timeline is not None else None
        start = time.perf_counter()
        await asyncio.gather(*(worker(stubs[k % len(stubs)]) for k in range(concurrency)))
        elapsed = time.perf_counter() - start
        if probe is not None and timeline is not None:
            probe.task.cancel()
            probe.report(f"{os.environ['SCHEDULE_BENCH_STALLS']}.client{os.getpid()}.{len(requests)}")
            Path(f"{os.environ['SCHEDULE_BENCH_STALLS']}.timeline.{len(requests)}").write_text(json.dumps(timeline))
    finally:
        for channel in opened:
            await channel.close()
    return latencies, errors, elapsed


def client_main(args: argparse.Namespace) -> None:
    tokens = [base64.b64decode(line) for line in Path(args.tokens).read_text().split()]
    latencies, errors, elapsed = asyncio.run(call_loop(args.grpc_port, tokens, args.concurrency, None, args.channels))
    Path(args.out).write_text(json.dumps({"latencies": latencies, "errors": errors, "elapsed": elapsed}))


def start_standin() -> Any:
    """The Node.js stand-in Network Server (see benchmarks/README.md), or None without Node.js."""
    import shutil

    if shutil.which("node") is None:
        print("benchmark: no Node.js, TX acknowledgments go to JSON lines instead of a Network Server", file=sys.stderr)
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from uplink import StandinNs

    return StandinNs(None)


async def drive(
    args: argparse.Namespace, stub_downlinks: bool = False, pace: float | None = None, workers: int | None = None
) -> dict[str, Any]:
    """Part 2 against one daemon: `--serve` in-process (default), or `gatewayserver run` with `workers` workers."""
    from gatewayserver.simulator import SimulatedGateway
    from gatewayserver.tokens import UplinkTokens

    work = Path(tempfile.mkdtemp())
    port_file = work / "ports.json"
    cpu = (os.cpu_count() or 1) - 1
    standin = start_standin() if args.ns == "standin" and not stub_downlinks else None
    ns_address = f"127.0.0.1:{standin.grpc_port}" if standin is not None else ""
    channels = args.channels if workers is not None else 1
    run: Any = None  # the `gatewayserver run` of --workers
    if workers is None:
        cmd = [sys.executable, __file__, "--serve", str(port_file), "--gateways", str(args.gateways), "--cpu",
               str(cpu)]
        if ns_address:
            cmd += ["--ns-address", ns_address]
        if stub_downlinks:
            cmd.append("--stub-downlinks")
        cmd += ["--log-level", args.log_level]
        # The daemon's log (rate-limited lines at --log-level info) goes to a file, not between the figures.
        daemon_log = open(work / "daemon.log", "wb") if args.log_level != "error" else None
        daemon = subprocess.Popen(cmd, stderr=daemon_log)
    else:
        run = start_workers_daemon(work, args.gateways, ns_address, workers, cpu)
        daemon = run.proc
    tx_acks_forwarded = None
    extra: dict[str, Any] = {}
    try:
        if run is None:
            ports = await read_port_file(port_file)
            wait_quiet_before(args)  # before the tokens are issued: their RX1 slots start 7 s after
        else:
            await run.wait_ready()
            ports = {"udp": run.udp_port, "grpc": run.grpc_port}
            # Here, not after the warm-up: the tokens' RX1 slots start 7 s after they are issued.
            wait_quiet_before(args)
        gws = []
        for i in range(args.gateways):
            gw = await SimulatedGateway.connect(
                ("127.0.0.1", ports["udp"]), (EUI_BASE + i).to_bytes(8, "big"), keep_latencies=False,
                auto_tx_ack=not args.no_tx_ack,
            )
            await gw.pull_data()
            await gw.send_uplink()  # syncs the daemon's clock for this gateway
            gws.append(gw)
        for gw in gws:
            await gw.wait_for_acks(5.0)
        # Warm-up: one downlink per gateway, acknowledged, shows the daemon a jit queue so later PULL_RESPs go
        # out at once instead of being held until 800 ms before transmission.
        tokens = UplinkTokens(TOKEN_KEY)
        total = int((pace or args.rate_hint) * args.seconds)
        per_gateway = total // args.gateways + 1
        now = time.time_ns()
        main = []
        for i, gw in enumerate(gws):
            # First RX1 slot 8 s out: issuing the tokens and the warm-up must not eat into the slots.
            base = gw.tmst() + 7_000_000
            gid, eui = f"bench-{i}", gw.eui
            for k in range(per_gateway):
                ts = (base + k * SLOT_US) % (1 << 32)
                main.append(tokens.issue(gid, eui, 0, ts, now, 0))
        # Interleave gateways so consecutive calls hit different gateways, like a real Network Server.
        main = [main[g * per_gateway + k] for k in range(per_gateway) for g in range(args.gateways)]
        now = time.time_ns()
        warm = [tokens.issue(f"bench-{i}", gw.eui, 0, gw.tmst(), now, 0) for i, gw in enumerate(gws)]
        lat, errors, _ = await call_loop(ports["grpc"], warm, 16, None, channels)
        await asyncio.sleep(1.5)
        if errors:
            print(f"warm-up: {errors} errors", file=sys.stderr)
        if run is not None:
            forwarded_before = forwarded_calls(run)
            spread = asyncio.create_task(connection_spread(daemon.pid, ports["grpc"], 1.0))
        meter = process_meter(daemon.pid, standin)
        meter.start()
        cpu_before = cpu_seconds(daemon.pid)
        sampler = None
        if os.environ.get("SCHEDULE_BENCH_STALLS"):
            sampler = CpuSampler({"daemon": daemon.pid, "client": os.getpid(),
                                  **({"standin": standin.proc.pid} if standin is not None else {})})
        if args.clients <= 1 or pace is not None:
            latencies, errors, elapsed = await call_loop(ports["grpc"], main, args.concurrency, pace, channels)
        else:
            procs, outs = [], []
            for c in range(args.clients):
                chunk = main[c :: args.clients]
                tok_file, out_file = work / f"tokens{c}", work / f"out{c}.json"
                tok_file.write_text("\n".join(base64.b64encode(t).decode() for t in chunk))
                outs.append(out_file)
                procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, __file__, "--client", "--grpc-port", str(ports["grpc"]),
                        "--tokens", str(tok_file), "--out", str(out_file),
                        "--concurrency", str(args.concurrency // args.clients),
                        *(["--channels", str(max(1, channels // args.clients))] if channels > 1 else []),
                    )
                )
            for p in procs:
                await p.wait()
            latencies, errors, elapsed = [], 0, 0.0
            for out in outs:
                data = json.loads(out.read_text())
                latencies += data["latencies"]
                errors += data["errors"]
                elapsed = max(elapsed, data["elapsed"])
        cpu_used = cpu_seconds(daemon.pid) - cpu_before
        if sampler is not None:
            sampler.stop(f"{os.environ['SCHEDULE_BENCH_STALLS']}.cpu.{len(main)}")
        cores = meter.stop()
        extra = {"cores": cores}
        if run is not None:
            cpu_used = cores["daemon_cores"] * meter.wall  # the supervisor and every worker
            forwarded = {k: v - forwarded_before.get(k, 0.0) for k, v in forwarded_calls(run).items()}
            extra = {
                "workers": workers,
                "channels": channels,
                "cores": cores,
                "forwarded": forwarded,
                "connections_per_worker": await spread,
                "daemon_log": str(run.log_path),
            }
        await asyncio.sleep(0.5)
        received = sum(gw.counters.pull_resp_received for gw in gws)
        if standin is not None:
            tx_acks_forwarded = standin.stats()["tx_acks"]
        for gw in gws:
            await gw.close()
    finally:
        if run is not None:
            extra["daemon_exit"] = run.close()
        else:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(10)
            except subprocess.TimeoutExpired:
                daemon.kill()
        if standin is not None:
            standin.close()
    # With --workers the ceiling is measured once, after every worker count (see main()).
    with_floor = not args.no_floor and not stub_downlinks and pace is None and workers is None
    floor_result = await floor(args, main) if with_floor else None
    latencies.sort()
    n = len(latencies)
    return {
        "floor": floor_result,
        "ns": "standin" if standin is not None else "jsonlines",
        "tx_acks_forwarded": tx_acks_forwarded,
        "calls": n,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "calls_per_s": round(n / elapsed),
        "p50_ms": round(latencies[n // 2] / 1e6, 2),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] / 1e6, 2),
        "mean_ms": round(statistics.fmean(latencies) / 1e6, 2),
        "daemon_cpu_s": round(cpu_used, 2),
        "calls_per_daemon_cpu_s": round(n / cpu_used) if cpu_used else None,
        "pull_resp_received": received,
        "gateways": args.gateways,
        "concurrency": args.concurrency,
        "clients": args.clients,
        **extra,
    }


# --- part 4: --workers --------------------------------------------------------------------------------------------


def _uplink_module() -> Any:
    """benchmarks/uplink.py: its daemon launcher, CPU meter and quiet wait are reused here."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import uplink

    return uplink


def start_workers_daemon(work: Path, gateways: int, ns_address: str, workers: int, cpu: int) -> Any:
    """`gatewayserver run` with `workers` workers and the options of `--serve`, from a YAML (JSON) config file.

    The API ports are fixed: every worker binds them with SO_REUSEPORT, and with port 0 each would get its own.
    One worker is pinned to `cpu` like `--serve`; N > 1 workers may use the first N cores.
    """
    uplink = _uplink_module()
    from uplink import Daemon

    class WorkersDaemon(Daemon):
        def __init__(self) -> None:
            self.workers = workers
            self.udp_port = uplink.free_port(socket.SOCK_DGRAM)
            self.http_port = uplink.free_port(socket.SOCK_STREAM)
            self.grpc_port = uplink.free_port(socket.SOCK_STREAM)
            settings = daemon_settings(
                write_registry(work, gateways), ns_address, grpc=f"127.0.0.1:{self.grpc_port}",
                http=f"127.0.0.1:{self.http_port}", udp=f"127.0.0.1:{self.udp_port}",
            )
            config = work / "config.yml"
            config.write_text(json.dumps({**settings, "workers": workers}))  # JSON is YAML
            self.log_path = work / "daemon.log"
            self.keys_path = work / "keys.json"  # Daemon.close() removes it; no API keys needed here
            self._log = open(self.log_path, "wb")
            cpus = {cpu} if workers == 1 else set(sorted(os.sched_getaffinity(0))[:workers])
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gatewayserver", "run", "--config", str(config)],
                cwd=uplink.REPO, stdout=self._log, stderr=subprocess.STDOUT,
                preexec_fn=lambda: os.sched_setaffinity(0, cpus),
            )

    return WorkersDaemon()


def process_meter(daemon_pid: int, standin: Any) -> Any:
    """CPU of the daemon (supervisor and workers summed), the stand-in, this load generator and everything else."""
    uplink = _uplink_module()
    pids = {"daemon": daemon_pid, "client": os.getpid()}
    if standin is not None:
        pids["standin"] = standin.proc.pid
    return uplink.CpuMeter(pids, trees=("daemon",))


def wait_quiet_before(args: argparse.Namespace) -> None:
    """Wait (bounded by `--wait-quiet` seconds) for the rest of the machine to go quiet."""
    if args.wait_quiet > 0:
        busy = _uplink_module().wait_quiet(args.wait_quiet)
        print(f"benchmark: machine busy {busy:.2f} cores before the measurement", file=sys.stderr)


def parse_forwarded(text: str) -> dict[str, float]:
    """`gs_worker_forwarded_calls_total` samples of a /metrics page by `method/code`."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("gs_worker_forwarded_calls_total{"):
            labels, _, value = line.rpartition(" ")
            fields = dict(
                part.split("=", 1) for part in labels[labels.index("{") + 1 : labels.rindex("}")].split(",") if part
            )
            key = f"{fields.get('method', '').strip(chr(34))}/{fields.get('code', '').strip(chr(34))}"
            out[key] = out.get(key, 0.0) + float(value)
    return out


def forwarded_calls(run: Any) -> dict[str, float]:
    """API calls forwarded between workers so far, daemon-wide (any worker's /metrics shows every worker's)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{run.http_port}/metrics", timeout=20) as response:
            return parse_forwarded(response.read().decode())
    except OSError as exc:
        print(f"benchmark: /metrics not readable: {exc}", file=sys.stderr)
        return {}


def _socket_inodes(port: int) -> set[str]:
    """Inodes of the established TCP connections whose local port is `port` (the server side)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    return inodes


async def connection_spread(daemon_pid: int, port: int, after: float) -> dict[str, int]:
    """How the kernel spread the client's connections to `port` over the daemon's processes (pid: count)."""
    await asyncio.sleep(after)
    inodes = _socket_inodes(port)
    out: dict[str, int] = {}
    for pid in [daemon_pid, *_uplink_module()._children(daemon_pid)]:
        count = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    count += 1
        except OSError:
            continue
        if count:
            out[str(pid)] = count
    return out



def worker_counts(text: str) -> list[int]:
    """`--workers 1,2` -> [1, 2]; each count at least 1."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of worker counts, each at least 1 (e.g. 1,2)")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="approximate run length (sizes the token list)")
    parser.add_argument("--rate-hint", type=float, default=1000.0, help="expected calls/s (sizes the token list)")
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--no-tx-ack", action="store_true", help="simulated gateways do not answer PULL_RESPs")
    parser.add_argument("--decisions", type=int, default=20_000, help="calls for the decision-cost part")
    parser.add_argument("--skip-grpc", action="store_true")
    parser.add_argument("--json", action="store_true")
    # internal modes
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    # the default now; kept for old commands
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-floor", action="store_true", help="skip the do-nothing NsGs ceiling")
    parser.add_argument("--half-rate", action="store_true",
                        help="then run again paced at half the calls/s reached, for the latency there")
    parser.add_argument("--api-ceiling", action="store_true",
                        help="also run the daemon with a do-nothing downlink service behind its gRPC API")
    parser.add_argument("--two-call-floor", action="store_true",
                        help="also run the ceiling with one outbound ReportTxAcknowledgment per call (the best a "
                             "design with grpc.aio on both sides of a downlink can reach)")
    parser.add_argument("--ns", choices=("standin", "jsonlines"), default="standin",
                        help="where TX acknowledgments go: the Node.js stand-in Network Server or JSON lines")
    parser.add_argument("--ns-address", default="", help=argparse.SUPPRESS)
    parser.add_argument("--stub-downlinks", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", metavar="PORT_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grpc-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=worker_counts, default=None, metavar="LIST",
                        help="run the gRPC part once per worker count (gatewayserver run --workers N), e.g. 1,2")
    parser.add_argument("--channels", type=int, default=16,
                        help="with --workers: gRPC channels (TCP connections) the client spreads its calls over")
    parser.add_argument("--log-level", default="error", choices=("debug", "info", "warning", "error"),
                        help="the daemon's log level (default error; a daemon runs at info unless told otherwise)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each daemon measurement wait up to this long for the machine to go quiet")
    return parser


def main() -> None:
    args = build_parser().parse_args()

    if args.serve:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        if os.environ.get("SCHEDULE_BENCH_PROFILE"):
            import cProfile

            cProfile.runctx(
                "asyncio.run(serve(Path(args.serve), args.gateways, args.cpu, args.ns_address, args.stub_downlinks,"
                " args.log_level))",
                globals(), locals(), os.environ["SCHEDULE_BENCH_PROFILE"],
            )
        else:
            asyncio.run(
                serve(Path(args.serve), args.gateways, args.cpu, args.ns_address, args.stub_downlinks, args.log_level)
            )
        return
    if args.serve_floor:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(serve_floor(Path(args.serve_floor), args.cpu, args.ns_address))
        return
    if args.client:
        client_main(args)
        return

    results: dict[str, Any] = {"decision": decision_cost(args.decisions)}
    if args.workers and not args.skip_grpc:
        results["workers"] = []
        for count in args.workers:
            run = asyncio.run(drive(args, workers=count))
            if args.half_rate:  # the latency at half the calls/s this worker count reached, paced
                run["half_rate"] = asyncio.run(drive(args, pace=run["calls_per_s"] / 2, workers=count))
            results["workers"].append(run)
        if not args.no_floor:
            wait_quiet_before(args)
            dummy = [bytes(64)] * int(args.rate_hint * args.seconds)
            results["floor"] = asyncio.run(floor(args, dummy, args.channels))
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print(report_workers(results))
        return
    if not args.skip_grpc:
        results["grpc"] = asyncio.run(drive(args))
        g = results["grpc"]
        if g["floor"]:
            f = g["floor"]
            g["ratio_calls_per_s"] = round(g["calls_per_s"] / f["calls_per_s"], 3)
            if g["calls_per_daemon_cpu_s"] and f["calls_per_cpu_s"]:
                g["ratio_calls_per_cpu_s"] = round(g["calls_per_daemon_cpu_s"] / f["calls_per_cpu_s"], 3)
        if args.half_rate:
            results["half_rate"] = asyncio.run(drive(args, pace=g["calls_per_s"] / 2))
        if args.api_ceiling:
            results["api_ceiling"] = asyncio.run(drive(args, stub_downlinks=True))
        if args.two_call_floor:
            results["two_call_floor"] = asyncio.run(two_call_floor(args, [bytes(64)] * g["calls"]))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    d = results["decision"]
    print("pure scheduling decision (no I/O):")
    print(f"  plan_request, duty cycle off : {d['plan_request_duty_cycle_off_us']:.1f} µs")
    print(f"  plan_request, duty cycle on  : {d['plan_request_duty_cycle_on_us']:.1f} µs")
    print(f"  GatewayScheduler.schedule_at : {d['scheduler_schedule_at_us']:.1f} µs")
    if "grpc" in results:
        g = results["grpc"]
        print(
            f"NsGs.ScheduleDownlink over gRPC ({g['gateways']} gateways, concurrency {g['concurrency']}, "
            f"{g['clients']} client process(es), daemon pinned to one CPU):"
        )
        print(f"  {g['calls']} calls in {g['seconds']} s, {g['errors']} errors")
        print(f"  {g['calls_per_s']} calls/s   p50 {g['p50_ms']} ms   p99 {g['p99_ms']} ms")
        print(f"  daemon CPU {g['daemon_cpu_s']} s -> {g['calls_per_daemon_cpu_s']} calls per CPU-second")
        print("  cores: " + _cores(g["cores"]))
        print(f"  PULL_RESP received by the simulated gateways: {g['pull_resp_received']}")
        if g["tx_acks_forwarded"] is not None:
            print(f"  TX acknowledgments received by the stand-in Network Server: {g['tx_acks_forwarded']}")
        else:
            print("  TX acknowledgments written as JSON lines to /dev/null (no Network Server)")
        if g["floor"]:
            f = g["floor"]
            print(
                f"  ceiling, same run (do-nothing NsGs handler, same client): {f['calls_per_s']} calls/s, "
                f"{f['calls_per_cpu_s']} calls per CPU-second; cores: {_cores(f['cores'])}"
            )
            print(
                f"  ScheduleDownlink / ceiling: {g['ratio_calls_per_s']:.2f} in calls/s, "
                f"{g.get('ratio_calls_per_cpu_s', 0):.2f} in calls per daemon CPU-second"
            )
    if "half_rate" in results:
        h = results["half_rate"]
        print(
            f"at half that rate, paced ({h['calls_per_s']} calls/s, {h['errors']} errors): "
            f"p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms; cores: {_cores(h['cores'])}"
        )
    if "api_ceiling" in results:
        a = results["api_ceiling"]
        print(
            f"daemon with a do-nothing downlink service (gRPC API, auth, metrics): {a['calls_per_s']} calls/s, "
            f"p99 {a['p99_ms']} ms, {a['calls_per_daemon_cpu_s']} calls per CPU-second; cores: {_cores(a['cores'])}"
        )
    t = results.get("two_call_floor")
    if t:
        f = results["grpc"]["floor"]
        print(
            f"two-call floor (do-nothing handler + one outbound ReportTxAcknowledgment per call): "
            f"{t['calls_per_s']} calls/s, {t['calls_per_cpu_s']} calls per CPU-second; outbound {t['outbound']}, "
            f"at the stand-in {t['tx_acks_at_standin']}; cores: {_cores(t['cores'])}"
        )
        if f:
            print(
                f"  two-call floor / ceiling: {t['calls_per_s'] / f['calls_per_s']:.2f} in calls/s, "
                f"{t['calls_per_cpu_s'] / f['calls_per_cpu_s']:.2f} in calls per CPU-second "
                "(the most any daemon making that call per downlink could reach)"
            )


def _cores(cores: dict[str, float]) -> str:
    """`daemon 0.93, client 0.45, standin 0.3, other 0.05`: cores used per process during the measurement."""
    return ", ".join(f"{k.removesuffix('_cores')} {v}" for k, v in cores.items())


def report_workers(results: dict[str, Any]) -> str:
    f = results.get("floor")
    runs = results["workers"]
    lines = [f"NsGs.ScheduleDownlink over gRPC per worker count ({runs[0]['gateways']} gateways, "
             f"concurrency {runs[0]['concurrency']}, {runs[0]['channels']} client channels):"]
    for r in runs:
        c = r["cores"]
        per_call = round(r["daemon_cpu_s"] / r["calls"] * 1e6) if r["calls"] else None
        forwarded_ok = sum(v for k, v in r["forwarded"].items() if k.startswith("ScheduleDownlink/"))
        lines.append(
            f"  --workers {r['workers']}: {r['calls_per_s']} calls/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
            f"{r['errors']} errors; daemon CPU {per_call} µs per call; cores: "
            + ", ".join(f"{k.removesuffix('_cores')} {v}" for k, v in c.items())
        )
        lines.append(
            f"      served where they arrived {r['calls'] - forwarded_ok:.0f}, forwarded to the owner "
            f"{forwarded_ok:.0f} (all forwarded: {r['forwarded'] or 0}); client connections per process "
            f"(pid: count): {r['connections_per_worker']}; PULL_RESP {r['pull_resp_received']}, "
            f"TX acks at the NS {r['tx_acks_forwarded']}; exit {r.get('daemon_exit')}"
        )
        h = r.get("half_rate")
        if h:
            lines.append(f"      at half that rate, paced ({h['calls_per_s']} calls/s, {h['errors']} errors): "
                         f"p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms; cores: "
                         + ", ".join(f"{k.removesuffix('_cores')} {v}" for k, v in h["cores"].items()))
    if f:
        lines.append(f"  do-nothing NsGs ceiling, same run, same client: {f['calls_per_s']} calls/s, "
                     f"{f['calls_per_cpu_s']} calls per CPU-second")
        for r in runs:
            lines.append(f"  --workers {r['workers']} / ceiling: {r['calls_per_s'] / f['calls_per_s']:.2f}")
    if len(runs) > 1 and runs[0]["calls_per_s"]:
        base = runs[0]
        base_cpu = base["daemon_cpu_s"] / base["calls"]
        for r in runs[1:]:
            growth = 100 * (r["daemon_cpu_s"] / r["calls"] / base_cpu - 1) if base_cpu and r["calls"] else 0.0
            lines.append(f"  {r['workers']} vs {base['workers']} workers: calls/s "
                         f"×{r['calls_per_s'] / base['calls_per_s']:.2f}, daemon CPU per call {growth:+.0f} %")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
