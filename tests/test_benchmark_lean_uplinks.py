"""benchmarks/lean_uplinks.py against a real daemon: its uplinks reach the Network Server and its acks are counted.

The lean sender replaces the simulator in `uplink.py --workers 1,2`, so it must put on the wire what the simulator
does: PUSH_DATA the daemon accepts (valid Semtech JSON, base64, channels and spreading factors of the plan), one
connection per gateway EUI, LoRaWAN frames carrying the send stamp. Real UDP sockets against the e2e harness's
daemon and gRPC stand-in; counts and contents are asserted, no timing.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from e2e.harness import Harness
from gatewayserver.simulator import FREQUENCY_PLANS, SimulatedDevice, gateway_eui

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lean_uplinks.py"
EUI_BASE = 0x0016C0DEAD000000
GATEWAYS = 5
RATE = 200
SECONDS = 1.0


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("bench_lean_uplinks", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_lean_uplinks"] = module
    spec.loader.exec_module(module)
    return module


lean = load_script()


def test_frames_are_the_simulators_and_the_chained_cmac_is_aes_cmac() -> None:
    key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    chained = lean.ChainedCmac(key)
    for n in [*range(1, 70), 16, 32, 1, 41]:  # every padding case, then again on the same context
        data = bytes((i * 7 + n) & 0xFF for i in range(n))
        reference = cmac.CMAC(algorithms.AES(key))
        reference.update(data)
        assert chained.tag(data) == reference.finalize(), n
    device = SimulatedDevice(0x26000007)
    framer = lean.Framer(12, real_mic=True)
    for fcnt in range(300):
        assert framer.frame(0x26000007, fcnt, 1_700_000_000_000_000_000 + fcnt) == device.next_frame(
            12, stamp_ns=1_700_000_000_000_000_000 + fcnt)


def test_uplinks_reach_the_network_server_and_every_ack_is_counted() -> None:
    with Harness() as harness:
        host, port = harness.udp_address[:2]
        result = subprocess.run(
            [sys.executable, str(SCRIPT), "--address", f"{host}:{port}", "--gateways", str(GATEWAYS),
             "--rate", str(RATE), "--duration", str(SECONDS), "--eui-base", f"{EUI_BASE:016x}", "--real-mic",
             # Generous: on a loaded machine an ack may be late, but none may be missing.
             "--ack-timeout", "60", "--drain", "60"],
            capture_output=True, text=True, timeout=180,
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        sent = summary["uplinks_sent"]
        assert sent == RATE * SECONDS
        uplinks = [harness.ns.uplinks.get(timeout=60)[0] for _ in range(sent)]
        time.sleep(0.5)
        assert harness.ns.uplinks.empty(), "no more uplinks than were sent"

    # Every PUSH_DATA (the uplinks and one stat per gateway) and every PULL_DATA got its ack, counted once.
    assert summary["push_data_sent"] == sent + GATEWAYS and summary["status_sent"] == GATEWAYS
    assert summary["push_acks"] == summary["push_data_sent"]
    assert summary["push_acks_lost"] == 0 and summary["unexpected_acks"] == 0 and summary["send_errors"] == 0
    assert summary["pull_data_sent"] == summary["pull_acks"] == GATEWAYS and summary["pull_acks_lost"] == 0
    assert summary["push_ack_latency_ms"]["p50"] is not None
    for key in ("achieved_rate", "send_start_unix_ns", "cpu_us_per_uplink"):
        assert summary[key] > 0, key
    print(f"lean sender: {summary['cpu_us_per_uplink']} µs CPU per uplink at {RATE}/s (start-up included)")

    # What arrived is what the simulator would send: the gateways' EUIs, the plan's channels and spreading factors,
    # frames whose FCnt counts up per device, whose MIC is right and whose FRMPayload starts with the send stamp.
    euis = {gateway_eui(EUI_BASE, i) for i in range(GATEWAYS)}
    frequencies = {round(f * 1e6) for f in FREQUENCY_PLANS["EU_863_870"]}
    fcnts: dict[int, list[int]] = {}
    done = time.time_ns()
    for up in uplinks:
        assert up.rx_metadata[0].gateway_ids.eui in euis
        assert up.settings.frequency in frequencies
        assert up.settings.data_rate.lora.spreading_factor in (7, 8, 9, 10)
        raw = up.raw_payload
        assert len(raw) == 25 and raw[0] == 0x40
        dev_addr, fcnt = struct.unpack_from("<IxH", raw, 1)
        (stamp,) = struct.unpack_from(">Q", raw, 9)
        assert summary["send_start_unix_ns"] <= stamp <= done
        device = SimulatedDevice(dev_addr, fcnt=fcnt)
        assert device.next_frame(12, stamp_ns=stamp) == raw, "the MIC checks out"
        fcnts.setdefault(dev_addr, []).append(fcnt)
    assert len(fcnts) == GATEWAYS
    assert all(sorted(v) == list(range(len(v))) for v in fcnts.values())


def test_uplink_benchmark_chooses_the_lean_sender_for_the_workers_comparison_only() -> None:
    spec = importlib.util.spec_from_file_location("bench_uplink", SCRIPT.parent / "uplink.py")
    assert spec is not None and spec.loader is not None
    uplink = importlib.util.module_from_spec(spec)
    sys.modules["bench_uplink"] = uplink  # its dataclasses look their module up
    spec.loader.exec_module(uplink)

    class Args:
        udp_sender = "auto"

    args = Args()
    assert uplink.udp_sender(args, comparing_workers=True) == "lean"
    assert uplink.udp_sender(args, comparing_workers=False) == "simulator"
    for choice in ("lean", "simulator"):
        args.udp_sender = choice
        assert uplink.udp_sender(args, comparing_workers=True) == choice
        assert uplink.udp_sender(args, comparing_workers=False) == choice
    result = subprocess.run([sys.executable, str(SCRIPT.parent / "uplink.py"), "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "--udp-sender {auto,lean,simulator}" in result.stdout
