"""The cost of one outbound `GsNs.ReportTxAcknowledgment` call, per way of making it (client CPU per call).

Run: .venv/bin/python benchmarks/ns_call.py [--calls 5000] [--in-flight 16] [--rounds 3]

Per downlink the daemon makes one `ReportTxAcknowledgment` call to the Network Server, so that call is half of
the gRPC work of a downlink. A do-nothing `GsNs` server (grpc.aio, uvloop) runs in its own process pinned to one
core; this process (uvloop, pinned to the other) makes the calls with the daemon's channel options
(`upstream.ns.CHANNEL_OPTIONS`), `--in-flight` at a time like the daemon's call chains, and reports its own CPU
time per call (user + system, all threads: grpc's poller thread included) and the calls/s. The variants, run in
turn, `--rounds` times each, since the machine is shared:

- `stub`: the generated stub with a tuple of metadata, the message serialized by grpc (what the daemon did);
- `prebuilt`: one multi-callable made once with raw-bytes (de)serializers, the message serialized by the caller,
  a `grpc.aio.Metadata` made once (no per-call `Metadata.from_tuple` and ABC checks), the response not decoded;
- `sync_future`: the synchronous grpc channel's `future()` with a done-callback that resolves an asyncio future
  through `call_soon_threadsafe` (grpc's sync stack has its own C-core polling thread).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

METHOD = "/ttn.lorawan.v3.GsNs/ReportTxAcknowledgment"
METADATA = (("authorization", "ClusterKey " + "c1" * 16),)


def tx_ack() -> Any:
    """A TX acknowledgment as the daemon forwards it: the scheduled downlink inside, correlation ids, gateway ids."""
    from gatewayserver.ttnpb import messages_pb2

    ack = messages_pb2.GatewayTxAcknowledgment()
    ack.gateway_ids.gateway_id = "bench-1"
    ack.gateway_ids.eui = bytes.fromhex("00800000a0000001")
    tx = ack.tx_ack
    tx.correlation_ids.extend(
        ["bench:down", "gs:conn:01JDX0000000000000000000000", "gs:downlink:01JDX00000000000000000"]
    )
    tx.result = messages_pb2.TxAcknowledgment.SUCCESS
    down = tx.downlink_message
    down.raw_payload = b"\x60" + bytes(16)
    down.correlation_ids.extend(tx.correlation_ids)
    s = down.scheduled
    s.data_rate.lora.spreading_factor = 7
    s.data_rate.lora.bandwidth = 125_000
    s.data_rate.lora.coding_rate = "4/5"
    s.frequency = 868_100_000
    s.timestamp = 123_456_789
    s.concentrator_timestamp = 123_456_789_000
    s.time.seconds = 1_790_000_000
    s.downlink.tx_power = 16.15
    s.downlink.invert_polarization = True
    return ack


async def serve(port_file: Path, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    import grpc
    from google.protobuf import empty_pb2

    from gatewayserver.ttnpb import networkserver_pb2_grpc

    class Nothing(networkserver_pb2_grpc.GsNsServicer):
        async def HandleUplink(self, request: Any, context: Any) -> Any:
            return empty_pb2.Empty()

        async def ReportTxAcknowledgment(self, request: Any, context: Any) -> Any:
            return empty_pb2.Empty()

    server = grpc.aio.server()
    networkserver_pb2_grpc.add_GsNsServicer_to_server(Nothing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(json.dumps({"port": port}))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


async def run_variant(name: str, port: int, calls: int, in_flight: int) -> dict[str, float]:
    import grpc

    from gatewayserver.ttnpb import networkserver_pb2_grpc
    from gatewayserver.upstream.ns import CHANNEL_OPTIONS

    target = f"127.0.0.1:{port}"
    message = tx_ack()
    loop = asyncio.get_running_loop()
    remaining = calls
    sync_channel = None
    channel = grpc.aio.insecure_channel(target, options=list(CHANNEL_OPTIONS))
    await channel.channel_ready()
    if name == "stub":
        method = networkserver_pb2_grpc.GsNsStub(channel).ReportTxAcknowledgment

        async def one() -> None:
            await method(message, metadata=METADATA, timeout=5.0)
    elif name == "prebuilt":
        raw: Any = channel.unary_unary(  # type: ignore[call-arg]  # what the generated stubs pass too
            METHOD, request_serializer=None, response_deserializer=None, _registered_method=True
        )
        metadata = grpc.aio.Metadata(*METADATA)

        async def one() -> None:
            await raw(message.SerializeToString(), metadata=metadata, timeout=5.0)
    elif name == "sync_future":
        sync_channel = grpc.insecure_channel(target, options=list(CHANNEL_OPTIONS))
        grpc.channel_ready_future(sync_channel).result(timeout=10)
        sync_method: Any = sync_channel.unary_unary(  # type: ignore[call-arg]
            METHOD, request_serializer=None, response_deserializer=None, _registered_method=True
        )

        async def one() -> None:
            future = loop.create_future()

            def done(call: Any) -> None:
                loop.call_soon_threadsafe(_resolve, future, call)

            sync_method.future(message.SerializeToString(), metadata=METADATA, timeout=5.0).add_done_callback(done)
            call = await future
            call.result()
    else:
        raise ValueError(name)

    async def chain() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    for _ in range(200):  # warm-up
        await one()
    remaining = calls
    cpu0, t0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(chain() for _ in range(in_flight)))
    cpu1, t1 = _cpu(), time.perf_counter()
    await channel.close()
    if sync_channel is not None:
        sync_channel.close()
    return {"client_us_per_call": (cpu1 - cpu0) / calls * 1e6, "calls_per_s": calls / (t1 - t0)}


def _resolve(future: asyncio.Future[Any], call: Any) -> None:
    if not future.done():
        future.set_result(call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="stub,prebuilt,sync_future")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.serve:
        asyncio.run(serve(Path(args.serve), args.cpu))
        return
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    port_file = Path(tempfile.mkdtemp()) / "port.json"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file), "--cpu", str(cpus[-1])])
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        port = json.loads(port_file.read_text())["port"]
        results: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for name in args.variants.split(","):
                results.setdefault(name, []).append(asyncio.run(run_variant(name, port, args.calls, args.in_flight)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    print(f"ReportTxAcknowledgment, {args.calls} calls, {args.in_flight} in flight, client CPU per call (µs) and "
          f"calls/s per round:")
    for name, runs in results.items():
        cpu = ", ".join(f"{r['client_us_per_call']:.0f}" for r in runs)
        rate = ", ".join(f"{r['calls_per_s']:.0f}" for r in runs)
        best = min(r["client_us_per_call"] for r in runs)
        print(f"  {name:12s} {cpu} µs (best {best:.0f})   {rate} calls/s")


if __name__ == "__main__":
    main()
