"""`gatewayserver events subscribe` as a subprocess against a daemon subprocess fed real UDP uplinks."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_process import DaemonProcess

from gatewayserver.api.keys import create_key
from harness import Forwarder, data_frame, rxpk

EUI = bytes.fromhex("AA555A0000000101")
GATEWAY_ID = "eui-aa555a0000000101"
WAIT = 30.0  # generous: a loaded 2-core machine


class Cli:
    """The command in a child process; its stdout and stderr lines arrive on queues."""

    def __init__(self, *args: str, api_key: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        if api_key is not None:
            env["GS_API_KEY"] = api_key
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gatewayserver", "events", "subscribe", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.err_lines: list[str] = []
        for stream, target in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, target), daemon=True).start()

    @staticmethod
    def _pump(stream: object, target: queue.Queue[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            target.put(line.rstrip("\n"))

    def line(self, timeout: float = WAIT) -> str:
        return self.out.get(timeout=timeout)

    def wait_err(self, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.err.get(timeout=max(0.1, deadline - time.monotonic()))
            self.err_lines.append(line)
            if text in line:
                return line

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path).start()
    try:
        yield process
    finally:
        process.stop()


def _uplinks(daemon: DaemonProcess, fcnts: range) -> None:
    forwarder = Forwarder(daemon.udp_address, EUI)
    try:
        for fcnt in fcnts:
            forwarder.push({"rxpk": [rxpk(data_frame(fcnt=fcnt, payload=bytes(10)))]})
    finally:
        forwarder.close()


def test_prints_one_readable_line_per_event_and_exits_0_on_sigint(daemon: DaemonProcess) -> None:
    cli = Cli("--gateway-id", GATEWAY_ID, "--names", r"gs\.up\.receive", "--address", daemon.http,
              api_key=daemon.admin_key)
    try:
        cli.wait_err("connected to")
        _uplinks(daemon, range(1, 4))
        lines = [cli.line() for _ in range(3)]
        print("\n".join(lines))
        for line in lines:
            stamp, name, gateway, summary = line.split("  ", 3)
            assert stamp.endswith("Z") and "T" in stamp
            assert name == "gs.up.receive"
            assert gateway == GATEWAY_ID
            assert "868.1MHz SF7BW125" in summary
            assert "rssi=-40" in summary
            assert "23 bytes" in summary  # MHDR, DevAddr, FCtrl, FCnt, FPort, 10 bytes, MIC
    finally:
        assert cli.stop() == 0
    assert cli.out.empty()


def test_json_lines_and_reconnect_after_a_daemon_restart(daemon: DaemonProcess) -> None:
    cli = Cli("--gateway-id", GATEWAY_ID, "--names", "gs.up.receive", "--json", "--address", daemon.http,
              "--api-key", daemon.admin_key)
    try:
        cli.wait_err("connected to")
        _uplinks(daemon, range(1, 3))
        before = [json.loads(cli.line()) for _ in range(2)]
        daemon.stop()
        cli.wait_err("connection refused")  # visible while the daemon is away; still running
        assert cli.process.poll() is None
        daemon.start()
        cli.wait_err("connected to")
        _uplinks(daemon, range(3, 5))
        after = [json.loads(cli.line()) for _ in range(2)]
    finally:
        assert cli.stop() == 0
    events = before + after
    assert [e["name"] for e in events] == ["gs.up.receive"] * 4
    assert len({e["unique_id"] for e in events}) == 4
    assert all(e["identifiers"][0]["gateway_ids"]["gateway_id"] == GATEWAY_ID for e in events)
    # FCnt 1..4 in order, each once: nothing lost, nothing repeated across the reconnect.
    raw = [e["data"]["message"]["raw_payload"] for e in events]
    import base64

    fcnts = [int.from_bytes(base64.b64decode(r)[6:8], "little") for r in raw]
    assert fcnts == [1, 2, 3, 4]
    assert cli.out.empty()


def test_tail_replays_history_once(daemon: DaemonProcess) -> None:
    _uplinks(daemon, range(1, 4))
    time.sleep(0.5)  # let the daemon publish the receive events of the last acked uplink
    cli = Cli("--gateway-id", GATEWAY_ID, "--names", "gs.up.receive", "--tail", "2", "--json",
              "--address", daemon.http, api_key=daemon.admin_key)
    try:
        replayed = [json.loads(cli.line()) for _ in range(2)]
        _uplinks(daemon, range(4, 5))
        live = json.loads(cli.line())
    finally:
        assert cli.stop() == 0
    assert len({e["unique_id"] for e in [*replayed, live]}) == 3


def _wait_key_loaded(daemon: DaemonProcess, key: str, timeout: float = 30.0) -> None:
    """The daemon re-reads the keys file when it changes; on a loaded machine a key added a moment ago may not be
    known yet, and the CLI would (rightly) report 401 instead of the 403 under test."""
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(
            daemon.http + "/api/v3/gs/gateways/" + GATEWAY_ID + "/connection/stats",
            headers={"Authorization": "Bearer " + key},
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
            return
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                return
        assert time.monotonic() < deadline, "the daemon never loaded the new key"
        time.sleep(0.1)


def test_bad_key_is_one_clear_line(daemon: DaemonProcess, tmp_path: Path) -> None:
    no_rights, _ = create_key(daemon.keys_file, "user", ["RIGHT_USER_INFO"])
    _wait_key_loaded(daemon, no_rights)
    for key, status in ((daemon.admin_key[:-4] + "AAAA", "401"), (no_rights, "403")):
        result = subprocess.run(
            [sys.executable, "-m", "gatewayserver", "events", "subscribe", "--gateway-id", GATEWAY_ID,
             "--address", daemon.http, "--api-key", key],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        print(result.stderr)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"HTTP {status}" in lines[0] and "API key" in lines[0]
        assert "Traceback" not in result.stderr


def test_bad_flags_exit_2() -> None:
    for args in (["--tail", "-1"], ["--after", "yesterday"], ["--address", "localhost:1885", "--api-key", "x"], []):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        result = subprocess.run(
            [sys.executable, "-m", "gatewayserver", "events", "subscribe", *args],
            capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_unreachable_daemon_keeps_retrying_with_a_visible_line() -> None:
    from harness import free_tcp_port

    cli = Cli("--gateway-id", GATEWAY_ID, "--address", f"http://127.0.0.1:{free_tcp_port()}", api_key="x" * 10)
    try:
        first = cli.wait_err("connection refused")
        second = cli.wait_err("connection refused")
        assert "retrying" in first or "reconnecting" in first
        assert second
        assert cli.process.poll() is None
    finally:
        assert cli.stop() == 0


def test_without_gateway_id_it_follows_the_connected_gateways(daemon: DaemonProcess) -> None:
    _uplinks(daemon, range(1, 2))  # the gateway is connected before the command starts
    cli = Cli("--names", "gs.up.receive", "--address", daemon.http, api_key=daemon.admin_key)
    try:
        assert GATEWAY_ID in cli.wait_err("connected to")
        _uplinks(daemon, range(2, 3))
        line = cli.line()
    finally:
        assert cli.stop() == 0
    assert line.split("  ")[1:3] == ["gs.up.receive", GATEWAY_ID]
