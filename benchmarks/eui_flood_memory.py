"""Memory a flood of new gateway EUIs leaves in a daemon, and whether a registered gateway still gets through.

Starts `gatewayserver run` (registration not required, so every new EUI is admitted as `eui-<hex>`), sends one
PULL_DATA from each of `--euis` new EUIs, then has a registered gateway send uplinks, lets the flood's connections
expire and reports the daemon's RSS at each step:

    .venv/bin/python benchmarks/eui_flood_memory.py --euis 100000
    .venv/bin/python benchmarks/eui_flood_memory.py --euis 100000 --max-gateways 10000

No Network Server is needed: uplinks are written as JSON lines to /dev/null; a PUSH_ACK per uplink is what counts.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REGISTERED_EUI = bytes.fromhex("0102030405060708")


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--euis", type=int, default=100_000)
    parser.add_argument("--max-gateways", type=int, default=None, help="the daemon's --max-gateways")
    parser.add_argument("--expires", type=float, default=5.0, help="the daemon's --connection-expires (s)")
    args = parser.parse_args()

    udp = _free(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "gateways.yml"
        registry.write_text(f"gateways:\n  - eui: '{REGISTERED_EUI.hex()}'\n    gateway_id: registered\n")
        command = [
            sys.executable, "-m", "gatewayserver", "run", "--gateways", str(registry),
            "--udp-listen", f"127.0.0.1:{udp}", "--http-listen", f"127.0.0.1:{_free(socket.SOCK_STREAM)}",
            "--grpc-listen", f"127.0.0.1:{_free(socket.SOCK_STREAM)}", "--uplink-output", os.devnull,
            "--connection-expires", f"{args.expires}s", "--log-level", "warning",
        ]
        if args.max_gateways is not None:
            command += ["--max-gateways", str(args.max_gateways)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        proc = subprocess.Popen(command, env=env)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(5)
            for _ in range(100):  # wait until the daemon answers
                sock.sendto(b"\x02\x00\x00\x02" + REGISTERED_EUI, ("127.0.0.1", udp))
                try:
                    sock.recvfrom(64)
                    break
                except OSError:
                    time.sleep(0.2)
            time.sleep(1)
            print(f"baseline: {_rss_mb(proc.pid):.0f} MB")
            acked = 0
            for n in range(args.euis):
                sock.sendto(b"\x02\x00\x00\x02" + (0xBAD0000000000000 + n).to_bytes(8, "big"), ("127.0.0.1", udp))
                if n % 50 == 49:  # keep in step with the daemon: collect this batch's acks
                    for _ in range(50):
                        try:
                            sock.recvfrom(64)
                            acked += 1
                        except OSError:
                            break
            print(f"after {args.euis:,} new EUIs ({acked:,} PULL_ACKs): {_rss_mb(proc.pid):.0f} MB")
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.settimeout(2)
            body = b'{"rxpk":[{"tmst":1,"freq":868.1,"rfch":0,"stat":1,"modu":"LORA","datr":"SF7BW125",' \
                   b'"codr":"4/5","rssi":-40,"lsnr":9,"size":13,"data":"QDQSASYAAQABaGVsbG8="}]}'
            ok = 0
            for n in range(50):
                up.sendto(b"\x02" + n.to_bytes(2, "big") + b"\x00" + REGISTERED_EUI + body, ("127.0.0.1", udp))
                try:
                    ok += len(up.recvfrom(64)[0]) == 4
                except OSError:
                    pass
                time.sleep(0.002)  # a gateway's pace, under the flood guard (10 datagrams per 10 ms)
            print(f"registered gateway: {ok}/50 uplinks acked")
            time.sleep(args.expires + 4)  # the flood's connections expire (the registered one too)
            print(f"after expiry: {_rss_mb(proc.pid):.0f} MB")
        finally:
            proc.terminate()
            proc.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
