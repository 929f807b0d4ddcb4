"""`gatewayserver run` in a subprocess against a real grpc.aio Network Server stand-in that is stopped, restarted,
hangs and fails: the operator gets one log line per transition, `/readyz` follows the upstream, stale uplinks are
dropped and counted instead of delivered late, and the shutdown line counts exactly what never arrived.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from controllable_ns import ControllableNs
from harness import Forwarder, data_frame, free_tcp_port, free_udp_port, rxpk

MAX_AGE_S = 2.0
DEADLINE_S = 1.0  # a freed call slot (deadline, backoff, retry) takes > 2 s: all 30 sends land first


class NsThread:
    """The stand-in on its own event loop thread, so the test can drive it while blocking on sockets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ns = ControllableNs()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> None:
        self.call(self.ns.start(self.port))

    def stop(self) -> None:
        self.call(self.ns.stop())

    def set_mode(self, mode: Any) -> None:
        self.loop.call_soon_threadsafe(self.ns.set_mode, mode)

    def close(self) -> None:
        self.set_mode("ok")
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class DaemonProcess:
    def __init__(self, tmp_path: Path, ns_port: int, *flags: str) -> None:
        self.udp_port, self.http_port = free_udp_port(), free_tcp_port()
        self.ns_address = f"127.0.0.1:{ns_port}"
        self.log_path = tmp_path / f"daemon-{self.http_port}.log"
        argv = [sys.executable, "-m", "gatewayserver", "run", "--log-format", "json",
                "--udp-listen", f"127.0.0.1:{self.udp_port}", "--http-listen", f"127.0.0.1:{self.http_port}",
                "--grpc-listen", f"127.0.0.1:{free_tcp_port()}", "--ns-address", self.ns_address, *flags]
        self.log_file = open(self.log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log_file,
                                        stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
        wait(lambda: any(r.get("msg") == "gateway server started" for r in self.records()), "daemon start")

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def logged(self, msg: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("msg", "").startswith(msg)]

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metric(self, name: str, **labels: str) -> float:
        _, body = self.get("/metrics")
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in body.decode().splitlines():
            if line.startswith(want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def dropped(self) -> dict[str, float]:
        return {reason: self.metric("gs_uplinks_dropped_total", reason=reason)
                for reason in ("stale", "queue_full", "upstream_error")}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log_file.close()
        return self.process.returncode


def wait(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Gateway:
    def __init__(self, daemon: DaemonProcess) -> None:
        self.fwd = Forwarder(("127.0.0.1", daemon.udp_port), bytes.fromhex("00000000000000E1"))
        self.fwd.up.settimeout(10)
        self.sent = 0

    def send(self, fcnt: int) -> None:
        self.fwd.push({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=fcnt)]})  # acked whatever the upstream does
        self.sent += 1
        time.sleep(0.003)  # stay under the flood guard (10 datagrams per 10 ms)


def _ready(daemon: DaemonProcess) -> tuple[int, dict[str, Any]]:
    status, body = daemon.get("/readyz")
    return status, json.loads(body)


def test_network_server_stopped_restarted_hanging_and_refusing(tmp_path: Path) -> None:
    ns = NsThread(free_tcp_port())
    ns.start()
    daemon = DaemonProcess(tmp_path, ns.port, "--upstream-max-in-flight", "2", "--upstream-queue-size", "20",
                           "--upstream-deadline", f"{DEADLINE_S}s", "--upstream-retries", "1",
                           "--upstream-max-age", f"{MAX_AGE_S}s")
    gateway = Gateway(daemon)
    fcnt = 0
    try:
        # Healthy: delivered, ready, up.
        for fcnt in range(1, 4):
            gateway.send(fcnt)
        wait(lambda: len(ns.ns.received) == 3, "first uplinks")
        assert _ready(daemon) == (200, {"ready": True, "failing": []})
        assert daemon.metric("gs_upstream_up", address=daemon.ns_address) == 1.0
        assert daemon.get("/healthz")[0] == 200

        # Stopped: UNAVAILABLE; one "failing" line, /readyz 503 naming the address and the code.
        ns.stop()
        fcnt = 100
        while not daemon.logged("Network Server failing"):
            fcnt += 1
            gateway.send(fcnt)
            time.sleep(0.2)
            assert fcnt < 200, "no failing line"
        status, body = wait(lambda: (r := _ready(daemon))[0] == 503 and r, "readyz 503")
        [part] = body["failing"]
        assert body["ready"] is False
        assert part["part"] == "upstream" and part["address"] == daemon.ns_address
        assert part["code"] == "UNAVAILABLE" and part["failing_since"]
        assert daemon.metric("gs_upstream_up", address=daemon.ns_address) == 0.0
        assert daemon.get("/healthz")[0] == 200  # liveness is not readiness

        # Restarted on the same port: the first delivered uplink recovers it; one "recovered" line.
        ns.start()
        fcnt = 1000
        while not ns.ns.received or ns.ns.fcnts()[-1] < 1000:
            fcnt += 1
            gateway.send(fcnt)
            time.sleep(0.2)
            assert fcnt < 1200, "forwarding did not resume"
        wait(lambda: daemon.logged("Network Server recovered"), "recovered line")
        assert wait(lambda: _ready(daemon)[0] == 200 and _ready(daemon), "readyz 200")[1]["failing"] == []

        # Hanging: calls hit their deadline; the queue fills while 2 calls hang. The oldest make room for the
        # newest, and those older than max age are dropped as stale instead of being delivered late.
        before = daemon.dropped()
        ns.set_mode("hang")
        for fcnt in range(2000, 2030):
            gateway.send(fcnt)
        wait(lambda: daemon.dropped()["stale"] > before["stale"], "stale drops", timeout=60)
        wait(lambda: len(daemon.logged("Network Server failing")) == 2, "second failing line")
        assert _ready(daemon)[1]["failing"][0]["code"] == "DEADLINE_EXCEEDED"
        ns.set_mode("ok")
        fcnt = 3000
        while not ns.ns.received or ns.ns.fcnts()[-1] < 3000:
            fcnt += 1
            gateway.send(fcnt)
            time.sleep(0.2)
            assert fcnt < 3200, "forwarding did not resume after the hang"
        fresh = list(range(4000, 4010))
        for fcnt in fresh:
            gateway.send(fcnt)
        wait(lambda: set(fresh) <= set(ns.ns.fcnts()), "fresh uplinks after the hang")
        wait(lambda: len(daemon.logged("Network Server recovered")) == 2, "second recovered line")
        after = daemon.dropped()
        hang_drops = {reason: after[reason] - before[reason] for reason in after}
        print("drops while hanging:", hang_drops)
        assert hang_drops["queue_full"] == 30 - 2 - 20 == 8  # 2 in flight, 20 queued, the 8 oldest made room
        assert hang_drops["stale"] > 0
        # Nothing reached the Network Server later than max age + one call deadline (+1.5 s scheduling slack).
        oldest = max(ns.ns.arrival_ages_ns) / 1e9
        print(f"oldest uplink at the Network Server: {oldest:.2f}s")
        assert oldest < MAX_AGE_S + DEADLINE_S + 1.5

        # Refusing (credentials): not retried, failing with the code and a hint at the keys; then back.
        ns.set_mode(grpc.StatusCode.PERMISSION_DENIED)
        fcnt = 5000
        while len(daemon.logged("Network Server failing")) < 3:
            fcnt += 1
            gateway.send(fcnt)
            time.sleep(0.1)
            assert fcnt < 5100, "no third failing line"
        ns.set_mode("ok")
        fcnt = 6000
        while len(daemon.logged("Network Server recovered")) < 3:
            fcnt += 1
            gateway.send(fcnt)
            time.sleep(0.1)
            assert fcnt < 6100, "no third recovered line"
        assert _ready(daemon)[0] == 200

        # Every uplink is accounted for: forwarded or dropped for a named reason.
        wait(lambda: daemon.metric("gs_upstream_in_flight") == 0 and daemon.metric("gs_upstream_queue_depth") == 0,
             "idle upstream")
        received = daemon.metric("gs_uplinks_received_total")
        assert received == gateway.sent
        assert daemon.metric("gs_uplinks_forwarded_total") + sum(daemon.dropped().values()) == received
    finally:
        gateway.fwd.close()
        code = daemon.stop()
        ns.close()
    assert code == 0
    failing = daemon.logged("Network Server failing")
    recovered = daemon.logged("Network Server recovered")
    for record in failing + recovered:
        print(json.dumps(record))
    assert [r["code"] for r in failing] == ["UNAVAILABLE", "DEADLINE_EXCEEDED", "PERMISSION_DENIED"]
    assert {r["address"] for r in failing + recovered} == {daemon.ns_address}
    assert "reachable" in failing[0]["check"] and "hung" in failing[1]["check"]
    assert "cluster_key" in failing[2]["check"]
    assert len(recovered) == 3
    # Counted from the first failed call on (what was evicted before the first deadline is not "meanwhile").
    assert all(r["uplinks_dropped"] >= 1 for r in recovered)
    assert all(r["level"] == "error" for r in failing) and all(r["level"] == "warning" for r in recovered)


def test_shutdown_reports_exactly_the_uplinks_that_never_arrived(tmp_path: Path) -> None:
    """The stand-in answers 5 uplinks, then hangs: 4 calls hang in flight, the rest wait in the queue."""
    ns = NsThread(free_tcp_port())
    ns.ns.answer_first = 5
    ns.start()
    daemon = DaemonProcess(tmp_path, ns.port, "--upstream-max-in-flight", "4", "--upstream-deadline", "60s",
                           "--upstream-retries", "0", "--upstream-max-age", "0", "--shutdown-timeout", "0.5s")
    gateway = Gateway(daemon)
    try:
        for fcnt in range(1, 31):
            gateway.send(fcnt)
        wait(lambda: ns.ns.calls == 5 + 4 and daemon.metric("gs_upstream_queue_depth") == 30 - 9, "hung calls")
    finally:
        gateway.fwd.close()
        code = daemon.stop()
        arrived = len(ns.ns.received)
        ns.close()
    assert code == 0
    [line] = daemon.logged("uplinks abandoned at shutdown")
    print(json.dumps(line))
    assert arrived == 5
    assert line["count"] == 30 - arrived == 25
    assert (line["queued"], line["in_flight"], line["retrying"], line["dropped_while_stopping"]) == (21, 4, 0, 0)
