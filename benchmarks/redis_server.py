"""A redis-server of the benchmarks' own: Debian's `redis-server` on a free loopback port, stopped at the end.

The benchmarks measure the daemon against a real Redis, as it runs in production, never a mock. They do not import
from tests/ (which has its own starter); this one is just as small and adds what a benchmark needs: a CPU pin, so
that Redis shares the auxiliary core with the stand-in and the simulator, not the daemon's.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """`start()`, then `url` for `gatewayserver run --redis-url` and `proc.pid` for CPU accounting; `close()`."""

    def __init__(self, cpu: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("benchmark: redis-server is needed for --redis (Debian: apt-get install redis-server)")
        self.binary = binary
        self.cpu = cpu
        self.port = _free_port()
        # A password as in production: every connection the daemon opens authenticates first.
        self.password = secrets.token_hex(16)
        self.dir = tempfile.mkdtemp(prefix="gs-bench-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        cpu = self.cpu
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.password,
             "--save", "", "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise SystemExit(f"benchmark: redis-server exited at start: {err.strip()}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.close()
        raise SystemExit(f"benchmark: redis-server did not answer on port {self.port} within {timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                reply = b""
                while b"PONG" not in reply and b"-" not in reply:
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    reply += chunk
                return b"+PONG" in reply
        except OSError:
            return False

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


__all__ = ["RedisServer"]
