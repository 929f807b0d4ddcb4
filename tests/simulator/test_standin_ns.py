"""The benchmark's stand-in Network Server measures what the benchmark reports: check it reads the fields right."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from gatewayserver.simulator import SimulatedDevice
from gatewayserver.ttnpb import messages_pb2, networkserver_pb2_grpc

STANDIN = Path(__file__).resolve().parents[2] / "benchmarks" / "standin_ns"



@pytest.fixture(autouse=True, scope="module")
def _node_modules() -> None:
    """`.ci/test` installs the stand-in's packages; a missing Node.js or install is a failure, not a skip."""
    assert shutil.which("node") is not None, "Node.js is needed for the benchmark's stand-in Network Server"
    if not (STANDIN / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=STANDIN, check=True, timeout=300)


@pytest.fixture(params=["http2", "grpc-js"])
def standin(request: pytest.FixtureRequest):
    proc = subprocess.Popen(["node", str(STANDIN / "server.js"), "--port", "0", "--control-port", "0",
                             "--engine", request.param], stdout=subprocess.PIPE, text=True)
    try:
        ports = json.loads(proc.stdout.readline())
        yield ports | {"engine": request.param}
    finally:
        proc.terminate()
        proc.wait(10)


def _stats(ports: dict) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['control_port']}/stats?reset=1", timeout=10) as r:
        return json.load(r)


async def test_records_uplinks_with_read_and_send_latency(standin: dict) -> None:
    now = time.time_ns()
    m = messages_pb2.UplinkMessage()
    m.raw_payload = SimulatedDevice(0x26000001).next_frame(12, stamp_ns=now - 7_000_000)
    m.received_at.FromNanoseconds(now - 5_000_000)
    m.rx_metadata.add().gateway_ids.gateway_id = "eui-0016c001ff000001"
    m.correlation_ids.extend(["gs:conn:A", "gs:uplink:B"])
    ack = messages_pb2.GatewayTxAcknowledgment()
    ack.gateway_ids.gateway_id = "gw"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{standin['grpc_port']}") as channel:
        stub = networkserver_pb2_grpc.GsNsStub(channel)
        await stub.HandleUplink(m, timeout=5)
        await stub.HandleUplink(messages_pb2.UplinkMessage(raw_payload=b"\x40"), timeout=5)  # no times: counted only
        await stub.ReportTxAcknowledgment(ack, timeout=5)
    stats = _stats(standin)
    assert stats["uplinks"] == 2 and stats["tx_acks"] == 1
    assert stats["correlation_ids"] == 2 and stats["uplinks_without_received_at"] == 1
    (read_us,) = stats["read_latency_us"]
    (send_us,) = stats["send_latency_us"]
    assert 5_000 <= read_us < 5_000 + 2_000_000 and 7_000 <= send_us < 7_000 + 2_000_000
    assert send_us - read_us == pytest.approx(2_000, abs=1)
    ((stamp_ms, stamped_send_us, stamped_read_us),) = stats["stamped"]
    assert stamp_ms == pytest.approx((now - 7_000_000) / 1e6, abs=0.001)
    assert (stamped_send_us, stamped_read_us) == (send_us, read_us)
    assert stats["sample_uplink"]["correlation_ids"] == ["gs:conn:A", "gs:uplink:B"]
    assert stats["sample_tx_ack"]["gateway_ids"]["gateway_id"] == "gw"
    assert _stats(standin)["uplinks"] == 0  # reset


async def test_an_unknown_method_is_unimplemented_and_a_bad_frame_internal(standin: dict) -> None:
    """What a real gRPC server answers, so that a Gateway Server bug shows as an error, not as a count."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{standin['grpc_port']}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await channel.unary_unary("/ttn.lorawan.v3.GsNs/NoSuchMethod")(b"", timeout=5)
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # A gzip-compressed message: grpc-js reads it, the http2 engine (which never asks for one) refuses it.
        compressed = channel.unary_unary("/ttn.lorawan.v3.GsNs/HandleUplink")(
            messages_pb2.UplinkMessage(raw_payload=b"\x40" * 40).SerializeToString(), timeout=5,
            compression=grpc.Compression.Gzip,
        )
        if standin["engine"] == "http2":
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await compressed
            assert refused.value.code() == grpc.StatusCode.INTERNAL
        else:
            await compressed
        await networkserver_pb2_grpc.GsNsStub(channel).HandleUplink(messages_pb2.UplinkMessage(), timeout=5)
    assert _stats(standin)["uplinks"] == (1 if standin["engine"] == "http2" else 2)
