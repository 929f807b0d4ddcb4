"""The cost of one cross-worker call, by transport: the framed Unix stream protocol the workers use
(`gatewayserver/workers/transport.py`) against grpc.aio on a Unix socket (what they used before), with the same
handler table (`dispatch.Handlers`) behind both.

Run: .venv/bin/python benchmarks/internal_calls.py [--calls 20000] [--concurrency 20] [--size 300] [--rounds 3]

A server process (uvloop, pinned to the last CPU when there are two or more) serves an echo handler returning
`--size` bytes; this process (uvloop, pinned to the first CPU) makes `--calls` unary calls with `--concurrency` in
flight, through `workers.peers.Peers` for the framed transport and a kept grpc.aio channel with the secret as
metadata for gRPC, as `Peers` did before. Reported per call: client CPU, server CPU (from /proc), and calls/s.
Transports alternate for `--rounds` rounds, so a neighbour's load on this shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import uvloop  # noqa: E402

from gatewayserver.workers import wire  # noqa: E402
from gatewayserver.workers.peers import Peers  # noqa: E402
from gatewayserver.workers.spec import WorkerSpec  # noqa: E402

SECRET = "ab" * 32
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVER = """
import asyncio, os, sys, uvloop
from gatewayserver.workers.dispatch import Handlers, grpc_handler
from gatewayserver.workers.transport import FramedServer
from gatewayserver.errors import GsError, UNAUTHENTICATED

kind, path, secret, method, size = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
answer = b"x" * size

async def echo(body):
    return answer

async def main():
    handlers = Handlers(unary={method: echo})
    if kind == "framed":
        server = FramedServer(handlers, secret.encode())
        await server.start(path)
    else:
        import grpc
        expected = ("authorization", "GsWorker " + secret)

        async def check(context):
            if expected not in tuple(context.invocation_metadata() or ()):
                raise GsError("bench", "auth", "no", code=UNAUTHENTICATED)

        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc_handler(handlers, wire_service, check),))
        server.add_insecure_port("unix:" + path)
        await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

wire_service = method.split("/")[1]
uvloop.run(main())
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_server(kind: str, path: str, size: int, cpu: int | None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, kind, path, SECRET, wire.METRICS, str(size)],
        stdout=subprocess.PIPE, cwd=ROOT,
        preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
    )
    assert process.stdout is not None
    if process.stdout.readline() != b"ready\n":
        raise SystemExit(f"{kind} server did not start")
    return process


async def run_calls(kind: str, runtime_dir: str, path: str, calls: int, concurrency: int) -> None:
    if kind == "framed":
        peers = Peers(WorkerSpec(0, 2, runtime_dir, SECRET))

        async def one() -> None:
            await peers.unary(1, wire.METRICS, b"q" * 40)

        close = peers.close
    else:
        channel = grpc.aio.insecure_channel("unix:" + path)
        call = channel.unary_unary(wire.METRICS, request_serializer=wire.identity,
                                   response_deserializer=wire.identity)
        metadata = (("authorization", "GsWorker " + SECRET),)

        async def one() -> None:
            await call(b"q" * 40, metadata=metadata, timeout=5.0)

        async def close() -> None:
            await channel.close()

    await one()  # connected
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await close()


def measure(kind: str, args: argparse.Namespace, cpus: list[int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gs-calls-") as runtime_dir:
        path = os.path.join(runtime_dir, "worker-1.sock")
        server = start_server(kind, path, args.size, cpus[-1] if len(cpus) > 1 else None)
        try:
            server_before = cpu_seconds(server.pid)
            client_before = time.process_time()
            wall_before = time.monotonic()
            uvloop.run(run_calls(kind, runtime_dir, path, args.calls, args.concurrency))
            wall = time.monotonic() - wall_before
            client = time.process_time() - client_before
            served = cpu_seconds(server.pid) - server_before
        finally:
            server.kill()
            server.wait()
    return {
        "client_us": client / args.calls * 1e6,
        "server_us": served / args.calls * 1e6,
        "calls_per_s": args.calls / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--size", type=int, default=300, help="response bytes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[0]})
    print(f"{args.calls} calls, {args.concurrency} in flight, {args.size}-byte answers; CPU per call")
    for round_ in range(args.rounds):
        for kind in ("framed", "grpc"):
            r = measure(kind, args, cpus)
            print(f"  round {round_ + 1} {kind:6}: client {r['client_us']:6.1f} µs  server {r['server_us']:6.1f} µs"
                  f"  together {r['client_us'] + r['server_us']:6.1f} µs  {r['calls_per_s']:8.0f} calls/s",
                  flush=True)


if __name__ == "__main__":
    main()
