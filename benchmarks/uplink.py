#!/usr/bin/env python3
"""Uplink path benchmark: sustained uplinks/s, latency and memory per idle gateway, beside the gRPC ceiling.

What it does, in order (loopback only; every process is stopped at the end; bounded in steps and time):

1. Starts the stand-in Network Server (``benchmarks/standin_ns``, Node.js ``@grpc/grpc-js``; ``npm ci`` first
   when ``node_modules`` is missing), pinned to the auxiliary core.
2. **Ceiling**: one Python process pinned to the daemon's core calls ``GsNs/HandleUplink`` with a realistic
   ``UplinkMessage`` (bounded concurrency) against the same stand-in: what plain grpc.aio can do on one core.
3. Starts ``gatewayserver run`` pinned to its own core and drives it with the simulator (in this process,
   pinned to the auxiliary core) at increasing rates; a rate is *sustained* when fewer than 0.1 % of the uplinks
   sent are missing at the stand-in one settle period after the last send. The search ramps, then bisects.
   The same search then runs with the simulator's gateways linked through ``GtwGs.LinkGateway`` (gRPC frontend,
   ``--protocols``), against the same daemon and stand-in, so both frontends' figures come from one run.
4. **Latency** at half the sustained rate: datagram read (``UplinkMessage.received_at``, set by the daemon) to
   stand-in receipt, and simulator send (stamp in the FRMPayload) to stand-in receipt; p50/p99.
5. **Memory per idle gateway**: a fresh daemon; RSS before, then 10,000 simulated gateways (two simulator
   processes, two sockets per gateway) each send one PULL_DATA and one stat and stay connected; RSS delta / N.

CPU use of every process and of everything else on the machine is sampled per phase: these machines are shared,
and a result measured while something else used the cores says so in the output.

    .venv/bin/python benchmarks/uplink.py            # full run, a few minutes
    .venv/bin/python benchmarks/uplink.py --quick    # shorter steps, 2,000 idle gateways
    .venv/bin/python benchmarks/uplink.py --json     # machine-readable result on stdout
    .venv/bin/python benchmarks/uplink.py --workers 1,2 --phases rate   # the rate search per worker count
    .venv/bin/python benchmarks/uplink.py --redis --phases rate    # CPU per uplink without and with --redis-url

With ``--workers 1,2`` the rate search runs once per worker count in the same run. One worker is pinned to the
daemon's core as usual; N > 1 workers may use the first N cores (the stand-in and the load generator share them on
a small machine). Daemon CPU is summed over the supervisor and every worker process. There the load generator is
``lean_uplinks.py`` (its own process, ~20 µs per uplink instead of the simulator's 85-195) unless
``--udp-sender simulator``: on two cores the simulator's CPU, not the daemon, decided the comparison.
``--udp-sender lean`` uses it for every UDP rate step; LinkGateway steps always use the simulator.

With ``--redis`` the rate search is replaced by a comparison at one fixed rate (``--redis-rate``): two daemons
identical but for ``--redis-url`` (a redis-server started here, on the auxiliary core), measured in alternating
steps; the report gives the daemon's CPU per uplink for each and the growth (issue 13's goal: at most +15 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STANDIN_DIR = REPO / "benchmarks" / "standin_ns"
LEAN_SENDER = REPO / "benchmarks" / "lean_uplinks.py"
sys.path.insert(0, str(REPO))

from gatewayserver.simulator import (  # noqa: E402
    SimulatedDevice,
    SimulatedGateway,
    SimulationConfig,
    percentile,
    run_simulation,
)

LOSS_LIMIT = 0.001  # < 0.1 % missing counts as sustained
DELIVERY_DEADLINE_MS = 1000.0  # an uplink reaching the stand-in later than this after its send counts as lost
GROWTH_LIMIT_MS = 50.0  # p10 send→NS latency may not grow more than this from a step's first to last fifth
CONTENDED_CORES = 0.3  # a step during which other processes used more than this is measured again
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- CPU accounting -------------------------------------------------------------------------------------------


def _proc_cpu_seconds(pid: int, *, children: bool = False) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime of reaped children
    return ticks / CLK_TCK


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return (sum(parts[:8]) - idle) / CLK_TCK


def _core_busy_seconds() -> list[float]:
    """Busy seconds of each core (the `cpuN` lines of /proc/stat), to see which core a step saturated."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = [int(x) for x in line.split()[1:]]
                out.append((sum(parts[:8]) - parts[3] - parts[4]) / CLK_TCK)
    return out


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _children(pid: int) -> list[int]:
    """Live child processes of `pid` (the workers of a `--workers N` supervisor)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


class CpuMeter:
    """CPU seconds used by named processes and by everything else, between start() and stop().

    Names in `trees` count the process and its children alive at start() (a supervisor and its workers).
    """

    def __init__(self, pids: dict[str, int], trees: tuple[str, ...] = ()):
        self.pids = dict(pids)
        self.trees = trees

    def _seconds(self, name: str) -> float:
        pid = self.pids[name]
        if name in self.trees:
            return sum(max(0.0, _proc_cpu_seconds(p) - self._tree_start.get(p, 0.0)) for p in self._tree[name])
        return _proc_cpu_seconds(pid, children=(pid == os.getpid())) - self._own[name]

    def start(self) -> None:
        self._t = time.monotonic()
        self._busy = _machine_busy_seconds()
        self._cores = _core_busy_seconds()
        self._own = {name: _proc_cpu_seconds(pid, children=(pid == os.getpid())) for name, pid in self.pids.items()}
        self._tree = {name: [self.pids[name], *_children(self.pids[name])] for name in self.trees}
        self._tree_start = {p: _proc_cpu_seconds(p) for pids in self._tree.values() for p in pids}

    def processes(self, name: str) -> int:
        return len(self._tree.get(name, [self.pids[name]]))

    def stop(self) -> dict[str, float]:
        wall = self.wall = time.monotonic() - self._t
        busy = _machine_busy_seconds() - self._busy
        used = {name: self._seconds(name) for name in self.pids}
        result = {f"{name}_cores": round(v / wall, 2) for name, v in used.items()}
        result["other_cores"] = round(max(0.0, busy - sum(used.values())) / wall, 2)
        # Per core (busy fraction) and per process of a tree (supervisor first, then the workers): where the
        # step's limit was, e.g. one core saturated while another idled.
        for n, (b0, b1) in enumerate(zip(self._cores, _core_busy_seconds(), strict=False)):
            result[f"core{n}_busy"] = round((b1 - b0) / wall, 2)
        for name in self.trees:
            for k, p in enumerate(self._tree[name]):
                used_p = max(0.0, _proc_cpu_seconds(p) - self._tree_start.get(p, 0.0))
                result[f"{name}_{k}_cores"] = round(used_p / wall, 2)
        return result


def wait_quiet(max_seconds: float, threshold_cores: float = 0.15) -> float:
    """On a shared machine, wait (bounded) for the rest of the machine to go quiet; returns the last busy level."""
    deadline = time.monotonic() + max_seconds
    busy = 0.0
    while True:
        b0, t0 = _machine_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy = (_machine_busy_seconds() - b0) / (time.monotonic() - t0)
        if busy < threshold_cores or time.monotonic() >= deadline:
            return busy


# --- processes ------------------------------------------------------------------------------------------------


def pinned(cpu: int | None):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class StandinNs:
    """The Node.js stand-in Network Server and its HTTP control endpoint."""

    def __init__(self, cpu: int | None, engine: str = "http2"):
        node = shutil.which("node")
        if node is None:
            raise SystemExit("benchmark: Node.js (node) is needed for the stand-in Network Server")
        if not (STANDIN_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
            log("installing the stand-in's packages (npm ci)")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=STANDIN_DIR, check=True,
                           stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen(
            # Old space starts large: the garbage grpc-js promotes under load otherwise triggers a 20-50 ms
            # mark-compact pause every second or so, which the benchmark would report as the daemon's latency.
            [node, "--initial-old-space-size=1024", str(STANDIN_DIR / "server.js"), "--host", "127.0.0.1",
             "--port", "0", "--control-port", "0", "--proto-root", str(REPO / "proto"), "--engine", engine],
            stdout=subprocess.PIPE, text=True, preexec_fn=pinned(cpu),
        )
        assert self.proc.stdout is not None  # stdout=PIPE
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"benchmark: stand-in Network Server did not start (exit {self.proc.wait()})")
        ports = json.loads(line)
        self.grpc_port: int = ports["grpc_port"]
        self.control_port: int = ports["control_port"]

    def stats(self, reset: bool = False) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.control_port}/stats" + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)

    def reset(self) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/reset", timeout=10):
            pass

    def count(self) -> int:
        # /stats carries every latency; fine at these sizes and only read a few times per step.
        return self.stats()["uplinks"]

    def close(self) -> None:
        stop_process(self.proc)


class LeanSender:
    """`lean_uplinks.py --serve`: the lean UDP load generator, one process for the whole run (see its docstring).

    Its own process so that its CPU is read from /proc and reported as the step's "simulator", pinned like the
    simulator (the auxiliary core), started once so that its start-up is not charged to a step.
    """

    def __init__(self, cpu: int | None):
        self.proc = subprocess.Popen([sys.executable, str(LEAN_SENDER), "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=pinned(cpu))

    async def run(self, config: dict[str, Any]) -> dict[str, Any]:
        """One step; the summary has the keys `run_step` reads from `run_simulation`."""
        assert self.proc.stdin is not None and self.proc.stdout is not None  # PIPEs
        self.proc.stdin.write(json.dumps(config) + "\n")
        self.proc.stdin.flush()
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if not line:
            raise SystemExit(f"benchmark: the lean sender exited ({self.proc.wait()})")
        summary: dict[str, Any] = json.loads(line)
        if "error" in summary:
            raise SystemExit(f"benchmark: the lean sender failed: {summary['error']}")
        return summary

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # EOF: it exits after the step in progress
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)


def udp_sender(args: argparse.Namespace, comparing_workers: bool) -> str:
    """Which load generator drives the UDP rate steps: `--udp-sender`; `auto` is the lean one only where the
    load generator shares the cores with what it measures in a way that decides the result (`--workers`)."""
    if args.udp_sender == "auto":
        return "lean" if comparing_workers else "simulator"
    return str(args.udp_sender)


class Daemon:
    def __init__(self, ns_port: int, cpu: int | None, extra: list[str], workers: int = 1,
                 cpus: set[int] | None = None):
        self.workers = workers
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port(socket.SOCK_STREAM)
        self.grpc_port = free_port(socket.SOCK_STREAM)
        # A link key for every simulated gateway (`eui-…`), for the LinkGateway steps.
        from gatewayserver.api.keys import create_key

        self.keys_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gs-bench-keys-{os.getpid()}-{self.udp_port}.json"
        self.keys_path.unlink(missing_ok=True)
        self.api_key, _ = create_key(str(self.keys_path), "bench", ["RIGHT_GATEWAY_LINK"])
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gs-bench-daemon-{os.getpid()}-{self.udp_port}.log"
        self._log = open(self.log_path, "wb")
        cmd = [
            sys.executable, "-m", "gatewayserver", "run",
            "--ns-address", f"127.0.0.1:{ns_port}",
            "--udp-listen", f"127.0.0.1:{self.udp_port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--grpc-listen", f"127.0.0.1:{self.grpc_port}",
            "--keys-file", str(self.keys_path),
            "--log-level", "warning",
            *(["--workers", str(workers)] if workers > 1 else []),
            # "{grpc_port}" in an extra argument: this daemon's gRPC port (e.g. its cluster advertise address).
            *(arg.replace("{grpc_port}", str(self.grpc_port)) for arg in extra),
        ]
        preexec = pinned(cpu) if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=preexec)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Ready when a PULL_DATA gets its PULL_ACK (one owned by each worker)."""
        deadline = time.monotonic() + timeout
        pending = [0xFF] if self.workers == 1 else [0xF0 + k for k in range(self.workers)]  # 0xF0 % N == 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"benchmark: daemon exited with {self.proc.returncode}; log: {self.log_path}")
            gw = await SimulatedGateway.connect(("127.0.0.1", self.udp_port), bytes(7) + bytes([pending[0]]))
            try:
                await gw.pull_data()
                if await gw.wait_for_acks(0.5):
                    pending.pop(0)
                    if not pending:
                        return
            finally:
                await gw.close()
        raise SystemExit(f"benchmark: daemon not ready after {timeout} s; log: {self.log_path}")

    def metric(self, name: str) -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10) as r:
                text = r.read().decode()
        except OSError:
            return None
        total = None
        for line in text.splitlines():
            if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
                total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
        return total

    def close(self) -> int | None:
        code = stop_process(self.proc, 15.0)
        self._log.close()
        self.keys_path.unlink(missing_ok=True)
        return code


# --- the ceiling ----------------------------------------------------------------------------------------------


def realistic_uplink():
    """An UplinkMessage shaped like the daemon's: decoded payload, settings, metadata with token, two ids."""
    from gatewayserver.ttnpb import lorawan_pb2, messages_pb2

    frame = SimulatedDevice(0x26011234).next_frame(12)
    m = messages_pb2.UplinkMessage()
    m.raw_payload = frame
    m.payload.m_hdr.m_type = lorawan_pb2.UNCONFIRMED_UP
    m.payload.mic = frame[-4:]
    mac = m.payload.mac_payload
    mac.f_hdr.dev_addr = frame[1:5][::-1]
    mac.f_hdr.f_ctrl.SetInParent()
    mac.f_hdr.f_cnt = 0
    mac.f_port = 1
    mac.frm_payload = frame[9:-4]
    lora = m.settings.data_rate.lora
    lora.bandwidth, lora.spreading_factor, lora.coding_rate = 125_000, 7, "4/5"
    m.settings.frequency = 868_100_000
    m.settings.timestamp = 2_842_944_106
    md = m.rx_metadata.add()
    md.gateway_ids.gateway_id = "eui-0016c001ff000000"
    md.gateway_ids.eui = bytes.fromhex("0016c001ff000000")
    md.timestamp = 2_842_944_106
    md.rssi = md.channel_rssi = -98.0
    md.snr = -3.0
    md.uplink_token = bytes(range(80))
    m.correlation_ids.extend(["gs:conn:01M80RCD2Z4S0HG1XXXYA3KMNH", "gs:uplink:01M80RCD30CT7DYMR6QDBHRDKS"])
    m.crc_status.value = True
    return m


async def _ceiling_client(port: int, seconds: float, concurrency: int, mode: str = "plain") -> dict[str, Any]:
    """`plain`: the generated stub on a default channel (the issue's ceiling). `daemon`: the stub on the daemon's
    own channel options (`upstream.ns.CHANNEL_OPTIONS`), the call path the daemon really uses."""
    import grpc

    from gatewayserver.ttnpb import networkserver_pb2_grpc
    from gatewayserver.upstream.ns import CHANNEL_OPTIONS

    template = realistic_uplink()
    options = CHANNEL_OPTIONS if mode == "daemon" else ()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = networkserver_pb2_grpc.GsNsStub(channel)
        await stub.HandleUplink(template, timeout=10)
        calls = 0
        errors = 0
        stop_at = 0.0

        async def worker() -> None:
            nonlocal calls, errors
            m = realistic_uplink()
            while time.monotonic() < stop_at:
                now = time.time_ns()
                m.received_at.FromNanoseconds(now)
                m.rx_metadata[0].received_at.FromNanoseconds(now)
                try:
                    await stub.HandleUplink(m, timeout=10)
                    calls += 1
                except grpc.aio.AioRpcError:
                    errors += 1

        stop_at = time.monotonic() + 1.0  # warm-up
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        calls = errors = 0
        start = time.monotonic()
        cpu_start = time.process_time()
        stop_at = start + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
        cpu = time.process_time() - cpu_start
    return {"calls": calls, "errors": errors, "seconds": elapsed, "rate": calls / elapsed, "concurrency": concurrency,
            "mode": mode,
            "client_cores": round(cpu / elapsed, 2), "client_total_cpu_seconds": time.process_time()}


def measure_ceiling(ns: StandinNs, cpu: int | None, seconds: float, concurrency: int,
                    mode: str = "plain") -> dict[str, Any]:
    quiesce(ns)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--ceiling-client", str(ns.grpc_port), str(seconds), str(concurrency), mode],
        stdout=subprocess.PIPE, text=True, preexec_fn=pinned(cpu), cwd=REPO,
    )
    # The client reports its own CPU use (it has exited before we could read /proc); the meter covers the rest.
    meter = CpuMeter({"standin": ns.proc.pid})
    meter.start()
    out, _ = proc.communicate(timeout=seconds + 60)
    cpu_use = meter.stop()
    if proc.returncode != 0:
        raise SystemExit("benchmark: ceiling client failed")
    result = json.loads(out)
    # The meter saw the client as "other" over its whole life; take that out again.
    client_share = result["client_total_cpu_seconds"] / meter.wall
    cpu_use["other_cores"] = round(max(0.0, cpu_use["other_cores"] - client_share), 2)
    stats = ns.stats(reset=True)
    lat = sorted(stats["read_latency_us"])
    result.update(cpu_use)
    result["latency_us"] = {"p50": percentile(lat, 50), "p99": percentile(lat, 99)}
    return result


def quiesce(ns: StandinNs, timeout: float = 15.0) -> None:
    """Wait until nothing more arrives at the stand-in (a previous phase's tail), up to a bound."""
    deadline = time.monotonic() + timeout
    last = ns.count()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = ns.count()
        if now == last:
            return
        last = now


# --- uplink rate steps ----------------------------------------------------------------------------------------


@dataclass
class Step:
    rate: float
    sent: int = 0
    achieved_rate: float = 0.0
    received: int = 0
    loss: float = 1.0
    push_acks_lost: int = 0
    read_us: dict[str, float | None] = field(default_factory=dict)
    send_us: dict[str, float | None] = field(default_factory=dict)
    push_ack_ms: dict[str, float | None] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    late: int = 0  # arrived, but after DELIVERY_DEADLINE_MS (counted in loss)
    growth_ms: float = 0.0  # p10 send→NS latency, last fifth minus first fifth: a growing backlog
    sender: str = "simulator"  # the load generator: `run_simulation` in this process, or lean_uplinks.py
    sender_cpu_us: float | None = None  # lean_uplinks.py's own CPU per uplink sent (sockets, sending, acks, drain)

    @property
    def contended(self) -> bool:
        return self.cpu.get("other_cores", 0.0) > CONTENDED_CORES

    @property
    def ok(self) -> bool:
        return not self.verdict

    @property
    def verdict(self) -> str:
        """Why a step failed: uplinks lost or late, a growing backlog, the simulator, or other processes."""
        if self.loss >= LOSS_LIMIT:
            return "  loss"
        if self.growth_ms > GROWTH_LIMIT_MS:
            return "  backlog"
        if self.achieved_rate < 0.97 * self.rate:
            return "  sim-bound"
        if self.contended:
            return "  contended"
        return ""

    def row(self) -> str:
        def f(d: dict[str, float | None], k: str) -> str:
            v = d.get(k)
            return "-" if v is None else f"{v / 1000:.2f}"
        return (f"{self.rate:>8.0f} {self.achieved_rate:>8.0f} {self.sent:>8} {self.received:>8} "
                f"{100 * self.loss:>7.3f}% {f(self.read_us, 'p50'):>7} {f(self.read_us, 'p99'):>7} "
                f"{f(self.send_us, 'p50'):>7} {f(self.send_us, 'p99'):>7} "
                f"{self.cpu.get('daemon_cores', 0):>5.2f} {self.cpu.get('standin_cores', 0):>5.2f} "
                f"{self.cpu.get('simulator_cores', 0):>5.2f} {self.cpu.get('other_cores', 0):>5.2f} "
                f"{'lean' if self.sender == 'lean' else 'sim':>4}{self.verdict}")


STEP_HEADER = ("    rate     sent    count  at NS     loss  read→NS ms      send→NS ms    CPU cores used      load\n"
               "  target achieved                         p50     p99     p50     p99 daemon   NS   sim other  gen.")
# "sim" is the load generator's CPU, "load gen." which one it was (sim: the simulator, lean: lean_uplinks.py).
# loss counts uplinks missing or later than DELIVERY_DEADLINE_MS; "backlog": the p10 latency grew by more than
# GROWTH_LIMIT_MS during the step (the daemon was falling behind even if nothing was lost yet).


async def run_step(daemon: Daemon, ns: StandinNs, rate: float, seconds: float, gateways: int, eui_base: int,
                   settle: float, protocol: str = "udp", also: dict[str, int] | None = None,
                   lean: LeanSender | None = None) -> Step:
    """One step at `rate`; `also` names more processes whose CPU is reported apart from "other" (redis-server).

    With `lean` (UDP only) the lean sender drives the step; its process is the step's "simulator", and this
    process, which then only waits, is reported apart as "bench".
    """
    lean = lean if protocol == "udp" else None
    quiesce(ns)
    ns.reset()
    load = {"simulator": os.getpid()} if lean is None else {"simulator": lean.proc.pid, "bench": os.getpid()}
    meter = CpuMeter({"daemon": daemon.proc.pid, "standin": ns.proc.pid, **load, **(also or {})},
                     trees=("daemon",))
    meter.start()
    port = daemon.grpc_port if protocol == "grpc" else daemon.udp_port
    if lean is not None:
        summary = await lean.run({
            "address": ["127.0.0.1", port], "gateways": gateways, "rate": rate, "duration": seconds,
            "eui_base": eui_base, "payload_size": 12, "spreading_factors": [7, 8, 9, 10], "keepalive": 10.0,
            "seed": eui_base & 0xFFFF,
        })
    else:
        summary = await run_simulation(SimulationConfig(
            protocol=protocol, api_key=daemon.api_key,
            address=("127.0.0.1", port), gateways=gateways, rate=rate, duration=seconds,
            eui_base=eui_base, stat_interval=30.0, keepalive_interval=10.0, start_spread=0.2, drain=0.0,
            payload_size=12, spreading_factors=(7, 8, 9, 10), seed=eui_base & 0xFFFF,
        ))
    # Whatever has not reached the stand-in one settle period after the last send is counted as lost.
    await asyncio.sleep(settle)
    step = Step(rate=rate, sender="simulator" if lean is None else "lean")
    step.cpu = meter.stop()
    step.cpu["wall_seconds"] = round(meter.wall, 3)
    stats = ns.stats(reset=True)
    # Count only what this step sent (by the send stamp): a late tail of an earlier phase must not fill the gap.
    first_ms = summary["send_start_unix_ns"] / 1e6 - 1.0
    mine = [r for r in stats["stamped"] if r[0] >= first_ms]
    step.sent = summary["uplinks_sent"]
    step.achieved_rate = summary["achieved_rate"]
    step.received = len(mine)
    step.late = sum(1 for r in mine if r[1] > DELIVERY_DEADLINE_MS * 1000)
    step.loss = max(0.0, 1 - (step.received - step.late) / step.sent) if step.sent else 1.0
    if len(mine) >= 50:
        ordered = sorted(mine)
        fifth = len(ordered) // 5
        first = sorted(r[1] for r in ordered[:fifth])
        last = sorted(r[1] for r in ordered[-fifth:])
        # The 10th percentile: a growing queue delays every uplink, a passing hiccup (GC, a scheduler blip) only some.
        step.growth_ms = round((last[len(last) // 10] - first[len(first) // 10]) / 1000, 2)
    step.push_acks_lost = summary["push_acks_lost"]
    step.sender_cpu_us = summary.get("cpu_us_per_uplink")
    step.push_ack_ms = summary["push_ack_latency_ms"]
    for name, column in (("send_us", 1), ("read_us", 2)):
        values = sorted(r[column] for r in mine if r[column] is not None)
        setattr(step, name, {"p50": percentile(values, 50), "p99": percentile(values, 99),
                             "max": values[-1] if values else None})
    return step


def before_phase(args: argparse.Namespace) -> None:
    if args.wait_quiet > 0:
        busy = wait_quiet(args.wait_quiet)
        if busy >= 0.15:
            log(f"machine still busy ({busy:.2f} cores) after waiting {args.wait_quiet:.0f} s; measuring anyway")


async def find_sustained(daemon: Daemon, ns: StandinNs, args: argparse.Namespace, start_rate: float,
                         steps: list[Step], protocol: str = "udp", lean: LeanSender | None = None) -> float:
    """Ramp up by ``--ramp-factor`` until a step fails, then bisect; at most ``--max-steps`` steps."""
    eui = 0x0016C00100000000

    async def measure(rate: float) -> Step:
        nonlocal eui
        eui += 0x10000  # fresh EUIs per step: no leftover connection state from the previous one
        await asyncio.sleep(1.0)  # let the previous step's tail drain
        for attempt in range(3):
            before_phase(args)
            step = await run_step(daemon, ns, rate, args.step_seconds, args.gateways, eui, args.settle, protocol,
                                  lean=lean)
            steps.append(step)
            print(step.row(), file=sys.stderr, flush=True)
            if not step.contended or attempt == 2 or len(steps) >= args.max_steps:
                break
            eui += 0x10000
            await asyncio.sleep(1.0)
        return step

    good, bad = 0.0, None
    rate = start_rate
    while len(steps) < args.max_steps and rate <= args.max_rate:
        step = await measure(rate)
        if step.verdict.strip() == "contended":
            break  # the machine never went quiet enough; stop rather than guess
        if step.ok:
            good = rate
            rate *= args.ramp_factor
        else:
            bad = rate
            break
    if bad is None:
        return good
    while len(steps) < args.max_steps and (bad - good) > max(100.0, 0.03 * bad):
        mid = round((good + bad) / 2, -1) if good else bad / 2
        step = await measure(mid)
        if step.verdict.strip() == "contended":
            break
        if step.ok:
            good = mid
        else:
            bad = mid
    return good


# --- idle gateways --------------------------------------------------------------------------------------------


async def measure_idle_memory(ns: StandinNs, args: argparse.Namespace) -> dict[str, Any]:
    # Two simulator processes on loopback bring 10,000 unregistered gateways from one host in seconds: exactly what
    # the per-source budget for new gateways refuses, so it is off for this measurement of memory alone.
    daemon = Daemon(ns.grpc_port, args.daemon_cpu, [*args.daemon_arg, "--new-gateways-per-source", "0"])
    try:
        await daemon.wait_ready()
        # Warm the daemon up (imports, first connection, first uplink) so the baseline is its steady state.
        await run_simulation(SimulationConfig(address=("127.0.0.1", daemon.udp_port), gateways=10, rate=100,
                                              duration=1.0, eui_base=0x0016C00200000000, drain=1.0))
        await asyncio.sleep(1.0)
        before = rss_kib(daemon.proc.pid)
        connected_before = daemon.metric("gs_gateways_connected")
        n = args.idle_gateways
        procs = 2 if n > 4000 else 1
        per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        hold = args.idle_hold
        sims = []
        started = time.monotonic()
        base = 0x0016C00300000000
        for i, count in enumerate(per):
            sims.append(subprocess.Popen(
                [sys.executable, "-m", "gatewayserver.simulator", "--address", f"127.0.0.1:{daemon.udp_port}",
                 "--gateways", str(count), "--rate", "0", "--duration", "0", "--hold", str(hold),
                 "--start-spread", str(args.idle_spread), "--keepalive-interval", "0", "--stat-interval", "3600",
                 "--eui-base", f"{base + sum(per[:i]):016x}", "--ack-timeout", "5", "--drain", "3", "--json"],
                stdout=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=pinned(args.aux_cpu),
            ))
        # UDP has no disconnect: the daemon keeps every gateway until its connection expires (3 min by default), so
        # sample once both simulators have finished and confirmed every ack, well inside that window.
        summaries = []
        for p in sims:
            out, _ = p.communicate(timeout=hold + 300)
            summaries.append(json.loads(out))
        elapsed = time.monotonic() - started
        samples = []
        for _ in range(4):
            samples.append(rss_kib(daemon.proc.pid))
            await asyncio.sleep(0.5)
        connected = daemon.metric("gs_gateways_connected")
        after = max(samples)
        if time.monotonic() - started > 150:
            log("warning: connecting took so long that the first connections may have expired already")
        pull_acks = sum(s["pull_acks"] for s in summaries)
        push_acks = sum(s["push_acks"] for s in summaries)
        lost = sum(s["pull_acks_lost"] + s["push_acks_lost"] for s in summaries)
        return {
            "gateways": n,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "bytes_per_gateway": round((after - before) * 1024 / n),
            "connected_metric_before": connected_before,
            "connected_metric": connected,
            "pull_acks": pull_acks,
            "push_acks": push_acks,
            "acks_lost": lost,
            "ack_latency_p99_ms": max((s["pull_ack_latency_ms"]["p99"] or 0) for s in summaries),
            "seconds_to_connect_all": round(elapsed, 1),
        }
    finally:
        daemon.close()


class _Skip(Exception):
    pass


# --- worker counts --------------------------------------------------------------------------------------------


async def compare_workers(ns: StandinNs, args: argparse.Namespace, cpus: list[int],
                          ceiling: dict[str, Any] | None, lean: LeanSender | None = None) -> list[dict[str, Any]]:
    """The rate search once per `--workers` count; daemon CPU summed over the supervisor and its workers.

    With `lean` the lean sender drives the steps (`--udp-sender auto` or `lean`), so that the load generator takes
    as little as possible of the cores the workers share with it."""
    runs = []
    start = args.start_rate or (max(500.0, round(ceiling["rate"] * 0.25, -2)) if ceiling else 1000.0)
    # With --workers-repeat R the searches alternate (1 2, 2 1, 1 2, ...): one search's result moves by ±20 % from
    # run to run on these machines, so a comparison of single searches says little; the medians say more.
    order = [(r, count) for r in range(args.workers_repeat)
             for count in (args.workers if r % 2 == 0 else args.workers[::-1])]
    for round_, count in order:
        if count == 1:
            daemon = Daemon(ns.grpc_port, args.daemon_cpu, args.daemon_arg)
        else:
            daemon = Daemon(ns.grpc_port, None, args.daemon_arg, workers=count, cpus=set(cpus[:count]))
        steps: list[Step] = []
        try:
            await daemon.wait_ready()
            log(f"uplink rate search with {count} worker(s), load generator: "
                f"{'lean_uplinks.py' if lean else 'the simulator'}\n" + STEP_HEADER)
            sustained = await find_sustained(daemon, ns, args, start, steps, lean=lean)
        finally:
            code = daemon.close()
        held = [st for st in steps if st.ok and st.rate == sustained]
        limits = [st for st in steps if st.rate > sustained and st.verdict.strip() in ("loss", "backlog")]
        cores = held[-1].cpu.get("daemon_cores", 0.0) if held else 0.0
        rate = held[-1].achieved_rate if held else 0.0
        runs.append({
            "workers": count,
            "round": round_,
            "sender": "lean" if lean else "simulator",
            "sustained_rate": sustained,
            "daemon_cores": cores,
            "daemon_cpu_per_uplink_us": round(cores / rate * 1e6, 1) if rate else None,
            "cpu_at_sustained": held[-1].cpu if held else {},
            # The lowest rate that failed for the daemon's sake (not contended, not the load generator): whose
            # core was full there says what limited the rate.
            "cpu_at_limit": min(limits, key=lambda st: st.rate).cpu if limits else {},
            "limit_rate": min(st.rate for st in limits) if limits else None,
            "limit_verdict": min(limits, key=lambda st: st.rate).verdict.strip() if limits else None,
            "steps": [st.__dict__ | {"ok": st.ok} for st in steps],
            "daemon_exit": code,
            "daemon_log": str(daemon.log_path),
        })
        log(f"{count} worker(s): sustained {sustained:.0f} uplinks/s, daemon CPU "
            f"{runs[-1]['daemon_cpu_per_uplink_us']} µs per uplink (all processes), exit {code}, "
            f"sender {runs[-1]['sender']}")
    return runs


def summarise_workers(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per worker count the median sustained rate and CPU per uplink over its searches, and each count against the
    first (`--workers 1,2`: 2 against 1), by medians and round by round."""
    counts = list(dict.fromkeys(run["workers"] for run in runs))
    by_count = {c: [run for run in runs if run["workers"] == c] for c in counts}
    summary: dict[str, Any] = {"counts": {}}
    for count, taken in by_count.items():
        rates = [run["sustained_rate"] for run in taken]
        cpus = [run["daemon_cpu_per_uplink_us"] for run in taken if run["daemon_cpu_per_uplink_us"]]
        summary["counts"][str(count)] = {"rates": rates, "cpu_per_uplink_us": cpus,
                                         "median_rate": statistics.median(rates) if rates else None,
                                         "median_cpu_per_uplink_us": statistics.median(cpus) if cpus else None}
    base = summary["counts"][str(counts[0])]
    for count in counts[1:]:
        mine = summary["counts"][str(count)]
        if base["median_rate"] and mine["median_rate"] and base["median_cpu_per_uplink_us"]:
            mine["rate_ratio"] = round(mine["median_rate"] / base["median_rate"], 2)
            mine["cpu_growth_percent"] = round(
                100 * (mine["median_cpu_per_uplink_us"] / base["median_cpu_per_uplink_us"] - 1), 1)
        pairs = []
        for round_ in sorted({run["round"] for run in runs}):
            one = [run for run in by_count[counts[0]] if run["round"] == round_]
            many = [run for run in by_count[count] if run["round"] == round_]
            if one and many and one[0]["sustained_rate"] and one[0]["daemon_cpu_per_uplink_us"] \
                    and many[0]["daemon_cpu_per_uplink_us"]:
                pairs.append([round(many[0]["sustained_rate"] / one[0]["sustained_rate"], 2),
                              round(100 * (many[0]["daemon_cpu_per_uplink_us"]
                                           / one[0]["daemon_cpu_per_uplink_us"] - 1), 1)])
        mine["rounds"] = pairs  # [rate ratio, CPU growth %] per round
    return summary


async def alternate_at_rate(
    daemons: dict[str, Daemon], ns: StandinNs, args: argparse.Namespace, rate: float, rounds: int, eui: int,
    lean: LeanSender | None, also: dict[str, int] | None = None,
    label: Callable[[str, Step], str] = lambda name, st: name,
) -> tuple[dict[str, Any], dict[str, list[Step]]]:
    """Steps of `2 * step_seconds` at one fixed `rate`, alternating between the (running) daemons A B B A A B ...
    so that a slow drift of the machine weighs on each alike; a contended step is measured again (bounded).

    Returns, per daemon name, its CPU per uplink delivered to the stand-in (the daemon's CPU seconds over the
    step, over what arrived), from the steps that held (all of them if none held), and the steps themselves.
    """
    names = list(daemons)
    seconds = args.step_seconds * 2
    steps: dict[str, list[Step]] = {name: [] for name in names}
    for n in range(rounds):
        for name in (names if n % 2 == 0 else names[::-1]):
            step = None
            for _attempt in range(3):
                eui += 0x10000
                await asyncio.sleep(1.0)
                before_phase(args)
                step = await run_step(daemons[name], ns, rate, seconds, args.gateways, eui, args.settle,
                                      also=also, lean=lean)
                print(f"{step.row()}  ({label(name, step)})", file=sys.stderr, flush=True)
                if not step.contended:
                    break
            assert step is not None
            steps[name].append(step)
    result: dict[str, Any] = {"rate": rate, "seconds": seconds, "rounds": rounds,
                              "sender": "lean" if lean else "simulator"}
    for name, taken in steps.items():
        counted = [st for st in taken if st.ok] or taken
        per_uplink = [st.cpu.get("daemon_cores", 0.0) * st.cpu.get("wall_seconds", 0.0) / st.received * 1e6
                      for st in counted if st.received]
        result[name] = {
            "cpu_per_uplink_us": round(sum(per_uplink) / len(per_uplink), 1) if per_uplink else None,
            "cpu_per_uplink_us_each": [round(v, 1) for v in per_uplink],
            "steps_ok": sum(1 for st in taken if st.ok),
            "steps": [st.__dict__ | {"ok": st.ok} for st in taken],
        }
    return result, steps


WORKERS_GOAL_PERCENT = 10.0  # issue 12: daemon CPU per uplink with 2 workers at most 10 % above 1 worker


async def compare_workers_at_rate(ns: StandinNs, args: argparse.Namespace, cpus: list[int],
                                  lean: LeanSender | None) -> dict[str, Any]:
    """Daemon CPU per uplink with 1 and with N workers at the same fixed rate (`--workers-rate`), alternating.

    The rate searches compare each count at its own sustained rate, where batching differs (a worker at a higher
    rate handles more datagrams and starts more calls per loop turn, so each costs less): that mixes the rate's
    effect into the workers' cost. Here five daemons run side by side (the idle ones cost next to nothing): one
    worker pinned as in the search, N workers on the first N cores as in the search, N workers confined to the
    one worker's core, and one worker free to run on the same N cores as the N workers. The pinned worker has a
    core to itself while the N workers share theirs with the stand-in and the load generator, and on a small
    machine that sharing alone (cache and scheduler switches between four busy processes) costs CPU per uplink:
    the third and fourth hold the placement equal, so that their figures tell the cost of splitting the traffic
    (N workers on one core against the pinned one, N workers on N cores against one worker on the same cores)
    apart from that of the placement. A fifth binds each of the N workers to one of the N cores
    (`--worker-cpus auto`). Each step drives one of them, in the order A B C D E E D C B A ...
    """
    count = max(args.workers)
    shared = set(cpus[:count])
    daemons = {"1 worker": Daemon(ns.grpc_port, args.daemon_cpu, args.daemon_arg),
               f"{count} workers": Daemon(ns.grpc_port, None, args.daemon_arg, workers=count, cpus=shared),
               # The same workers confined to the one worker's core: the cost of splitting the traffic alone,
               # without that of running beside the stand-in and the load generator on every core.
               f"{count} workers, one core": Daemon(ns.grpc_port, None, args.daemon_arg, workers=count,
                                                    cpus={args.daemon_cpu}),
               # One worker placed like the N workers: the same sharing of cores, no split.
               f"1 worker, {count} cores": Daemon(ns.grpc_port, None, args.daemon_arg, cpus=shared),
               # The N workers each bound to one of those cores (`--worker-cpus auto`), threads included.
               f"{count} workers bound": Daemon(ns.grpc_port, None, [*args.daemon_arg, "--worker-cpus", "auto"],
                                                workers=count, cpus=shared)}
    try:
        for daemon in daemons.values():
            await daemon.wait_ready()
        rate = args.workers_rate
        log(f"CPU per uplink with 1 and {count} workers at {rate:.0f} uplinks/s, {args.workers_rounds} rounds of "
            f"{args.step_seconds * 2:.0f} s each\n" + STEP_HEADER)
        result, _ = await alternate_at_rate(daemons, ns, args, rate, args.workers_rounds, 0x0016C00500000000, lean)
        one, many, confined, one_shared, bound = (result[name]["cpu_per_uplink_us"] for name in daemons)
        result["workers"] = count

        def growth(value: float | None, base: float | None) -> float | None:
            return round(100 * (value / base - 1), 1) if value and base else None

        result["growth_percent"] = growth(many, one)
        result["growth_percent_one_core"] = growth(confined, one)
        result["growth_percent_same_cores"] = growth(many, one_shared)
        result["placement_percent"] = growth(one_shared, one)
        result["growth_percent_bound"] = growth(bound, one_shared)
        figures = (result["growth_percent"], result["growth_percent_one_core"], result["growth_percent_same_cores"],
                   result["placement_percent"], result["growth_percent_bound"])
        log(f"CPU per uplink at {rate:.0f}/s: {one} µs with 1 worker pinned, {many} µs with {count} workers "
            f"({figures[0]:+} %); split alone: {confined} µs with {count} on one core ({figures[1]:+} %), "
            f"{count} workers against 1 worker on the same {count} cores ({one_shared} µs) {figures[2]:+} %; "
            f"placement alone (1 worker on {count} cores against pinned) {figures[3]:+} %; {count} workers bound "
            f"to a core each ({bound} µs) against 1 worker on the same cores {figures[4]:+} %; goal at most "
            f"+{WORKERS_GOAL_PERCENT:.0f} %" if None not in figures else "no figure")
        return result
    finally:
        for daemon in daemons.values():
            daemon.close()


# --- with and without Redis -----------------------------------------------------------------------------------

REDIS_GOAL_PERCENT = 15.0  # issue 13: the daemon's CPU per uplink with --redis-url at most 15 % above without


async def compare_redis(ns: StandinNs, args: argparse.Namespace, lean: LeanSender | None = None) -> dict[str, Any]:
    """The daemon's CPU per uplink without and with `--redis-url`, at one fixed rate, in the same run.

    Two daemons run side by side on the daemon's core, identical but for `--redis-url` (both get the cluster key,
    the uplink token key and an advertise address); a real redis-server runs on the auxiliary core. Steps alternate
    A B B A A B ... so that a slow drift of the machine weighs on both alike; only the daemon under load is
    counted ("daemon"), the idle one and Redis are reported apart. A step during which other processes used more
    than CONTENDED_CORES is measured again (bounded).
    """
    from redis_server import RedisServer

    redis = RedisServer(args.aux_cpu).start()
    cluster_key, token_key = os.urandom(32).hex(), os.urandom(32).hex()
    common = [*args.daemon_arg, "--cluster-key", cluster_key, "--uplink-token-key", token_key]
    daemons: dict[str, Daemon] = {}
    try:
        daemons["without"] = Daemon(ns.grpc_port, args.daemon_cpu, common)
        daemons["with"] = Daemon(ns.grpc_port, args.daemon_cpu, [
            *common, "--redis-url", redis.url, "--instance-id", "bench-redis",
            "--cluster-advertise-address", "127.0.0.1:{grpc_port}",
        ])
        for daemon in daemons.values():
            await daemon.wait_ready()
        if daemons["with"].metric("gs_redis_up") != 1.0:
            raise SystemExit(f"benchmark: the daemon with --redis-url does not reach Redis; log: "
                             f"{daemons['with'].log_path}")
        rate = args.redis_rate
        log(f"CPU per uplink without and with --redis-url at {rate:.0f} uplinks/s, {args.redis_rounds} rounds of "
            f"{args.step_seconds * 2:.0f} s each\n" + STEP_HEADER)
        result, steps = await alternate_at_rate(
            daemons, ns, args, rate, args.redis_rounds, 0x0016C00400000000, lean,
            also={"redis": redis.proc.pid} if redis.proc else None,
            label=lambda name, st: f"{name} Redis; redis-server {st.cpu.get('redis_cores', 0):.2f} cores",
        )
        result["redis_cores"] = round(sum(st.cpu.get("redis_cores", 0.0) for st in steps["with"])
                                      / max(1, len(steps["with"])), 3)
        base, cluster = result["without"]["cpu_per_uplink_us"], result["with"]["cpu_per_uplink_us"]
        result["growth_percent"] = round(100 * (cluster / base - 1), 1) if base and cluster else None
        result["redis_up_at_end"] = daemons["with"].metric("gs_redis_up")
        result["redis_errors"] = daemons["with"].metric("gs_redis_errors_total")
        for name, daemon in daemons.items():
            result[name]["forwarded"] = daemon.metric("gs_uplinks_forwarded_total")
            result[name]["dropped"] = daemon.metric("gs_uplinks_dropped_total")
        log(f"CPU per uplink: {base} µs without Redis, {cluster} µs with ({result['growth_percent']:+} %; goal at "
            f"most +{REDIS_GOAL_PERCENT:.0f} %)" if result["growth_percent"] is not None else "no figure")
        return result
    finally:
        for daemon in daemons.values():
            daemon.close()
        redis.close()


# --- main -----------------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    if args.daemon_cpu is None:
        args.daemon_cpu = cpus[0]
    if args.aux_cpu is None:
        args.aux_cpu = cpus[1] if len(cpus) > 1 else cpus[0]
    os.sched_setaffinity(0, {args.aux_cpu})  # the simulator runs in this process
    log(f"cores: daemon and ceiling client on {args.daemon_cpu}; stand-in ({args.standin_engine}) and simulator "
        f"on {args.aux_cpu} (of {len(cpus)})")
    result: dict[str, Any] = {"cpus": len(cpus), "daemon_cpu": args.daemon_cpu, "aux_cpu": args.aux_cpu,
                              "standin_engine": args.standin_engine}
    workers_sender = udp_sender(args, comparing_workers=True)
    other_sender = udp_sender(args, comparing_workers=False)
    result["udp_sender"] = {"workers": workers_sender, "other": other_sender}
    ns = StandinNs(args.aux_cpu, args.standin_engine)
    wants_lean = "rate" in args.phases and (other_sender == "lean" or (args.workers and workers_sender == "lean"))
    lean = LeanSender(args.aux_cpu) if wants_lean else None
    other_lean = lean if other_sender == "lean" else None
    try:
        ceilings = []
        for conc in (args.ceiling_concurrency if "ceiling" in args.phases else []):
            before_phase(args)
            c = measure_ceiling(ns, args.daemon_cpu, args.ceiling_seconds, conc)
            log(f"ceiling, concurrency {conc}: {c['rate']:.0f} calls/s (client {c['client_cores']} cores, "
                f"stand-in {c['standin_cores']}, other {c['other_cores']})")
            ceilings.append(c)
        ceiling = max(ceilings, key=lambda c: c["rate"]) if ceilings else None
        result["ceiling"] = ceiling
        result["ceilings"] = ceilings
        if ceiling is not None:
            before_phase(args)
            c = measure_ceiling(ns, args.daemon_cpu, args.ceiling_seconds, ceiling["concurrency"], "daemon")
            log(
                f"same client with the daemon's channel options, concurrency {c['concurrency']}: "
                f"{c['rate']:.0f} calls/s "
                f"(client {c['client_cores']} cores, stand-in {c['standin_cores']}, other {c['other_cores']})"
            )
            result["ceiling_daemon_path"] = c

        if args.workers and "rate" in args.phases:
            result["workers"] = await compare_workers(ns, args, cpus, ceiling,
                                                      lean if workers_sender == "lean" else None)
            result["workers_summary"] = summarise_workers(result["workers"])
            if args.workers_rate and len(args.workers) > 1:
                result["workers_at_rate"] = await compare_workers_at_rate(
                    ns, args, cpus, lean if workers_sender == "lean" else None)
            args.phases = args.phases - {"rate"}

        if args.redis and "rate" in args.phases:
            result["redis"] = await compare_redis(ns, args, other_lean)
            args.phases = args.phases - {"rate"}

        steps: list[Step] = []
        daemon = Daemon(ns.grpc_port, args.daemon_cpu, args.daemon_arg) if "rate" in args.phases else None
        try:
            if daemon is None:
                raise _Skip
            await daemon.wait_ready()
            log("uplink rate search\n" + STEP_HEADER)
            start = args.start_rate or (max(500.0, round(ceiling["rate"] * 0.25, -2)) if ceiling else 1000.0)
            sustained = await find_sustained(daemon, ns, args, start, steps, lean=other_lean)
            result["steps"] = [s.__dict__ | {"ok": s.ok} for s in steps]
            if steps and not steps[-1].ok and any(s.verdict.strip() == "sim-bound" for s in steps):
                log("note: some steps were limited by the simulator, not the daemon")
            result["sustained_rate"] = sustained
            if sustained > 0:
                log(f"latency at half the sustained rate ({sustained / 2:.0f}/s)")
                half = None
                for attempt in range(3):  # re-measured (bounded) when other processes interfered
                    await asyncio.sleep(1.0)
                    before_phase(args)
                    candidate = await run_step(daemon, ns, sustained / 2, args.latency_seconds, args.gateways,
                                               0x0016C001FFF00000 + attempt * 0x10000, args.settle,
                                               lean=other_lean)
                    print(candidate.row(), file=sys.stderr, flush=True)
                    if half is None or candidate.cpu.get("other_cores", 0) < half.cpu.get("other_cores", 0):
                        half = candidate
                    if not candidate.contended:
                        break
                assert half is not None  # the loop ran at least once
                result["half_rate"] = half.__dict__ | {"ok": half.ok}
            if "grpc" in args.protocols:
                log("uplink rate search through GtwGs.LinkGateway (gRPC frontend)\n" + STEP_HEADER)
                grpc_steps: list[Step] = []
                grpc_start = args.start_rate or max(500.0, round((sustained or 1000.0) * 0.5, -2))
                grpc_sustained = await find_sustained(daemon, ns, args, grpc_start, grpc_steps, "grpc")
                grpc_result: dict[str, Any] = {
                    "sustained_rate": grpc_sustained, "steps": [st.__dict__ | {"ok": st.ok} for st in grpc_steps],
                }
                if grpc_sustained > 0:
                    await asyncio.sleep(1.0)
                    before_phase(args)
                    half_grpc = await run_step(daemon, ns, grpc_sustained / 2, args.latency_seconds, args.gateways,
                                               0x0016C001FFE00000, args.settle, "grpc")
                    print(half_grpc.row(), file=sys.stderr, flush=True)
                    grpc_result["half_rate"] = half_grpc.__dict__ | {"ok": half_grpc.ok}
                result["grpc"] = grpc_result
            result["daemon_dropped"] = daemon.metric("gs_uplinks_dropped_total")
            result["daemon_forwarded"] = daemon.metric("gs_uplinks_forwarded_total")
            result["daemon_udp_dropped"] = daemon.metric("gs_udp_datagrams_dropped_total")
        except _Skip:
            pass
        finally:
            if daemon is not None:
                result["daemon_exit"] = daemon.close()
                result["daemon_log"] = str(daemon.log_path)

        if args.idle_gateways > 0 and "idle" in args.phases:
            log(f"memory per idle gateway ({args.idle_gateways} gateways)")
            result["idle"] = await measure_idle_memory(ns, args)
    finally:
        if lean is not None:
            lean.close()
        ns.close()
    return result


def report(r: dict[str, Any]) -> str:
    c = r["ceiling"] or {"rate": 0, "concurrency": "-", "other_cores": 0}
    lines = [
        "",
        "Uplink benchmark (loopback; daemon pinned to one core)",
        f"  grpc.aio unary ceiling (one Python process, core {r['daemon_cpu']}, concurrency {c['concurrency']}): "
        f"{c['rate']:.0f} calls/s (other processes: {c['other_cores']} cores)",
    ]
    d = r.get("ceiling_daemon_path")
    if d:
        lines.append(f"  the same client with the daemon's channel options: "
                     f"{d['rate']:.0f} calls/s, {d['client_cores'] / d['rate'] * 1e6:.0f} µs per call")
    if "sustained_rate" in r:
        sustained = r["sustained_rate"]
        ratio = f"{100 * sustained / c['rate']:.0f} % of the ceiling" if c["rate"] else "no ceiling measured"
        if d and d["rate"]:
            ratio += f"; {100 * sustained / d['rate']:.0f} % of the client with the daemon's options"
        sender = (r.get("udp_sender") or {}).get("other", "simulator")
        lines.append(f"  sustained uplinks/s with < 0.1 % loss: {sustained:.0f}  ({ratio}; load generator: {sender})")
    held = [st for st in r.get("steps", []) if st["ok"] and st["rate"] == r.get("sustained_rate")]
    if held and c["rate"]:
        per_uplink = held[-1]["cpu"].get("daemon_cores", 0) / held[-1]["achieved_rate"] * 1e6
        per_call = c.get("client_cores", 0) / c["rate"] * 1e6
        lines.append(f"  CPU per uplink in the daemon at that rate: {per_uplink:.0f} µs "
                     f"(ceiling client: {per_call:.0f} µs per call)")
    half = r.get("half_rate")
    if half:

        def ms(d: dict[str, Any], k: str) -> str:
            return "-" if d.get(k) is None else f"{d[k] / 1000:.2f} ms"

        lines.append(f"  latency at {half['rate']:.0f}/s, datagram read → NS receipt: "
                     f"p50 {ms(half['read_us'], 'p50')}, p99 {ms(half['read_us'], 'p99')}")
        lines.append(f"  latency at {half['rate']:.0f}/s, datagram send → NS receipt: "
                     f"p50 {ms(half['send_us'], 'p50')}, p99 {ms(half['send_us'], 'p99')}")
        lines.append(f"  PUSH_ACK round trip at {half['rate']:.0f}/s: p50 {half['push_ack_ms']['p50']} ms, "
                     f"p99 {half['push_ack_ms']['p99']} ms")
    g = r.get("grpc")
    if g is not None:
        udp_rate = r.get("sustained_rate") or 0
        beside = f" ({100 * g['sustained_rate'] / udp_rate:.0f} % of UDP's in this run)" if udp_rate else ""
        lines.append(f"  sustained uplinks/s through GtwGs.LinkGateway (gRPC frontend): {g['sustained_rate']:.0f}"
                     f"{beside}; through UDP: {udp_rate:.0f}")
        gh = g.get("half_rate")
        if gh:
            lines.append(f"  LinkGateway latency at {gh['rate']:.0f}/s, message read → NS receipt: "
                         f"p50 {gh['read_us']['p50'] / 1000:.2f} ms, p99 {gh['read_us']['p99'] / 1000:.2f} ms"
                         if gh["read_us"].get("p50") is not None else "  LinkGateway latency: -")
    runs = r.get("workers") or []
    for run in runs:
        lines.append(f"  --workers {run['workers']}: sustained {run['sustained_rate']:.0f} uplinks/s, daemon CPU per "
                     f"uplink {run['daemon_cpu_per_uplink_us']} µs (supervisor and workers summed; "
                     f"CPU at that rate: {run['cpu_at_sustained']}; load generator: {run.get('sender', 'simulator')})")
    for run in runs:
        lim = run.get("cpu_at_limit") or {}
        if lim:
            cores = " ".join(f"core{n} {lim[f'core{n}_busy']:.2f}" for n in range(r["cpus"]) if f"core{n}_busy" in lim)
            procs = " + ".join(f"{lim[k]:.2f}" for k in sorted(lim) if k.startswith("daemon_") and k[7:-6].isdigit())
            lines.append(f"    at the first failing rate ({run['limit_rate']:.0f}/s, {run['limit_verdict']}): daemon "
                         f"{lim.get('daemon_cores', 0):.2f} cores ({procs}), "
                         f"stand-in {lim.get('standin_cores', 0):.2f}, "
                         f"load generator {lim.get('simulator_cores', 0):.2f}, other {lim.get('other_cores', 0):.2f}; "
                         f"busy: {cores}")
    summary = r.get("workers_summary")
    if summary:
        counts = list(summary["counts"])
        for count in counts[1:]:
            mine = summary["counts"][count]
            if "rate_ratio" not in mine:
                continue
            base = summary["counts"][counts[0]]
            lines.append(f"  {count} vs {counts[0]} workers (medians of {len(mine['rates'])} and {len(base['rates'])} "
                         f"searches: {mine['median_rate']:.0f} and {base['median_rate']:.0f} uplinks/s, "
                         f"{mine['median_cpu_per_uplink_us']} and {base['median_cpu_per_uplink_us']} µs): rate "
                         f"×{mine['rate_ratio']:.2f}, CPU per uplink {mine['cpu_growth_percent']:+.1f} %; round by "
                         f"round: " + ", ".join(f"×{ratio:.2f} {growth:+.1f} %" for ratio, growth in mine["rounds"]))
    redis = r.get("redis")
    if redis:
        lines.append(f"  daemon CPU per uplink at {redis['rate']:.0f} uplinks/s ({redis['rounds']} steps of "
                     f"{redis['seconds']:.0f} s each, alternating, load generator: {redis.get('sender')}): "
                     f"without Redis "
                     f"{redis['without']['cpu_per_uplink_us']} µs {redis['without']['cpu_per_uplink_us_each']}, "
                     f"with --redis-url {redis['with']['cpu_per_uplink_us']} µs "
                     f"{redis['with']['cpu_per_uplink_us_each']}")
        growth = redis["growth_percent"]
        verdict = "-" if growth is None else ("met" if growth <= REDIS_GOAL_PERCENT else "NOT met")
        lines.append(f"  with Redis: {growth:+} % CPU per uplink (goal at most +{REDIS_GOAL_PERCENT:.0f} %: "
                     f"{verdict}); redis-server used {redis['redis_cores']} cores; gs_redis_up at the end "
                     f"{redis['redis_up_at_end']}, Redis errors {redis['redis_errors']}"
                     if growth is not None else "  with Redis: no figure (no step held)")
        for name in ("without", "with"):
            for s in redis[name]["steps"]:
                lines.append(f"  {name:>7} " + Step(**{k: v for k, v in s.items() if k != "ok"}).row())
    idle = r.get("idle")
    if idle:
        lines.append(f"  memory per idle connected gateway: {idle['bytes_per_gateway'] / 1024:.1f} KiB "
                     f"({idle['gateways']} gateways, RSS {idle['rss_before_kib'] / 1024:.1f} → "
                     f"{idle['rss_after_kib'] / 1024:.1f} MiB, gs_gateways_connected {idle['connected_metric']}, "
                     f"{idle['pull_acks']} PULL_ACK, {idle['acks_lost']} acks lost, all connected after "
                     f"{idle['seconds_to_connect_all']} s)")
    lines.append("")
    lines.append("  steps:")
    lines.append("\n".join("  " + line for line in STEP_HEADER.splitlines()))
    for s in r.get("steps", []):
        lines.append("  " + Step(**{k: v for k, v in s.items() if k != "ok"}).row())
    if r.get("grpc"):
        lines.append("  LinkGateway steps:")
        for s in r["grpc"]["steps"]:
            lines.append("  " + Step(**{k: v for k, v in s.items() if k != "ok"}).row())
    others = [s["cpu"].get("other_cores", 0) for s in r.get("steps", [])] + [c.get("other_cores", 0)]
    if max(others, default=0) > 0.15:
        lines.append(f"  note: other processes used up to {max(others):.2f} cores during the run; "
                     "figures are lower than on a quiet machine")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--ceiling-client":
        import uvloop

        mode = sys.argv[5] if len(sys.argv) == 6 else "plain"
        res = uvloop.run(_ceiling_client(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), mode))
        print(json.dumps(res))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="shorter steps and 2,000 idle gateways")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--daemon-cpu", type=int, default=None, help="core for the daemon and the ceiling client")
    p.add_argument("--aux-cpu", type=int, default=None, help="core for the stand-in and the simulator")
    p.add_argument("--ceiling-seconds", type=float, default=5.0)
    p.add_argument("--ceiling-concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[64, 256],
                   help="in-flight calls to try for the ceiling (the best counts)")
    p.add_argument("--gateways", type=int, default=100, help="simulated gateways in the rate steps")
    p.add_argument("--step-seconds", type=float, default=5.0)
    p.add_argument("--latency-seconds", type=float, default=10.0)
    p.add_argument("--settle", type=float, default=1.0, help="seconds after a step before counting")
    p.add_argument("--start-rate", type=float, default=None, help="first step (default: a quarter of the ceiling)")
    p.add_argument("--ramp-factor", type=float, default=1.5)
    p.add_argument("--max-rate", type=float, default=40000)
    p.add_argument("--max-steps", type=int, default=14, help="bound on rate steps, re-measurements included")
    p.add_argument("--idle-gateways", type=int, default=10000)
    p.add_argument("--idle-spread", type=float, default=5.0, help="seconds over which the idle gateways connect")
    p.add_argument("--idle-hold", type=float, default=2.0, help="seconds the idle simulators stay after connecting")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to this long for other processes to go quiet")
    p.add_argument("--phases", type=lambda s: set(s.split(",")), default={"ceiling", "rate", "idle"},
                   help="comma-separated subset of ceiling,rate,idle")
    p.add_argument("--daemon-arg", action="append", default=[], help="extra argument for gatewayserver run")
    p.add_argument("--protocols", type=lambda s: set(s.split(",")), default={"udp", "grpc"},
                   help="frontends of the rate search: udp, grpc (GtwGs.LinkGateway) or both")
    p.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[],
                   help="run the rate search once per worker count, e.g. 1,2 (gatewayserver run --workers N)")
    p.add_argument("--workers-rate", type=float, default=0.0, metavar="UPLINKS_PER_S",
                   help="with --workers 1,N: also compare the daemon's CPU per uplink with 1 and N workers at this "
                        "one rate, alternating steps (--workers-rounds each)")
    p.add_argument("--workers-rounds", type=int, default=3, help="steps per worker count with --workers-rate")
    p.add_argument("--workers-repeat", type=int, default=1, metavar="R",
                   help="with --workers: R rate searches per count, alternating, reported with their medians")
    p.add_argument("--standin-engine", choices=("http2", "grpc-js"), default="http2",
                   help="how the stand-in Network Server serves gRPC (benchmarks/README.md, 'Engines')")
    p.add_argument("--redis", action="store_true",
                   help="instead of the rate search: daemon CPU per uplink without and with --redis-url (a "
                        "redis-server of its own) at --redis-rate, alternating, in the same run")
    p.add_argument("--redis-rate", type=float, default=2000.0, help="uplinks/s of the --redis steps")
    p.add_argument("--redis-rounds", type=int, default=3, help="steps per configuration with --redis")
    p.add_argument("--udp-sender", choices=("auto", "lean", "simulator"), default="auto",
                   help="load generator of the UDP rate steps: lean (benchmarks/lean_uplinks.py, its own process, "
                        "~20 µs per uplink), simulator (gatewayserver's run_simulation in this process), auto: lean "
                        "for the --workers comparison, the simulator elsewhere. LinkGateway steps always use the "
                        "simulator")
    args = p.parse_args()
    if args.quick:
        args.ceiling_seconds = 3.0
        args.step_seconds = 3.0
        args.latency_seconds = 5.0
        args.max_steps = 9
        if args.idle_gateways == 10000:
            args.idle_gateways = 2000
    import uvloop

    result = uvloop.run(bench(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
