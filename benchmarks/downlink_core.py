"""The daemon's own work per downlink, in one process without sockets or gRPC: µs per downlink.

Run: .venv/bin/python benchmarks/downlink_core.py [--downlinks 20000] [--gateways 50] [--profile N]

What `schedule.py` measures over the network, less the two gRPC calls and the datagrams' system calls: the
`GatewayServer` of the daemon (core, UDP handler, event bus with its history) with 50 registered gateways, each
connected by PULL_DATA and synchronised by one uplink; then per downlink `schedule_downlink` (token check,
decision, events, the PULL_RESP written), the gateway's TX_ACK handed to the UDP frontend's datagram path, and the
acknowledgment queued for the Network Server (a stand-in upstream that only counts). `--profile N` prints
cProfile's top N functions by own time (cProfile's overhead inflates small functions; read it for the shape).
"""

from __future__ import annotations

import argparse
import gc
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from schedule import EUI_BASE, SLOT_US, TOKEN_KEY, class_a_request, write_registry

_NS = 1_000_000_000


class CountingUpstream:
    """Takes what the core hands the Network Server client, as `NetworkServerRouter.submit_*` would (queued)."""

    def __init__(self) -> None:
        self.uplinks = 0
        self.tx_acks = 0

    def submit_uplink(self, uplink: Any, context: Any = None, received_ns: int = 0) -> None:
        self.uplinks += 1

    def submit_tx_ack(self, ack: Any) -> None:
        ack.SerializeToString()  # what grpc would do with it
        self.tx_acks += 1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from frequency_plans.loader import FrequencyPlanStore
    from gatewayserver.events.bus import EventBus
    from gatewayserver.io.udp.connection import Accepted, ConnectionSettings
    from gatewayserver.io.udp.packets import encode_pull_data, encode_push_data, encode_tx_ack
    from gatewayserver.registry import GatewayRegistry
    from gatewayserver.server import GatewayServer
    from gatewayserver.tokens import UplinkTokens

    plans = FrequencyPlanStore()
    registry = GatewayRegistry.from_file(write_registry(Path(tempfile.mkdtemp()), args.gateways), frequency_plans=plans)
    upstream = CountingUpstream()
    # A clock of our own, 1 ms further per downlink: the run's decisions do not depend on how fast it runs (under
    # valgrind, for instruction counts, real time would leave every RX1 slot behind).
    clock = [time.time_ns()]
    server = GatewayServer(
        registry=registry, events=EventBus(), upstream=upstream, tokens=UplinkTokens(TOKEN_KEY),
        connection_settings=ConnectionSettings(flood_datagrams=0), frequency_plans=plans,
        clock=lambda: clock[0],
    )
    sent: list[tuple[bytes, Any]] = []

    def transmit(data: bytes, addr: Any) -> None:
        sent.append((data, addr))

    def datagram(data: bytes, addr: Any) -> None:
        """`UdpFrontend._handle` without the socket."""
        now = clock[0]
        result = server.udp_handler.udp.accept(data, addr, now)
        assert isinstance(result, Accepted), result
        if result.new_connection:
            result.connection.transmit = transmit
        server.udp_handler.accepted(result, addr, now)

    tokens = UplinkTokens(TOKEN_KEY)
    euis = [(EUI_BASE + i).to_bytes(8, "big") for i in range(args.gateways)]
    tmst0 = 1_000_000
    for i, eui in enumerate(euis):
        addr = ("127.0.0.1", 20_000 + i)
        datagram(encode_pull_data(2, b"\x00\x01", eui), addr)
        rxpk = {"tmst": tmst0, "chan": 0, "rfch": 0, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125",
                "codr": "4/5", "rssi": -50, "lsnr": 9.0, "size": 17, "data": "QAEAAAAAAAAAAAAAAAAAAAA="}
        datagram(encode_push_data(2, b"\x00\x02", eui, json.dumps({"rxpk": [rxpk]}).encode()), addr)

    def request(k: int) -> Any:
        """The k-th downlink: gateway k mod N, each its own RX1 slot (as the gRPC layer hands it, parsed)."""
        i = k % args.gateways
        ts = (tmst0 + 7_000_000 + (k // args.gateways) * SLOT_US) % (1 << 32)
        return class_a_request(tokens.issue(f"bench-{i}", euis[i], 0, ts, clock[0], 0))

    def downlink(k: int, message: Any) -> None:
        clock[0] += 1_000_000
        sent.clear()
        asyncio_run_once(server.schedule_downlink(message))
        (data, addr) = sent[0]
        datagram(encode_tx_ack(2, data[1:3], euis[k % args.gateways]), addr)

    for eui in euis:  # as after the first TX_ACK of each forwarder: PULL_RESPs go out at once, none is held
        server.udp_handler.udp._by_eui[eui].has_jit_queue = True
    for k in range(args.gateways):
        downlink(k, request(k))
    messages = [request(k) for k in range(args.gateways, args.gateways + args.downlinks)]
    gc.collect()
    gc.freeze()  # as the daemon does once started (`daemon.settle_heap`)
    start = time.perf_counter_ns()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    for k, message in enumerate(messages, args.gateways):
        downlink(k, message)
    elapsed = time.perf_counter_ns() - start
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return {"us_per_downlink": round(elapsed / args.downlinks / 1000, 1), "tx_acks_queued": upstream.tx_acks}


def asyncio_run_once(coro: Any) -> Any:
    """Drive a coroutine that never suspends (`GatewayServer.schedule_downlink` answers at once)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("schedule_downlink suspended")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--downlinks", type=int, default=20_000)
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--log-level", default="", help="set up the daemon's logging at this level (default: none)")
    parser.add_argument("--no-gc", action="store_true",
                        help="garbage collection off (for instruction counts that do not depend on when it runs)")
    args = parser.parse_args()
    if args.log_level:
        from gatewayserver import logs

        logs.setup(args.log_level)  # as `gatewayserver run` does; lines go to stderr, through the rate limit
    if args.no_gc:
        gc.disable()
    results = [asyncio.run(run(args)) for _ in range(args.rounds)]
    print(f"daemon core per downlink (schedule, PULL_RESP, TX_ACK, ack queued), {args.gateways} gateways: "
          + ", ".join(f"{r['us_per_downlink']} µs" for r in results)
          + f" (best {min(r['us_per_downlink'] for r in results)}); TX acks queued {results[-1]['tx_acks_queued']}")


if __name__ == "__main__":
    main()
