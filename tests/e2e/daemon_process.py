"""The daemon as the operator runs it: `python -m gatewayserver run` in a child process, its log captured.

For tests about what reaches the log (everything the process writes to stderr, including grpc's C core and
aiohttp, not only our loggers) and about clients that must survive a daemon restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from gatewayserver.api.keys import create_key

from e2e.harness import LoopbackPorts


def log_records(text: str, msg: str) -> list[dict[str, Any]]:
    """The JSON log lines (`--log-format json`) of `text` whose message starts with `msg`."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line of grpc's C core, say, that happens to start with a brace
            if str(record.get("msg", "")).startswith(msg):
                out.append(record)
    return out


class DaemonProcess(LoopbackPorts):
    """Start with `start()`; `restart()` stops it with SIGTERM and starts it again on the same ports."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.workdir = workdir
        self.keys_file = str(workdir / "keys.json")
        self.admin_key, self.admin = create_key(self.keys_file, "admin", ["RIGHT_ALL"])
        super().__init__()
        self.log_path = workdir / "daemon.log"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> DaemonProcess:
        argv = [
            sys.executable, "-m", "gatewayserver", "run",
            "--udp-listen", f"127.0.0.1:{self.udp_port}",
            "--grpc-listen", f"127.0.0.1:{self.grpc_port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--keys-file", self.keys_file,
            "--uplink-output", os.devnull,
            *self.extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=self.workdir
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.http + "/healthz", timeout=2.0) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"daemon not healthy in {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def logged(self, msg: str) -> list[dict[str, Any]]:
        """The JSON log lines whose message starts with `msg` (the daemon runs with `--log-format json`)."""
        return log_records(self.log(), msg)

    def stop(self, timeout: float = 30.0) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
