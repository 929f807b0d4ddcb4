#!/usr/bin/env python3
"""A lean UDP uplink load generator: Semtech PUSH_DATA from G packet forwarders at a paced rate, in its own process.

Why it exists: `run_simulation` (gatewayserver/simulator.py) is a faithful packet forwarder driven through asyncio
and asyncio-dgram, and costs 90-160 µs of CPU per uplink. On a two-core machine the load generator shares the cores
with the daemon it measures, so with `uplink.py --workers 1,2` the simulator, not the daemon, decided how much
faster two workers could be. This sender does the same job on the wire for 16-38 µs per uplink (this VM; see
benchmarks/README.md):

- plain non-blocking sockets, no event loop: every tick (2 ms by default) it sends the uplinks the clock says are
  due, then reads the acks that have arrived (one `epoll` call per tick, one `recv` per ready socket);
- G gateways, each with its own "up" socket (PUSH_DATA: rxpk and one stat) and "down" socket (PULL_DATA every
  `keepalive` seconds), EUIs ``eui_base + i`` as the simulator's, so the daemon sees the same connections;
- one rxpk per PUSH_DATA, whose fields (key order, channels and spreading factors rotating per uplink as the
  simulator's, random RSSI/SNR) come from a JSON template made per gateway at start-up; per uplink only the
  token, `tmst` and `data` change;
- the frame is a LoRaWAN 1.0 unconfirmed uplink with increasing FCnt, byte for byte the simulator's but for the
  MIC (four fixed bytes unless `--real-mic`: nothing on the measured path checks it); the first 8 bytes of its
  FRMPayload carry the send time (`time.time_ns()`, big-endian), which the stand-in Network Server reads for its
  send→receipt records;
- PUSH_ACKs are matched by token: latency, and acks missing after `ack_timeout` (or at the end of the drain)
  count as lost. Acks are read once per tick, so their latency is rounded up by up to one tick.

Its summary has the keys `uplink.py`'s `run_step` reads from `run_simulation` (uplinks_sent, achieved_rate,
send_start_unix_ns, push_acks_lost, push_ack_latency_ms) plus its own CPU per uplink.

    python benchmarks/lean_uplinks.py --address 127.0.0.1:1700 --gateways 100 --rate 5000 --duration 5
    python benchmarks/lean_uplinks.py --serve     # one JSON config per stdin line, one JSON summary per line

`--serve` is how `uplink.py` uses it: one process for the whole benchmark, so its start-up (imports) is not
charged to a step, and its CPU is read from /proc like the daemon's and the stand-in's.
"""

from __future__ import annotations

import argparse
import binascii
import dataclasses
import json
import random
import resource
import select
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from gatewayserver.simulator import FREQUENCY_PLANS, gateway_eui, parse_address, percentile  # noqa: E402

PUSH_DATA, PUSH_ACK, PULL_DATA, PULL_ACK = 0x00, 0x01, 0x02, 0x04
VERSION = 2
NWK_S_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")  # the simulator's default session key
TMST_PLACEHOLDER = 3_999_999_999_999  # replaced by %d in the template: no real field has this value
DATA_PLACEHOLDER = "@@DATA@@"

_HEADER = struct.Struct("<BIBHB")  # MHDR, DevAddr, FCtrl, FCnt (16 bits), FPort
_STAMP = struct.Struct(">Q")
_B0 = struct.Struct("<B4xBIIBB")  # LoRaWAN 1.0 uplink MIC block B0
# "\x02 token PUSH_DATA" for every token: one list lookup instead of building four bytes per uplink.
_PUSH_HEADERS = [bytes((VERSION, t >> 8, t & 0xFF, PUSH_DATA)) for t in range(65536)]


@dataclasses.dataclass
class LeanConfig:
    address: tuple[str, int] = ("127.0.0.1", 1700)
    gateways: int = 100
    rate: float = 1000.0  # uplinks per second, all gateways together
    duration: float = 5.0
    eui_base: int = 0x0016C001FF000000
    dev_addr_base: int = 0x26000000
    frequencies: tuple[float, ...] = FREQUENCY_PLANS["EU_863_870"]
    spreading_factors: tuple[int, ...] = (7, 8, 9, 10)
    payload_size: int = 12  # FRMPayload bytes, >= 8: the send stamp and filler
    keepalive: float = 10.0  # seconds between PULL_DATA
    tick: float = 0.002  # seconds between batches (each wake-up costs tens of µs on a VM)
    ack_timeout: float = 2.0
    drain: float = 0.5  # after the last uplink, wait up to this long for outstanding acks
    seed: int = 1
    real_mic: bool = False  # compute the AES-CMAC (see Framer)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LeanConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        for name in ("address", "frequencies", "spreading_factors"):
            if name in values:
                values[name] = tuple(values[name])
        if isinstance(values.get("eui_base"), str):
            values["eui_base"] = int(values["eui_base"], 16)
        config = cls(**values)
        if config.payload_size < 8 or config.payload_size > 222:
            raise ValueError("payload_size must be 8..222 (the send stamp needs 8 bytes)")
        if config.gateways < 1:
            raise ValueError("gateways must be at least 1")
        return config


# --- what goes on the wire (pure) -----------------------------------------------------------------------------


def rxpk_templates(config: LeanConfig, index: int, variants: int = 32) -> list[bytes]:
    """PUSH_DATA bodies after the token for gateway `index`, with `%d` for tmst and `%b` for the base64 data.

    Uplink i of a gateway uses template i % variants: channel i % len(frequencies) and spreading factor
    i % len(spreading_factors) like the simulator's `make_rxpk` (variants is a multiple of both for the
    defaults), RSSI and SNR drawn once per template.
    """
    rnd = random.Random(config.seed * 1_000_003 + index)
    size = 1 + 4 + 1 + 2 + 1 + config.payload_size + 4
    eui = gateway_eui(config.eui_base, index)
    out = []
    for i in range(variants):
        chan = i % len(config.frequencies)
        rxpk = {
            "tmst": TMST_PLACEHOLDER,
            "chan": chan,
            "rfch": (chan // 4) % 2,
            "freq": config.frequencies[chan],
            "stat": 1,
            "modu": "LORA",
            "datr": f"SF{config.spreading_factors[i % len(config.spreading_factors)]}BW125",
            "codr": "4/5",
            "lsnr": round(rnd.uniform(-10.0, 12.0), 1),
            "rssi": rnd.randint(-120, -40),
            "size": size,
            "data": DATA_PLACEHOLDER,
        }
        body = json.dumps({"rxpk": [rxpk]}, separators=(",", ":")).encode()
        # The EUI is binary and may hold a "%": escape everything before the two placeholders go in.
        template = (eui + body).replace(b"%", b"%%")
        template = template.replace(str(TMST_PLACEHOLDER).encode(), b"%d", 1)
        template = template.replace(DATA_PLACEHOLDER.encode(), b"%b", 1)
        out.append(template)
    return out


class ChainedCmac:
    """AES-CMAC (RFC 4493) of many messages on one long-lived AES-CBC context.

    OpenSSL's CMAC object costs 2 µs per message in a tight loop and 10-15 µs when the sender wakes with cold
    caches every tick. CBC with a zero IV computes the same chain, and its context keeps the last ciphertext
    block: XOR-ing that into the first block of the next message restarts the chain from zero, so one `update`
    per message does the whole MAC. The last block is padded and XOR-ed with K1/K2 as CMAC prescribes.
    """

    __slots__ = ("_enc", "_k1", "_k2", "_prev")

    def __init__(self, key: bytes):
        ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        subkey = int.from_bytes(ecb.update(bytes(16)), "big")
        self._k1 = _double(subkey)
        self._k2 = _double(self._k1)
        self._enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
        self._prev = 0  # the context's last ciphertext block, as an int

    def tag(self, data: bytes) -> bytes:
        """The 16-byte CMAC of `data` (at least one byte)."""
        rem = len(data) % 16
        if rem:
            cut = len(data) - rem
            last = int.from_bytes(data[cut:] + b"\x80" + bytes(15 - rem), "big") ^ self._k2
        else:
            cut = len(data) - 16
            last = int.from_bytes(data[cut:], "big") ^ self._k1
        if cut:
            first = (int.from_bytes(data[:16], "big") ^ self._prev).to_bytes(16, "big")
            out = self._enc.update(first + data[16:cut] + last.to_bytes(16, "big"))
        else:
            out = self._enc.update((last ^ self._prev).to_bytes(16, "big"))
        tag = out[-16:]
        self._prev = int.from_bytes(tag, "big")
        return tag


def _double(x: int) -> int:
    """Doubling in GF(2^128), for the CMAC subkeys."""
    return ((x << 1) & ((1 << 128) - 1)) ^ (0x87 if x >> 127 else 0)


class Framer:
    """LoRaWAN 1.0 unconfirmed uplinks with the send stamp first in the FRMPayload, base64-encoded.

    With `real_mic` the MIC is the AES-CMAC with the simulator's default session key (every device shares it, so
    one `ChainedCmac` serves all), and frames are byte for byte the simulator's; it costs 2-3 µs per uplink, and
    nothing on the measured path checks it (a Gateway Server has no session keys, the stand-in reads only the
    stamp), so by default the MIC is four fixed bytes.
    """

    __slots__ = ("_cmac", "_fill", "_mic")

    def __init__(self, payload_size: int, *, real_mic: bool = False, key: bytes = NWK_S_KEY):
        self._cmac = ChainedCmac(key) if real_mic else None
        self._mic = b"\x4d\x49\x43\x21"
        # The simulator's filler after the stamp, so both send the same frame for the same device, FCnt and time.
        self._fill = [bytes((k + i) & 0xFF for i in range(payload_size - 8)) for k in range(256)]

    def frame(self, dev_addr: int, fcnt: int, stamp_ns: int) -> bytes:
        """The PHYPayload of frame `fcnt` of `dev_addr`: MHDR, FHDR, FPort 1, stamp + filler, MIC."""
        msg = _HEADER.pack(0x40, dev_addr, 0, fcnt & 0xFFFF, 1) + _STAMP.pack(stamp_ns) + self._fill[fcnt & 0xFF]
        if self._cmac is None:
            return msg + self._mic
        return msg + self._cmac.tag(_B0.pack(0x49, 0, dev_addr, fcnt, 0, len(msg)) + msg)[:4]

    def base64(self, dev_addr: int, fcnt: int, stamp_ns: int) -> bytes:
        return binascii.b2a_base64(self.frame(dev_addr, fcnt, stamp_ns), newline=False)


# --- the sender (I/O) -----------------------------------------------------------------------------------------


def _latency_ms(values_ns: list[int]) -> dict[str, float | None]:
    values = sorted(values_ns)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v / 1e6, 3)

    return {"p50": ms(percentile(values, 50)), "p99": ms(percentile(values, 99)),
            "max": ms(values[-1] if values else None)}


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _raise_nofile_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard) if hard != resource.RLIM_INFINITY else needed,
                                                    hard))


def run(config: LeanConfig) -> dict[str, Any]:
    """Send round(rate * duration) uplinks round-robin over the gateways, paced by the clock; return the summary."""
    cpu_start = _cpu_seconds()
    g = config.gateways
    _raise_nofile_limit(2 * g + 64)
    euis = [gateway_eui(config.eui_base, i) for i in range(g)]
    ups: list[socket.socket] = []
    downs: list[socket.socket] = []
    by_fd: dict[int, socket.socket] = {}
    poller = select.epoll()
    try:
        for _ in range(g):
            for group in (ups, downs):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setblocking(False)
                s.connect(config.address)
                group.append(s)
                by_fd[s.fileno()] = s
                poller.register(s.fileno(), select.EPOLLIN)
        templates = [rxpk_templates(config, i) for i in range(g)]
        variants = len(templates[0])
        framer = Framer(config.payload_size, real_mic=config.real_mic)
        dev_addrs = [(config.dev_addr_base + i) & 0xFFFFFFFF for i in range(g)]
        fcnts = [0] * g
        rnd = random.Random(config.seed)
        tmst_starts = [rnd.getrandbits(32) for _ in range(g)]

        # Token t of any PUSH_DATA is sequence number & 0xFFFF; sent_at[t] is its send time (0: not outstanding).
        sent_at = [0] * 65536
        pending = 0  # how many entries of sent_at are not 0
        seq = rnd.getrandbits(16)
        ack_timeout_ns = int(config.ack_timeout * 1e9)
        push_lat: list[int] = []
        pull_lat: list[int] = []
        pull_sent_at: dict[tuple[int, int], int] = {}
        counts = {"push_data_sent": 0, "status_sent": 0, "push_acks": 0, "push_acks_lost": 0, "pull_data_sent": 0,
                  "pull_acks": 0, "pull_acks_lost": 0, "unexpected_acks": 0, "pull_resp_received": 0,
                  "malformed": 0, "send_errors": 0}

        def send(s: socket.socket, data: bytes) -> None:
            try:
                s.send(data)
            except OSError:  # e.g. ECONNREFUSED from an earlier datagram's ICMP error, or a full buffer
                counts["send_errors"] += 1

        def keepalive() -> None:
            nonlocal seq
            now = time.time_ns()
            for i, s in enumerate(downs):
                seq = (seq + 1) & 0xFFFF
                pull_sent_at[(i, seq)] = now
                send(s, bytes((VERSION, seq >> 8, seq & 0xFF, PULL_DATA)) + euis[i])
                counts["pull_data_sent"] += 1

        down_index = {s.fileno(): i for i, s in enumerate(downs)}

        # Acks per gateway per tick: with many gateways below one, so one recv per ready socket and the rest (if
        # any) next tick; with few fast gateways read more per socket so that the acks keep up.
        reads_per_ready = max(1, int(2 * config.rate * config.tick / g + 1))

        def read_acks(timeout: float) -> None:
            """Read what has arrived (level-triggered: what is left is reported again on the next poll)."""
            nonlocal pending
            for fd, _ in poller.poll(timeout):
                sock = by_fd[fd]
                for _ in range(reads_per_ready):
                    try:
                        data = sock.recv(2048)
                    except BlockingIOError:
                        break
                    except OSError:
                        counts["send_errors"] += 1
                        break
                    now = time.time_ns()
                    if len(data) < 4 or data[0] != VERSION:
                        counts["malformed"] += 1
                        continue
                    kind, token = data[3], data[1] << 8 | data[2]
                    if kind == PUSH_ACK:
                        sent = sent_at[token]
                        if sent == 0:
                            counts["unexpected_acks"] += 1
                            continue
                        sent_at[token] = 0
                        pending -= 1
                        if now - sent > ack_timeout_ns:
                            counts["push_acks_lost"] += 1  # late: the simulator would have given up on it
                        else:
                            counts["push_acks"] += 1
                            push_lat.append(now - sent)
                    elif kind == PULL_ACK:
                        sent = pull_sent_at.pop((down_index.get(fd, -1), token), 0)
                        if sent:
                            counts["pull_acks"] += 1
                            pull_lat.append(now - sent)
                        else:
                            counts["unexpected_acks"] += 1
                    elif kind == 0x03:
                        counts["pull_resp_received"] += 1  # no downlinks in these benchmarks; not answered
                    else:
                        counts["malformed"] += 1

        # Connect every gateway as a forwarder does at boot: PULL_DATA from its down socket, one stat from its up.
        keepalive()
        stat_body = b'{"stat":{"time":"%s","rxnb":0,"rxok":0,"rxfw":0,"ackr":0.0,"dwnb":0,"txnb":0}}' % (
            time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime()).encode())
        for i, s in enumerate(ups):
            seq = (seq + 1) & 0xFFFF
            sent_at[seq] = time.time_ns()
            pending += 1
            send(s, _PUSH_HEADERS[seq] + euis[i] + stat_body)
            counts["push_data_sent"] += 1
            counts["status_sent"] += 1

        total = round(config.rate * config.duration) if config.rate > 0 else 0
        rate = config.rate
        tick = config.tick
        time_ns = time.time_ns
        perf = time.perf_counter
        sleep = time.sleep
        push_headers = _PUSH_HEADERS
        base64 = framer.base64
        t0_ns = time.monotonic_ns()
        next_keepalive = perf() + config.keepalive if config.keepalive > 0 else float("inf")
        sent = 0
        gi = 0
        lost_overwritten = 0
        send_start_ns = time_ns()
        start = perf()
        while sent < total:
            now = perf()
            due = min(total, int((now - start) * rate) + 1)
            now_us = (time.monotonic_ns() - t0_ns) // 1000
            while sent < due:
                seq = (seq + 1) & 0xFFFF
                if sent_at[seq]:
                    lost_overwritten += 1  # 65,536 PUSH_DATA later and still no ack
                    pending -= 1
                stamp = time_ns()
                sent_at[seq] = stamp
                pending += 1
                fcnt = fcnts[gi]
                fcnts[gi] = fcnt + 1
                data = push_headers[seq] + templates[gi][fcnt % variants] % (
                    (tmst_starts[gi] + now_us) & 0xFFFFFFFF, base64(dev_addrs[gi], fcnt, stamp))
                try:
                    ups[gi].send(data)
                except OSError:
                    counts["send_errors"] += 1
                gi = gi + 1 if gi + 1 < g else 0
                sent += 1
            read_acks(0)
            if now >= next_keepalive:
                keepalive()
                next_keepalive = now + config.keepalive
            delay = start + (sent + max(1.0, rate * tick) - 1) / rate - perf()
            if delay > 0 and sent < total:
                sleep(delay)
        elapsed = perf() - start
        counts["push_data_sent"] += sent

        # Drain: wait (bounded) until every PUSH_DATA and PULL_DATA has its ack.
        drain_until = perf() + config.drain
        while perf() < drain_until and (pending or pull_sent_at):
            read_acks(min(0.01, max(0.0, drain_until - perf())))
        counts["push_acks_lost"] += pending + lost_overwritten
        counts["pull_acks_lost"] += len(pull_sent_at)
    finally:
        for s in by_fd.values():
            s.close()
        poller.close()
    cpu = _cpu_seconds() - cpu_start
    return {
        "sender": "lean",
        "address": f"{config.address[0]}:{config.address[1]}",
        "gateways": g,
        "target_rate": config.rate,
        "uplinks_sent": sent,
        "uplink_seconds": round(elapsed, 3),
        "achieved_rate": round(sent / elapsed, 1) if elapsed > 0 else 0.0,
        "send_start_unix_ns": send_start_ns,
        **counts,
        "push_ack_latency_ms": _latency_ms(push_lat),
        "pull_ack_latency_ms": _latency_ms(pull_lat),
        "cpu_seconds": round(cpu, 4),
        "cpu_us_per_uplink": round(cpu / sent * 1e6, 2) if sent else None,
    }


# --- command line ---------------------------------------------------------------------------------------------


def _serve() -> int:
    """One JSON config per stdin line, one JSON summary (or {"error": ...}) per stdout line, until EOF."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            summary = run(LeanConfig.from_json(json.loads(line)))
        except (ValueError, TypeError, OSError) as exc:
            summary = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(summary) + "\n")
        sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--serve", action="store_true", help="read one JSON config per stdin line (for uplink.py)")
    p.add_argument("--address", default="127.0.0.1:1700", help="the daemon's UDP address, HOST:PORT")
    p.add_argument("--gateways", type=int, default=100)
    p.add_argument("--rate", type=float, default=1000.0, help="uplinks per second, all gateways together")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of uplinks")
    p.add_argument("--eui-base", default="0016c001ff000000", help="EUI of gateway 0 (hex); gateway i gets base + i")
    p.add_argument("--spreading-factors", default="7,8,9,10", help="used in turn, per gateway")
    p.add_argument("--payload-size", type=int, default=12, help="FRMPayload bytes (8..222; the first 8: send stamp)")
    p.add_argument("--tick", type=float, default=0.002, help="seconds between batches")
    p.add_argument("--ack-timeout", type=float, default=2.0, help="an ack later than this counts as lost")
    p.add_argument("--drain", type=float, default=0.5, help="seconds to wait for outstanding acks at the end")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--real-mic", action="store_true", help="compute each frame's AES-CMAC MIC (2-3 µs per uplink)")
    args = p.parse_args(argv)
    if args.serve:
        return _serve()
    try:
        config = LeanConfig.from_json({
            "address": parse_address(args.address), "gateways": args.gateways, "rate": args.rate,
            "duration": args.duration, "eui_base": args.eui_base, "payload_size": args.payload_size,
            "spreading_factors": [int(x) for x in args.spreading_factors.split(",") if x], "tick": args.tick,
            "ack_timeout": args.ack_timeout, "drain": args.drain, "seed": args.seed,
            "real_mic": args.real_mic,
        })
    except ValueError as exc:
        print(f"lean_uplinks: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(run(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
