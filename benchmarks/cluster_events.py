#!/usr/bin/env python3
"""Events through Redis: events/s from instance A to a stream subscriber on instance B, and the daemon CPU an
event costs with `--redis-url` against without, in the same run.

What it does (loopback only; every process is stopped at the end):

1. Starts a redis-server (Debian's) on a free port, instance A and instance B with `--redis-url`, and instance P
   (plain: no Redis) as the baseline; all with the JSON-lines sink to /dev/null (no Network Server needed).
2. A subscriber process holds `POST /api/v3/events` on B for the load's gateways and counts `gs.up.receive`
   events, with the delay from the event's time (A's receipt of the datagram) to its arrival.
3. For each rate, alternately (P, then A, per round): a sender process pushes uplinks (PUSH_DATA, one rxpk each,
   10 gateways) at the rate for `--seconds`; the daemon's CPU time (utime+stime from /proc) over the phase is
   divided by the events it published (`gs_events_published_total`). In A's phases the subscriber on B counts
   what arrived; B's CPU per received event is reported too.

    .venv/bin/python benchmarks/cluster_events.py                      # 1,000 and 3,000 uplinks/s, 10 s
    .venv/bin/python benchmarks/cluster_events.py --rates 2000 --seconds 5 --rounds 1
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from redis_server import RedisServer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GATEWAYS = [bytes.fromhex(f"00000000000000{i:02x}") for i in range(0xC0, 0xCA)]
CLUSTER_KEY = "ab" * 16
TOKEN_KEY = "cd" * 16
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine: a phase measured while other work ran says so."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Instance:
    def __init__(self, workdir: Path, name: str, redis_url: str | None) -> None:
        from gatewayserver.api.keys import create_key

        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.keys_file = str(workdir / "keys.json")
        self.key, _ = create_key(self.keys_file, "admin", ["RIGHT_ALL"])
        self.udp = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port(socket.SOCK_STREAM)
        argv = [
            sys.executable, "-m", "gatewayserver", "run", "--udp-listen", f"127.0.0.1:{self.udp}",
            "--grpc-listen", f"127.0.0.1:{free_port(socket.SOCK_STREAM)}",
            "--http-listen", f"127.0.0.1:{self.http_port}", "--keys-file", self.keys_file,
            "--uplink-output", os.devnull, "--log-level", "warning", "--events-subscriber-buffer", "100000",
        ]
        if redis_url:
            argv += ["--redis-url", redis_url, "--cluster-key", CLUSTER_KEY, "--uplink-token-key", TOKEN_KEY,
                     "--instance-id", name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        self.log = open(workdir / "daemon.log", "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start; see {workdir}/daemon.log") from None
                time.sleep(0.1)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"{self.http}/metrics", timeout=10) as response:
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def close(self) -> None:
        stop(self.proc)
        self.log.close()


# --- sender and subscriber (separate processes, so their CPU is not the daemon's) --------------------------------


def sender_main(port: int, rate: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    payload = bytes([0x40]) + bytes(4) + b"\x00" + bytes(2) + b"\x01" + bytes(10) + bytes(4)
    tick = 0.005
    per_tick = rate * tick
    start = time.monotonic()
    sent = 0.0
    fcnt = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = min(rate * seconds, rate * elapsed + per_tick)
        while sent < due:
            eui = GATEWAYS[fcnt % len(GATEWAYS)]
            data = bytearray(payload)
            data[6:8] = (fcnt & 0xFFFF).to_bytes(2, "little")
            body = json.dumps({"rxpk": [{
                "tmst": fcnt * 1000 & 0xFFFFFFFF, "chan": 0, "rfch": 0, "freq": 868.1, "stat": 1, "modu": "LORA",
                "datr": "SF7BW125", "codr": "4/5", "rssi": -40, "lsnr": 9.5, "size": len(data),
                "data": base64.b64encode(bytes(data)).decode(),
            }]}).encode()
            try:
                sock.sendto(b"\x02" + (fcnt & 0xFFFF).to_bytes(2, "big") + b"\x00" + eui + body, ("127.0.0.1", port))
            except BlockingIOError:
                pass
            fcnt += 1
            sent += 1
        try:
            while True:
                sock.recv(64)  # the acks
        except BlockingIOError:
            pass
        time.sleep(tick)


def subscriber_main(url: str, key: str, conn: Any) -> None:
    """Reads the stream in a thread; answers each "report" with what arrived since the previous one."""
    import threading

    body = {"identifiers": [{"gateway_ids": {"gateway_id": f"eui-{e.hex()}"}} for e in GATEWAYS],
            "names": ["gs.up.receive"]}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Authorization": f"Bearer {key}"})
    lock = threading.Lock()
    state: dict[str, Any] = {"count": 0, "delays": []}
    started = threading.Event()

    def read() -> None:
        with urllib.request.urlopen(request, timeout=600) as response:
            started.set()
            for line in response:
                if not line.strip():
                    continue
                result = json.loads(line).get("result", {})
                if result.get("name") != "gs.up.receive":
                    continue
                with lock:
                    state["count"] += 1
                    if state["count"] % 10 == 0:  # a sample of delays is enough
                        state["delays"].append((time.time_ns() - _time_ns(result["time"])) / 1e6)

    threading.Thread(target=read, daemon=True).start()
    started.wait(30)
    conn.send("started")
    while conn.recv() == "report":
        with lock:
            conn.send((state["count"], state["delays"]))
            state["count"], state["delays"] = 0, []


def _time_ns(text: str) -> int:
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(text)
    return stamp.ToNanoseconds()


# --- phases --------------------------------------------------------------------------------------------------------


def phase(target: Instance, rate: int, seconds: float, also: Instance | None = None) -> dict[str, Any]:
    published_before = target.metric("gs_events_published_total")
    cpu_before = cpu_seconds(target.proc.pid)
    busy_before, total_before = machine_busy()
    also_before = cpu_seconds(also.proc.pid) if also is not None else 0.0
    sender = mp.Process(target=sender_main, args=(target.udp, rate, seconds))
    sender.start()
    sender.join()
    time.sleep(3.0)  # settle: the last batches reach Redis and the subscriber
    cpu = cpu_seconds(target.proc.pid) - cpu_before
    busy, total = machine_busy()
    events = target.metric("gs_events_published_total") - published_before
    out = {"rate": rate, "events": int(events), "cpu_s": cpu, "us_per_event": cpu / max(1, events) * 1e6,
           "machine_busy": (busy - busy_before) / max(1, total - total_before)}
    if also is not None:
        out["also_cpu_s"] = cpu_seconds(also.proc.pid) - also_before
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,3000", help="uplinks/s, comma separated (default 1000,3000)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of plain and Redis per rate")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="gs-bench-cluster-events-"))
    redis = RedisServer().start()
    instances: list[Instance] = []
    subscriber: mp.Process | None = None
    try:
        plain = Instance(workdir / "p", "gs-p", None)
        a = Instance(workdir / "a", "gs-a", redis.url)
        b = Instance(workdir / "b", "gs-b", redis.url)
        instances += [plain, a, b]
        parent, child = mp.Pipe()
        subscriber = mp.Process(target=subscriber_main, args=(f"{b.http}/api/v3/events", b.key, child), daemon=True)
        subscriber.start()
        assert parent.recv() == "started"
        log("warm-up")
        phase(plain, 200, 2.0)
        phase(a, 200, 2.0)
        parent.send("report")
        parent.recv()
        results: list[dict[str, Any]] = []
        for rate in rates:
            for round_ in range(args.rounds):
                p = phase(plain, rate, args.seconds)
                log(f"{rate}/s plain: {p['events']} events, {p['us_per_event']:.1f} µs CPU/event "
                    f"(machine {p['machine_busy']:.0%} busy)")
                r = phase(a, rate, args.seconds, also=b)
                parent.send("report")
                received, delays = parent.recv()
                r["received_on_b"] = received
                r["b_us_per_received"] = r["also_cpu_s"] / max(1, received) * 1e6
                r["delay_ms_p50"] = statistics.median(delays) if delays else None
                r["delay_ms_p99"] = sorted(delays)[int(len(delays) * 0.99)] if delays else None
                ups = r["events"] / 2  # two events per uplink: gs.up.receive and gs.up.forward
                log(
                    f"{rate}/s Redis: {r['events']} events, {r['us_per_event']:.1f} µs CPU/event on A; "
                    f"{received} gs.up.receive on B ({received / args.seconds:.0f}/s, of ~{ups:.0f} sent), "
                    f"B {r['b_us_per_received']:.1f} µs CPU/received; delay p50 {r['delay_ms_p50']} ms "
                    f"p99 {r['delay_ms_p99']} ms (machine {r['machine_busy']:.0%} busy)"
                )
                results.append({"plain": p, "redis": r, "round": round_})
        dropped = a.metric("gs_redis_events_dropped_total")
        sent = sum(r["redis"]["events"] for r in results) // 2
        received = sum(r["redis"]["received_on_b"] for r in results)
        for rate in rates:
            mine = [r for r in results if r["plain"]["rate"] == rate]
            plain_us = statistics.mean(r["plain"]["us_per_event"] for r in mine)
            redis_us = statistics.mean(r["redis"]["us_per_event"] for r in mine)
            log(f"{rate}/s: A's CPU per event {plain_us:.1f} µs without Redis, {redis_us:.1f} µs with "
                f"(+{redis_us - plain_us:.1f} µs, {redis_us / plain_us - 1:+.0%})")
        log(f"gs.up.receive: {sent} published at A in the Redis phases, {received} received on B; "
            f"A dropped {dropped:.0f} for Redis")
        print(json.dumps({"results": results, "a_redis_events_dropped": dropped, "sent": sent,
                          "received": received}, indent=1))
    finally:
        if subscriber is not None:
            subscriber.kill()
        for instance in instances:
            instance.close()
        redis.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
