"""The added latency of a ScheduleDownlink forwarded between instances (issue 13).

Run: .venv/bin/python benchmarks/cluster_schedule.py [--calls 2000] [--gateways 50] [--concurrency 4] [--a-workers N]
     [--json]

Two `gatewayserver run` instances, A and B, share one redis-server (Debian's `redis-server`, started here on a free
loopback port). Simulated gateways (real forwarder behaviour: PULL_DATA, an uplink to sync the clock, TX_ACK for
every PULL_RESP) are connected to A. The client calls NsGs.ScheduleDownlink with class A requests carrying valid
uplink tokens (minted with the instances' shared key, each for its own RX1 slot, so every call books an emission
and A sends a PULL_RESP), alternating between A (answered where the gateway is) and B (B looks the owner up in
Redis and forwards the unchanged message to A's internal service with the cluster key). Both series run in the
same run, interleaved, so the machine's load affects them alike; the report gives p50/p99 of each and the
difference, and the CPU each instance used per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from redis_server import RedisServer
from schedule import class_a_request

TOKEN_KEY = bytes.fromhex("5c" * 32)
CLUSTER_KEY = bytes.fromhex("c1" * 16)
EUI_BASE = 0x00800000B0000000
SLOT_US = 100_000  # SF7, 17-byte payload: 46 ms on air + 30 ms off air fits in 100 ms


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Instance:
    def __init__(self, name: str, work: Path, registry: Path, redis_url: str, workers: int = 1) -> None:
        self.name = name
        self.udp, self.grpc, self.http = free_port(socket.SOCK_DGRAM), free_port(), free_port()
        argv = [
            sys.executable, "-m", "gatewayserver", "run",
            "--udp-listen", f"127.0.0.1:{self.udp}", "--grpc-listen", f"127.0.0.1:{self.grpc}",
            "--http-listen", f"127.0.0.1:{self.http}", "--gateways", str(registry),
            "--uplink-output", os.devnull, "--uplink-token-key", TOKEN_KEY.hex(), "--cluster-key", CLUSTER_KEY.hex(),
            "--redis-url", redis_url, "--instance-id", name, "--log-level", "error",
            "--flood-datagrams", "0", *(["--workers", str(workers)] if workers > 1 else []),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        self.proc = subprocess.Popen(argv, env=env, cwd=work, stdin=subprocess.DEVNULL)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"instance {self.name} exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"instance {self.name} not healthy")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e3  # µs


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    from gatewayserver.simulator import SimulatedGateway
    from gatewayserver.tokens import UplinkTokens
    from gatewayserver.ttnpb import gatewayserver_pb2_grpc

    work = Path(tempfile.mkdtemp(prefix="gs-cluster-bench-"))
    registry = work / "gateways.json"
    registry.write_text(json.dumps({"gateways": [
        {"eui": f"{EUI_BASE + i:016x}", "gateway_id": f"bench-{i}", "frequency_plan_id": "EU_863_870",
         "enforce_duty_cycle": False} for i in range(args.gateways)
    ]}))
    redis = RedisServer().start()
    a = Instance("bench-a", work, registry, redis.url, args.a_workers)
    b = Instance("bench-b", work, registry, redis.url)
    gws: list[Any] = []
    try:
        a.wait_ready()
        b.wait_ready()
        for i in range(args.gateways):
            gw = await SimulatedGateway.connect(("127.0.0.1", a.udp), (EUI_BASE + i).to_bytes(8, "big"),
                                                keep_latencies=False, auto_tx_ack=True)
            await gw.pull_data()
            await gw.send_uplink()
            gws.append(gw)
        for gw in gws:
            await gw.wait_for_acks(5.0)
        await asyncio.sleep(1.5)  # the owner records are written at once; leave room for the first flush
        tokens = UplinkTokens(TOKEN_KEY)
        per_gateway = args.calls // args.gateways + 1
        now = time.time_ns()
        issued = []
        for k in range(per_gateway):
            for i, gw in enumerate(gws):
                ts = (gw.tmst() + 7_000_000 + k * SLOT_US) % (1 << 32)
                issued.append(tokens.issue(f"bench-{i}", gw.eui, 0, ts, now, 0))
        requests = [class_a_request(t) for t in issued[: args.calls]]
        metadata = (("authorization", "ClusterKey " + CLUSTER_KEY.hex()),)
        latencies: dict[str, list[int]] = {"direct": [], "forwarded": []}
        errors = {"direct": 0, "forwarded": 0}
        channels = {name: grpc.aio.insecure_channel(f"127.0.0.1:{port}") for name, port in
                    (("direct", a.grpc), ("forwarded", b.grpc))}
        stubs = {name: gatewayserver_pb2_grpc.NsGsStub(ch) for name, ch in channels.items()}
        for ch in channels.values():
            await ch.channel_ready()
        # Warm both paths (B's channel to A, its address cache) before measuring.
        for name in ("direct", "forwarded"):
            try:
                await stubs[name].ScheduleDownlink(class_a_request(b"\x00"), metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError:
                pass
        index = 0
        cpu_before = {n: cpu_seconds(i.proc.pid) for n, i in (("a", a), ("b", b))}

        async def worker() -> None:
            nonlocal index
            while index < len(requests):
                i = index
                index += 1
                name = "direct" if i % 2 == 0 else "forwarded"
                t0 = time.perf_counter_ns()
                try:
                    await stubs[name].ScheduleDownlink(requests[i], metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    errors[name] += 1
                    if errors[name] <= 2:
                        print(f"{name}: {exc.code().name} {exc.details()}", file=sys.stderr)
                latencies[name].append(time.perf_counter_ns() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        cpu = {n: cpu_seconds(i.proc.pid) - cpu_before[n] for n, i in (("a", a), ("b", b))}
        for ch in channels.values():
            await ch.close()
    finally:
        for gw in gws:
            await gw.close()
        a.stop()
        b.stop()
        redis.close()
        shutil.rmtree(work, ignore_errors=True)
    calls = len(requests)
    result: dict[str, Any] = {
        "calls": calls, "concurrency": args.concurrency, "gateways": args.gateways, "seconds": round(elapsed, 2),
        "errors": errors,
        "cpu_us_per_call": {"a_all_calls": round(cpu["a"] / calls * 1e6), "b_per_forward": round(
            cpu["b"] / max(1, len(latencies["forwarded"])) * 1e6)},
    }
    for name, values in latencies.items():
        result[name] = {"p50_us": round(percentile(values, 0.5)), "p99_us": round(percentile(values, 0.99))}
    result["added"] = {
        q: result["forwarded"][q] - result["direct"][q] for q in ("p50_us", "p99_us")
    }
    result["median_of_means_check_us"] = round(
        (statistics.fmean(latencies["forwarded"]) - statistics.fmean(latencies["direct"])) / 1e3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls in total, half to each instance")
    parser.add_argument("--gateways", type=int, default=50, help="gateways on A (more gateways: nearer RX1 slots)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--a-workers", type=int, default=1, metavar="N",
                        help="run A with --workers N (forwarded calls then reach A's owning worker through A's own "
                             "routing)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['calls']} ScheduleDownlink calls, {args.concurrency} in flight, {args.gateways} gateways on A, "
          f"{result['seconds']} s; errors {result['errors']}")
    for name in ("direct", "forwarded"):
        print(f"  {name:9s} (at {'A' if name == 'direct' else 'B'}): p50 {result[name]['p50_us']} µs, "
              f"p99 {result[name]['p99_us']} µs")
    print(f"  added by forwarding: p50 {result['added']['p50_us']} µs, p99 {result['added']['p99_us']} µs "
          f"(means: {result['median_of_means_check_us']} µs)")
    print(f"  CPU: A {result['cpu_us_per_call']['a_all_calls']} µs per call it served (all calls), "
          f"B {result['cpu_us_per_call']['b_per_forward']} µs per forward")


if __name__ == "__main__":
    main()
