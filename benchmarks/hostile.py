#!/usr/bin/env python3
"""A good gateway's ack latency while one source sends hostile datagrams at line rate, beside a baseline.

Two runs in one invocation, each against a fresh ``gatewayserver run`` pinned to its own core (loopback only;
every process is stopped at the end):

1. **baseline**: one good gateway (the simulator in its own process: uplinks at ``--rate`` per second on its up
   socket, a PULL_DATA keepalive every ``--keepalive`` seconds on its down socket) and nothing else;
2. **hostile**: the same good gateway, and one hostile process on the auxiliary core sending as fast as it can
   (``nice`` 10, so the good gateway and the stand-in Network Server still get that core when they need it)
   a round-robin mix of

   - ``zeros``: the 65 KB PUSH_DATA ``{"rxpk":[0,0,...]}`` (32,700 entries), from 16 rotating EUIs;
   - ``huge``: a 27 KB PUSH_DATA with 300 *valid* rxpk, from 16 rotating EUIs;
   - ``spoof``: PULL_DATA carrying the good gateway's EUI, from the hostile socket (same IP, another port);
   - ``new_eui``: PULL_DATA from an EUI never seen before, every time;
   - ``garbage``: random bytes, truncated headers, unknown versions and invalid JSON bodies.

Per run: PUSH_ACK and PULL_ACK latency of the good gateway (p50/p99/max, simulator send to ack receipt), acks
lost (no ack within ``--ack-timeout``), the good gateway's uplinks that reached the stand-in, what the hostile
source sent, what the daemon counted (datagrams received and dropped by reason) and what the kernel dropped on
the daemon's socket because its buffer was full (``/proc/net/udp``).

    .venv/bin/python benchmarks/hostile.py --quick     # 8 s per run, about 30 s in all
    .venv/bin/python benchmarks/hostile.py             # 30 s per run
    .venv/bin/python benchmarks/hostile.py --mix zeros,huge,garbage   # a subset of the hostile mix

The daemon, the stand-in and the helpers are the uplink benchmark's (``uplink.py``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from uplink import REPO, CpuMeter, Daemon, StandinNs, before_phase, log, pinned

GOOD_EUI = 0x0016C0DD00000001
KINDS = ("zeros", "huge", "spoof", "new_eui", "garbage")
# Datagrams of each kind per round of the hostile mix: the big ones are few, the cheap ones many.
PER_ROUND = {"zeros": 1, "huge": 1, "spoof": 20, "new_eui": 20, "garbage": 20}


# --- the hostile source (runs in its own process) ---------------------------------------------------------------


def _frame(fcnt: int) -> bytes:
    """A LoRaWAN 1.0 unconfirmed data uplink (a Gateway Server does not check the MIC)."""
    return b"\x40" + (0x26AB0000 + fcnt).to_bytes(4, "little") + b"\x00" + (fcnt & 0xFFFF).to_bytes(2, "little") + \
        b"\x01" + b"hostile" + b"\xa1\xb2\xc3\xd4"


def _header(kind: int, eui: bytes, token: int = 0x4242) -> bytes:
    return b"\x02" + token.to_bytes(2, "big") + bytes([kind]) + eui


def hostile_datagrams(kind: str, good_eui: bytes, rng: random.Random) -> list[bytes]:
    """Prebuilt datagrams of one kind, sent in turn (new_eui is built per send instead)."""
    euis = [(0xBAD0000000000000 + i).to_bytes(8, "big") for i in range(16)]
    if kind == "zeros":
        body = b'{"rxpk":[' + b"0," * 32_700 + b"0]}"
        return [_header(0, eui) + body for eui in euis]
    if kind == "huge":
        rxpk = [{"tmst": i, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "rssi": -50,
                 "data": base64.b64encode(_frame(i)).decode()} for i in range(300)]
        body = json.dumps({"rxpk": rxpk}, separators=(",", ":")).encode()
        return [_header(0, eui) + body for eui in euis]
    if kind == "spoof":
        return [_header(2, good_eui, token) for token in range(1, 257)]
    if kind == "garbage":
        out = [rng.randbytes(rng.randrange(0, 64)) for _ in range(64)]
        out += [bytes([rng.choice((0, 3, 9, 255)), 0, 0, 0]) + rng.randbytes(20) for _ in range(32)]
        out += [_header(0, euis[i % 16]) + b'{"rxpk":[{"data":' + rng.randbytes(30) for i in range(32)]
        return out
    raise ValueError(kind)


HOSTILE_HOST = "127.0.0.2"


def run_hostile_sender(host: str, port: int, seconds: float, kinds: list[str], good_eui: bytes) -> dict[str, Any]:
    rng = random.Random(7)
    prebuilt = {kind: hostile_datagrams(kind, good_eui, rng) for kind in kinds if kind != "new_eui"}
    sent = dict.fromkeys(kinds, 0)
    sent_bytes = 0
    errors = 0
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    # An attacker is another host than the gateways: 127.0.0.2 is one on loopback (the daemon listens on 127.0.0.1,
    # the good gateway sends from it). Only `spoof` comes from the good gateway's own address, from another port:
    # that is the attack it stands for (a datagram with the victim's EUI from the victim's NAT address).
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOSTILE_HOST, 0))
    same_host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (sock, same_host):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    address = (host, port)
    new_eui = 0xEE00000000000000
    rounds = [(kind, PER_ROUND[kind]) for kind in kinds]
    start = time.monotonic()
    stop_at = start + seconds
    while time.monotonic() < stop_at and not stopped:
        for kind, count in rounds:
            for _ in range(count):
                if kind == "new_eui":
                    new_eui += 1
                    datagram = _header(2, new_eui.to_bytes(8, "big"))
                else:
                    items = prebuilt[kind]
                    datagram = items[sent[kind] % len(items)]
                try:
                    (same_host if kind == "spoof" else sock).sendto(datagram, address)
                except OSError:  # ENOBUFS on a full loopback queue: try the next one
                    errors += 1
                    continue
                sent[kind] += 1
                sent_bytes += len(datagram)
    elapsed = time.monotonic() - start
    total = sum(sent.values())
    return {"sent": sent, "datagrams": total, "bytes": sent_bytes, "seconds": round(elapsed, 2),
            "rate": round(total / elapsed), "mbytes_per_s": round(sent_bytes / elapsed / 1e6, 1),
            "send_errors": errors}


# --- measurement ------------------------------------------------------------------------------------------------


def metrics_by_label(daemon: Daemon, name: str) -> dict[str, float]:
    """One counter's samples by their (single) label value; "" for an unlabelled counter."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in (" ", "{"):
            continue
        series, value = line.rsplit(" ", 1)
        label = series.split('"')[1] if '"' in series else ""
        out[label] = out.get(label, 0.0) + float(value)
    return out


def kernel_drops(port: int) -> int | None:
    """Datagrams the kernel dropped on the daemon's UDP socket (its receive buffer was full)."""
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return int(fields[-1])
    except OSError:
        return None
    return None


def run_once(name: str, ns: StandinNs, args: argparse.Namespace, kinds: list[str]) -> dict[str, Any]:
    before_phase(args)
    daemon = Daemon(ns.grpc_port, args.daemon_cpu, args.daemon_arg)
    hostile = None
    try:
        import uvloop

        uvloop.run(daemon.wait_ready())
        ns.stats(reset=True)
        # "load": this process and its reaped children, the good gateway and the hostile source.
        meter = CpuMeter({"daemon": daemon.proc.pid, "standin": ns.proc.pid, "load": os.getpid()})
        drops_before = kernel_drops(daemon.udp_port) or 0
        meter.start()
        started = time.monotonic()
        if kinds:
            hostile = subprocess.Popen(
                [sys.executable, __file__, "--hostile-sender", "127.0.0.1", str(daemon.udp_port),
                 str(args.seconds + 60.0), ",".join(kinds), f"{GOOD_EUI:016x}"],
                stdout=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=_nice_pinned(args.aux_cpu, 10),
            )
            time.sleep(1.0)  # the good gateway starts into a flood already going
        good = subprocess.run(
            [sys.executable, "-m", "gatewayserver.simulator", "--address", f"127.0.0.1:{daemon.udp_port}",
             "--gateways", "1", "--rate", str(args.rate), "--duration", str(args.seconds),
             "--keepalive-interval", str(args.keepalive), "--stat-interval", "5", "--start-spread", "0",
             "--eui-base", f"{GOOD_EUI:016x}", "--ack-timeout", str(args.ack_timeout), "--drain",
             str(args.ack_timeout), "--json"],
            stdout=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=pinned(args.aux_cpu),
            timeout=args.seconds + 120, check=False,
        )
        sender = None
        if hostile is not None:
            hostile.terminate()  # the sender stops at SIGTERM and reports what it sent
            sender = json.loads(hostile.communicate(timeout=60)[0])
        wall = time.monotonic() - started
        cpu = meter.stop()
        summary = json.loads(good.stdout)
        time.sleep(1.0)  # the last uplinks reach the stand-in
        at_ns = ns.stats(reset=True)
        result = {
            "name": name,
            "mix": kinds,
            "good": {
                "push_sent": summary["push_data_sent"], "push_acks": summary["push_acks"],
                "push_acks_lost": summary["push_acks_lost"], "push_ack_ms": summary["push_ack_latency_ms"],
                "pull_sent": summary["pull_data_sent"], "pull_acks": summary["pull_acks"],
                "pull_acks_lost": summary["pull_acks_lost"], "pull_ack_ms": summary["pull_ack_latency_ms"],
                "uplinks_sent": summary["uplinks_sent"],
            },
            "uplinks_at_ns": at_ns["uplinks"],
            "hostile": sender,
            "daemon_datagrams_received": metrics_by_label(daemon, "gs_udp_datagrams_received_total"),
            "daemon_datagrams_dropped": metrics_by_label(daemon, "gs_udp_datagrams_dropped_total"),
            "daemon_uplinks_received": metrics_by_label(daemon, "gs_uplinks_received_total").get("", 0.0),
            "daemon_uplinks_dropped": metrics_by_label(daemon, "gs_uplinks_dropped_total"),
            "kernel_drops": (kernel_drops(daemon.udp_port) or 0) - drops_before,
            "cpu": cpu,
            "wall": round(wall, 2),  # seconds the daemon was receiving (hostile lead-in included)
        }
        return result
    finally:
        if hostile is not None and hostile.poll() is None:
            hostile.kill()
            hostile.wait()
        daemon.close()


def _nice_pinned(cpu: int | None, increment: int) -> Callable[[], None]:
    pin = pinned(cpu)

    def setup() -> None:
        if pin is not None:
            pin()
        os.nice(increment)

    return setup


def bench(args: argparse.Namespace) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    if args.daemon_cpu is None:
        args.daemon_cpu = cpus[0]
    if args.aux_cpu is None:
        args.aux_cpu = cpus[1] if len(cpus) > 1 else cpus[0]
    os.sched_setaffinity(0, {args.aux_cpu})
    log(f"cores: daemon on {args.daemon_cpu}; stand-in, good gateway and hostile source on {args.aux_cpu}")
    ns = StandinNs(args.aux_cpu)
    try:
        runs = []
        plan: list[tuple[str, list[str]]] = [("baseline", []), ("hostile", args.mix)]
        if args.per_kind:
            plan += [(kind, [kind]) for kind in args.mix]
        for name, kinds in plan:
            log(f"{name} run ({args.seconds:.0f} s{', mix ' + ','.join(kinds) if kinds else ''})")
            runs.append(run_once(name, ns, args, kinds))
            log(_row(runs[-1]))
    finally:
        ns.close()
    return {"cpus": len(cpus), "daemon_cpu": args.daemon_cpu, "aux_cpu": args.aux_cpu, "rate": args.rate,
            "seconds": args.seconds, "runs": runs}


def _ms(d: dict[str, Any], key: str) -> str:
    return "-" if d.get(key) is None else f"{d[key]:.2f}"


def _row(r: dict[str, Any]) -> str:
    g = r["good"]
    return (f"{r['name']:<9} PUSH_ACK p50 {_ms(g['push_ack_ms'], 'p50')} p99 {_ms(g['push_ack_ms'], 'p99')} "
            f"max {_ms(g['push_ack_ms'], 'max')} ms, lost {g['push_acks_lost']}/{g['push_sent']}; "
            f"PULL_ACK p50 {_ms(g['pull_ack_ms'], 'p50')} p99 {_ms(g['pull_ack_ms'], 'p99')} ms, "
            f"lost {g['pull_acks_lost']}/{g['pull_sent']}; uplinks at NS {r['uplinks_at_ns']}/{g['uplinks_sent']}")


def report(result: dict[str, Any]) -> str:
    title = (f"Good gateway under a hostile source (loopback; daemon pinned to core {result['daemon_cpu']}; "
             f"good gateway {result['rate']:.0f} uplinks/s, {result['seconds']:.0f} s per run)")
    lines = ["", title]
    for r in result["runs"]:
        lines.append("  " + _row(r))
        h = r["hostile"]
        if h:
            sent = ", ".join(f"{k} {v}" for k, v in h["sent"].items())
            lines.append(f"            hostile source: {h['rate']} datagrams/s, {h['mbytes_per_s']} MB/s ({sent}; "
                         f"{h['send_errors']} send errors)")
        received = sum(r["daemon_datagrams_received"].values())
        dropped = r["daemon_datagrams_dropped"]
        handled = received + sum(dropped.values())
        dropped_text = ", ".join(f"{k} {v:.0f}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1]) if v)
        lines.append(f"            daemon: {handled / r['wall']:.0f} datagrams/s handled; {received:.0f} accepted, "
                     f"{sum(dropped.values()):.0f} refused ({dropped_text or 'none'}); kernel dropped "
                     f"{r['kernel_drops']} (socket buffer full); "
                     f"gs_uplinks_received_total {r['daemon_uplinks_received']:.0f}; CPU daemon "
                     f"{r['cpu'].get('daemon_cores', 0):.2f}, stand-in {r['cpu'].get('standin_cores', 0):.2f}, "
                     f"good gateway + hostile source {r['cpu'].get('load_cores', 0):.2f}, "
                     f"other processes {r['cpu'].get('other_cores', 0):.2f} cores")
    busy = max((r["cpu"].get("other_cores", 0.0) for r in result["runs"]), default=0.0)
    if busy > 0.15:
        lines.append(f"  note: other processes used up to {busy:.2f} cores during the runs; the daemon got less than "
                     "its core and the figures are worse than on a quiet machine")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) == 7 and sys.argv[1] == "--hostile-sender":
        _, _, host, port, seconds, kinds, eui = sys.argv
        print(json.dumps(run_hostile_sender(host, int(port), float(seconds), kinds.split(","), bytes.fromhex(eui))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="8 s per run")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds of good-gateway traffic per run")
    p.add_argument("--rate", type=float, default=50.0, help="the good gateway's uplinks per second")
    p.add_argument("--keepalive", type=float, default=1.0, help="the good gateway's PULL_DATA interval, seconds")
    p.add_argument("--ack-timeout", type=float, default=1.0, help="an ack later than this counts as lost")
    p.add_argument("--mix", type=lambda s: [k for k in s.split(",") if k], default=list(KINDS),
                   help=f"comma-separated hostile kinds (default: all of {','.join(KINDS)})")
    p.add_argument("--per-kind", action="store_true",
                   help="after the mixed run, one more hostile run per kind of the mix (which kind costs what)")
    p.add_argument("--daemon-cpu", type=int, default=None, help="core for the daemon")
    p.add_argument("--aux-cpu", type=int, default=None, help="core for the stand-in, good gateway and hostile source")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each run wait up to this long for other processes to go quiet")
    p.add_argument("--daemon-arg", action="append", default=[], help="extra argument for gatewayserver run")
    args = p.parse_args()
    unknown = set(args.mix) - set(KINDS)
    if unknown:
        p.error(f"unknown hostile kinds {sorted(unknown)}; choose from {','.join(KINDS)}")
    if args.quick:
        args.seconds = 8.0
    result = bench(args)
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
