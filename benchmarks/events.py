"""Events fan-out benchmark: N concurrent HTTP stream subscribers at R published uplink events/s.

The server process runs the real EventBus and HttpServer (with a fake daemon behind ApiCore) and publishes
`gs.up.receive` events carrying a realistic GatewayUplinkMessage. Subscribers run in separate client processes,
each holding several `POST /api/v3/events` streams with `Accept: text/event-stream`, and count every
`{"result": ...}` they receive. The server measures its own CPU time twice at the same publish rate: once with no
subscribers (baseline) and once with all of them connected; the difference divided by the subscriber count is
the cost of one subscriber.

    .venv/bin/python benchmarks/events.py --subscribers 100 --rate 1000 --seconds 10

Prints delivered events/s, lost events, latency from publish to client receipt, and the cost per subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GATEWAYS = [f"bench-gw-{i:02d}" for i in range(10)]


def build_uplink(i: int):
    from gatewayserver.ttnpb import lorawan_pb2, messages_pb2

    up = messages_pb2.GatewayUplinkMessage(band_id="EU_863_870")
    m = up.message
    m.raw_payload = bytes(range(23))
    m.payload.m_hdr.m_type = lorawan_pb2.UNCONFIRMED_UP
    m.payload.mac_payload.f_hdr.dev_addr = bytes.fromhex("260B1234")
    m.payload.mac_payload.f_hdr.f_cnt = i & 0xFFFF
    m.payload.mac_payload.f_port = 1
    m.payload.mac_payload.frm_payload = bytes(10)
    m.settings.data_rate.lora.bandwidth = 125000
    m.settings.data_rate.lora.spreading_factor = 7
    m.settings.data_rate.lora.coding_rate = "4/5"
    m.settings.frequency = 868100000
    m.settings.timestamp = 1000 + i
    md = m.rx_metadata.add()
    md.gateway_ids.gateway_id = GATEWAYS[i % len(GATEWAYS)]
    md.gateway_ids.eui = bytes.fromhex("B827EBFFFE8DB887")
    md.rssi = -42
    md.channel_rssi = -42
    md.snr = 9.5
    md.timestamp = 1000 + i
    md.uplink_token = bytes(60)
    md.received_at.FromNanoseconds(time.time_ns())
    m.received_at.FromNanoseconds(time.time_ns())
    m.correlation_ids.extend(["gs:conn:01G76RS17HGZZXV740X0N2XDV8", f"gs:uplink:01G76SF01BNW5SKRAND31Z{i:06d}"])
    m.crc_status.value = True
    return up


# --- server process --------------------------------------------------------------------------------------------


def server_main(conn, rate: int, seconds: float, subscribers: int, buffer: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_server(conn, rate, seconds, subscribers, buffer))


async def _publish(bus, rate: int, seconds: float, start_index: int) -> tuple[float, float, int]:
    from gatewayserver.events.definitions import GS_UP_RECEIVE

    tick = 0.01
    per_tick = max(1, int(rate * tick))
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    cpu0, wall0 = time.process_time(), loop.time()
    published = 0
    next_tick = wall0
    while published < total:
        for _ in range(min(per_tick, total - published)):
            i = start_index + published
            up = build_uplink(i)
            gateway = up.message.rx_metadata[0].gateway_ids
            bus.publish(
                GS_UP_RECEIVE.new(time.time_ns(), ((gateway.gateway_id, gateway.eui),), up, up.message.correlation_ids)
            )
            published += 1
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
    # Let subscribers drain what was published before stopping the clock.
    await asyncio.sleep(0.5)
    return time.process_time() - cpu0, loop.time() - wall0, published


async def _server(conn, rate: int, seconds: float, subscribers: int, buffer: int) -> None:
    from gatewayserver.api.core import ApiCore, ApiSettings
    from gatewayserver.api.http_server import HttpServer
    from gatewayserver.api.keys import KeyStore, create_key
    from gatewayserver.api.streams import StreamLimits
    from gatewayserver.events import EventBus

    class NoDaemon:
        def connection_stats(self, gateway_id):
            return None

        async def schedule_downlink(self, msg):
            raise NotImplementedError

        def gateway_frequency_plans(self, gateway_id):
            return []

        def connected_gateways(self):
            return []

    tmp = tempfile.mkdtemp()
    keys_file = os.path.join(tmp, "keys.json")
    token, _ = create_key(keys_file, "bench", ["RIGHT_GATEWAY_ALL"])
    bus = EventBus(history_size=10_000)
    # One key holds every subscriber here, so the per-key and total stream bounds are raised to the run's count.
    limits = StreamLimits(max_streams_per_key=subscribers, max_streams=subscribers)
    core = ApiCore(NoDaemon(), bus, KeyStore(keys_file), ApiSettings(stream_buffer=buffer, stream_limits=limits))
    http = HttpServer(core, "127.0.0.1:0")
    port = await http.start()
    conn.send((port, token))

    # Phase 1: baseline, nobody listening.
    base_cpu, base_wall, base_n = await _publish(bus, rate, seconds, 0)

    # Phase 2: wait for every subscriber, then the same load.
    conn.send(("ready-for-subscribers", base_n))
    deadline = time.monotonic() + 60
    while bus.subscriber_count() < subscribers and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    conn.send(("subscribed", bus.subscriber_count()))
    await asyncio.sleep(0.5)
    cpu, wall, n = await _publish(bus, rate, seconds, 1_000_000)
    conn.send(("done", base_cpu, base_wall, base_n, cpu, wall, n))
    conn.recv()  # wait for the clients to finish before closing streams
    await http.stop()


# --- client processes ----------------------------------------------------------------------------------------


def client_main(port: int, token: str, streams: int, expected: int, timeout: float, out) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out.put(asyncio.run(_client(port, token, streams, expected, timeout)))


async def _client(port: int, token: str, streams: int, expected: int, timeout: float) -> dict:
    import aiohttp
    import orjson

    body = orjson.dumps({"identifiers": [{"gateway_ids": {"gateway_id": g}} for g in GATEWAYS]})
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    counts: list[int] = []
    latencies: list[float] = []
    errors = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        received = -1  # the events.stream.start message does not count
        buffer = b""
        async with session.post(f"http://127.0.0.1:{port}/api/v3/events", data=body, headers=headers) as response:
            deadline = time.monotonic() + timeout
            while received < expected and time.monotonic() < deadline:
                try:
                    chunk = await asyncio.wait_for(response.content.readany(), max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    break
                if not chunk:
                    break
                buffer += chunk
                messages = buffer.split(b"\n\n")
                buffer = messages.pop()
                if b'"error"' in chunk:
                    errors += 1
                received += len(messages)
                if messages and received > 0:
                    # Sample the oldest message of each read: publish → receipt latency (worst in the batch).
                    first = orjson.loads(messages[0])
                    t = first.get("result", {}).get("time")
                    if t and first["result"]["name"] != "events.stream.start":
                        from gatewayserver.jsonpb import parse_timestamp

                        s, ns = parse_timestamp(t)
                        latencies.append(time.time() - (s + ns / 1e9))
        counts.append(received)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        await asyncio.gather(*(one(session) for _ in range(streams)))
    return {"counts": counts, "latencies": latencies, "errors": errors}


# --- driver ------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=int, default=1000, help="published uplink events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4, help="client processes sharing the subscribers")
    parser.add_argument("--buffer", type=int, default=1024, help="per-subscriber event buffer")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=server_main, args=(child, args.rate, args.seconds, args.subscribers, args.buffer))
    server.start()
    port, token = parent.recv()
    print(f"server on port {port}; baseline phase ({args.rate}/s for {args.seconds:g}s, no subscribers)...")
    _, expected = parent.recv()

    results = ctx.Queue()
    share, extra = divmod(args.subscribers, args.clients)
    per_client = [share + (1 if i < extra else 0) for i in range(args.clients)]
    clients = [
        ctx.Process(target=client_main, args=(port, token, n, expected, args.seconds + 30, results))
        for n in per_client
        if n
    ]
    for c in clients:
        c.start()
    _, subscribed = parent.recv()
    print(f"{subscribed} subscribers connected; measured phase...")
    _, base_cpu, base_wall, base_n, cpu, wall, n = parent.recv()
    outcomes = [results.get() for _ in clients]
    for c in clients:
        c.join()
    parent.send("stop")
    server.join()

    counts = [c for o in outcomes for c in o["counts"]]
    latencies = sorted(x for o in outcomes for x in o["latencies"])
    errors = sum(o["errors"] for o in outcomes)
    delivered = sum(min(c, n) for c in counts)
    lost = n * len(counts) - delivered
    publish_seconds = n / args.rate
    print()
    print(f"published            {n} gs.up.receive events at {args.rate}/s to {len(counts)} HTTP stream subscribers")
    print(f"delivered            {delivered} events ({delivered / publish_seconds:,.0f} events/s)")
    print(f"lost                 {lost} ({100 * lost / max(1, n * len(counts)):.3f} %), stream errors {errors}")
    if latencies:
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        print(
            f"latency publish→read p50 {1000 * p(0.5):.1f} ms, p99 {1000 * p(0.99):.1f} ms, "
            f"max {1000 * latencies[-1]:.1f} ms"
        )
    base = base_cpu / base_wall
    loaded = cpu / wall
    per_sub = (loaded - base) / max(1, len(counts))
    per_delivery_us = (cpu - base_cpu) / max(1, delivered) * 1e6
    print(
        f"server CPU           {100 * base:.1f} % of a core without subscribers, "
        f"{100 * loaded:.1f} % with {len(counts)}"
    )
    print(
        f"cost per subscriber  {100 * per_sub:.2f} % of a core at {args.rate} events/s "
        f"({per_delivery_us:.1f} µs per delivered event)"
    )
    if lost or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
