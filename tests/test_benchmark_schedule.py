"""benchmarks/schedule.py --workers: its flag parses, and its client really spreads calls over connections.

With `gatewayserver run --workers N` the kernel places each TCP connection on one worker, so a client on one
connection would measure one worker; these tests check the load generator opens one connection per channel
(server-side peers and sockets counted over real loopback gRPC), not any timing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from gatewayserver.ttnpb import gatewayserver_pb2, gatewayserver_pb2_grpc, networkserver_pb2_grpc

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "schedule.py"


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("bench_schedule", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_schedule"] = module
    spec.loader.exec_module(module)
    return module


schedule = load_script()


def test_workers_flag_parses_a_list_and_defaults_to_the_old_behaviour() -> None:
    parser = schedule.build_parser()
    assert parser.parse_args(["--workers", "1,2"]).workers == [1, 2]
    assert parser.parse_args(["--workers", "3"]).workers == [3]
    args = parser.parse_args([])
    assert args.workers is None  # no --workers: the in-process daemon of before
    assert args.channels == 16 and args.wait_quiet == 0.0


@pytest.mark.parametrize("bad", ["0", "1,0", "", "x"])
def test_workers_flag_refuses_bad_counts(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        schedule.build_parser().parse_args(["--workers", bad])
    assert exc.value.code == 2


def test_forwarded_calls_are_read_per_method_and_code() -> None:
    text = "\n".join([
        "# HELP gs_worker_forwarded_calls_total API calls forwarded",
        'gs_worker_forwarded_calls_total{code="OK",method="ScheduleDownlink"} 1572.0',
        'gs_worker_forwarded_calls_total{code="UNAVAILABLE",method="ScheduleDownlink"} 3.0',
        'gs_worker_forwarded_calls_created{code="OK",method="ScheduleDownlink"} 1.7e9',
        'gs_worker_forwarded_calls_total{code="OK",method="Metrics"} 1.0',
    ])
    assert schedule.parse_forwarded(text) == {
        "ScheduleDownlink/OK": 1572.0, "ScheduleDownlink/UNAVAILABLE": 3.0, "Metrics/OK": 1.0,
    }


class Recorder(gatewayserver_pb2_grpc.NsGsServicer):
    def __init__(self) -> None:
        self.peers: list[str] = []

    async def ScheduleDownlink(self, request: Any, context: Any) -> Any:
        self.peers.append(context.peer())
        return gatewayserver_pb2.ScheduleDownlinkResponse(rx1=True)


@pytest.fixture
async def server() -> Any:
    recorder = Recorder()
    srv = grpc.aio.server()
    gatewayserver_pb2_grpc.add_NsGsServicer_to_server(recorder, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    yield recorder, port
    await srv.stop(None)


@pytest.mark.parametrize("channels", [1, 4])
async def test_calls_spread_over_one_connection_per_channel(server: Any, channels: int) -> None:
    recorder, port = server
    latencies, errors, _ = await schedule.call_loop(port, [bytes(64)] * 64, 8, channels=channels)
    assert (len(latencies), errors) == (64, 0)
    assert len(set(recorder.peers)) == channels  # distinct client ports: one TCP connection per channel


async def test_connection_spread_counts_the_server_side_sockets(server: Any) -> None:
    _, port = server
    opened = schedule.open_channels(f"127.0.0.1:{port}", 3)
    try:
        for channel in opened:
            await channel.channel_ready()
        # This process is the "daemon": it holds the server side of the three connections (and the client side,
        # whose local port is not the server's, so it does not count).
        assert await schedule.connection_spread(os.getpid(), port, 0.0) == {str(os.getpid()): 3}
    finally:
        for channel in opened:
            await channel.close()


class TxAckRecorder(networkserver_pb2_grpc.GsNsServicer):
    def __init__(self) -> None:
        self.acks: list[Any] = []
        self.authorization: set[str] = set()

    async def ReportTxAcknowledgment(self, request: Any, context: Any) -> Any:
        self.acks.append(request)
        self.authorization.update(v for k, v in context.invocation_metadata() if k == "authorization")
        return empty_pb2.Empty()


async def test_the_two_call_floor_makes_one_outbound_tx_acknowledgment_per_served_call(tmp_path: Path) -> None:
    # The bound `--two-call-floor` reports is only a bound if its server really makes the daemon's outbound call
    # once per ScheduleDownlink: a real GsNs server here counts them, the floor runs as the benchmark runs it.
    recorder = TxAckRecorder()
    ns = grpc.aio.server()
    networkserver_pb2_grpc.add_GsNsServicer_to_server(recorder, ns)
    ns_port = ns.add_insecure_port("127.0.0.1:0")
    await ns.start()
    port_file = tmp_path / "ports.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--serve-floor", str(port_file), "--ns-address", f"127.0.0.1:{ns_port}"
    )
    try:
        port = (await schedule.read_port_file(port_file))["grpc"]
        latencies, errors, _ = await schedule.call_loop(port, [bytes(64)] * 40, 8)
        assert (len(latencies), errors) == (40, 0)
        for _ in range(100):
            if len(recorder.acks) >= 40:
                break
            await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
        await ns.stop(None)
    assert len(recorder.acks) == 40
    assert all(ack.tx_ack.downlink_message.scheduled.frequency == 868_100_000 for ack in recorder.acks)
    assert recorder.authorization == {"ClusterKey " + schedule.CLUSTER_KEY.hex()}
    counts = json.loads(port_file.with_suffix(".outbound.json").read_text())
    assert counts == {"made": 40, "failed": 0, "skipped": 0}
