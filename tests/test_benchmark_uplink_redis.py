"""benchmarks/uplink.py --redis: its flags parse, and its own redis-server starter really runs one (password set)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _starter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_redis_server", BENCHMARKS / "redis_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _command(port: int, *lines: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall("".join(line + "\r\n" for line in lines).encode())
        reply = b""
        while reply.count(b"\r\n") < len(lines):
            chunk = sock.recv(256)
            if not chunk:
                break
            reply += chunk
        return reply


def test_uplink_benchmark_has_the_comparison_flags() -> None:
    """Its Redis comparison, and the workers' (`test_benchmark_uplink_workers.py`)."""
    result = subprocess.run([sys.executable, str(BENCHMARKS / "uplink.py"), "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--redis ", "--redis-rate", "--redis-rounds", "--workers-repeat", "--standin-engine",
                 "--workers-rate"):
        assert flag in result.stdout, flag


def test_the_benchmark_starts_its_own_redis_with_a_password_and_stops_it() -> None:
    server = _starter().RedisServer().start()
    try:
        assert server.url == f"redis://:{server.password}@127.0.0.1:{server.port}/0"
        assert _command(server.port, "PING").startswith(b"-NOAUTH"), "a password, as in production"
        assert _command(server.port, f"AUTH {server.password}", "PING") == b"+OK\r\n+PONG\r\n"
        assert server.ping()
    finally:
        server.close()
    assert server.proc.poll() is not None, "stopped"
    assert not server.ping()
