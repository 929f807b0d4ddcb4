"""`gatewayserver run --redis-url` against a real redis-server that is stopped and started again under it: one log
line each way, `/readyz` says "degraded" (still 200), `gs_redis_up` follows, the password never reaches the log,
and the instance's own gateways are served throughout."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from e2e.daemon_process import DaemonProcess
from e2e.harness import Forwarder, data_frame, rxpk, wait_for
from redis_support import RedisServer

CLUSTER_KEY = "ab" * 16
TOKEN_KEY = "cd" * 16


def wait(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    try:
        return wait_for(predicate, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}") from None


def _get(daemon: DaemonProcess, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(daemon.http + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _ready(daemon: DaemonProcess) -> tuple[int, dict[str, Any]]:
    status, body = _get(daemon, "/readyz")
    return status, json.loads(body)


def _redis_up(daemon: DaemonProcess) -> float | None:
    for line in _get(daemon, "/metrics")[1].decode().splitlines():
        if line.startswith("gs_redis_up "):
            return float(line.split()[1])
    return None


def test_redis_outage_is_logged_once_each_way_and_degrades_readiness(tmp_path: Path, redis_server: RedisServer) -> None:
    daemon = DaemonProcess(
        tmp_path, "--log-format", "json", "--redis-url", redis_server.url, "--cluster-key", CLUSTER_KEY,
        "--uplink-token-key", TOKEN_KEY, "--instance-id", "gs-a",
    ).start()
    gateway = Forwarder(daemon.udp_address, bytes.fromhex("00000000000000A1"))
    try:
        started = daemon.logged("gateway server started")
        assert started and started[0]["instance"] == "gs-a"
        assert "<redacted>@127.0.0.1" in started[0]["redis"]
        status, body = _ready(daemon)
        assert status == 200 and body["ready"] and body["degraded"] == []
        assert _redis_up(daemon) == 1.0

        redis_server.stop()
        status, body = wait(lambda: (r := _ready(daemon))[1]["degraded"] and r, "degraded readiness")
        assert status == 200 and body["ready"]  # degraded, not withdrawn from the load balancer
        assert body["degraded"][0]["part"] == "redis" and body["degraded"][0]["reason"]
        assert _redis_up(daemon) == 0.0
        for fcnt in range(5):  # its own gateway is served as before
            gateway.push({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=fcnt)]})
        wait(lambda: len(daemon.logged("Redis unreachable")) == 1, "one unreachable line")

        redis_server.start()
        wait(lambda: _ready(daemon)[1]["degraded"] == [], "recovered readiness", timeout=30)
        assert _redis_up(daemon) == 1.0
        wait(lambda: daemon.logged("Redis reachable again"), "one recovery line")
        assert len(daemon.logged("Redis unreachable")) == 1
        assert len(daemon.logged("Redis reachable again")) == 1
        gateway.push({"rxpk": [rxpk(data_frame(fcnt=9), tmst=9)]})
    finally:
        assert daemon.stop() == 0
    assert redis_server.password not in daemon.log()
