"""Shared helpers for tests/deploy: locating tools, free ports, and a real daemon in a subprocess.

No conftest.py on purpose: other test directories have none either, and two rootless conftest modules would
collide in pytest's default import mode. Test modules import what they need from here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from free_ports import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """A missing tool fails in CI (where .ci/run installs it) and skips on a developer machine."""
    message = f"{what} is not available"
    if in_ci():
        pytest.fail(message + " (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}`")
    assert path is not None
    return path


def http_get(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_error!r}")


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    udp_port: int
    grpc_port: int
    http_port: int
    workdir: Path
    log: Path
    argv: list[str] = field(default_factory=list)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def metrics_text(self) -> str:
        status, body = http_get(self.http + "/metrics")
        assert status == 200, f"/metrics answered {status}"
        return body.decode()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def ssl_get(port: int) -> bool:
    """Whether an HTTPS listener on loopback serves the daemon's /metrics (self-signed: not verified)."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=1.0, context=context) as response:
        return response.status == 200 and b"gs_gateways_connected" in response.read()


def _serves_metrics(daemon: Daemon) -> bool:
    # The UDP frontend's gauge shows the core is loaded, not only an early HTTP listener.
    status, body = http_get(daemon.http + "/metrics", timeout=1.0)
    return status == 200 and b"gs_gateways_connected" in body


def start_daemon(workdir: Path, *, prefix: list[str] | None = None, extra: list[str] | None = None,
                 timeout: float = 30.0, ready: Callable[[Daemon], bool] = _serves_metrics) -> Daemon:
    """`gatewayserver run` on loopback with free ports, waiting until /metrics answers.

    Free ports are found by binding port 0 and closing it, so another process may take one in between: a start
    that dies early is retried with new ports.
    """
    last = ""
    for _attempt in range(3):
        udp, grpc_port, http_port = free_port(socket.SOCK_DGRAM), free_port(), free_port()
        argv = [*(prefix or []), sys.executable, "-m", "gatewayserver", "run",
                "--udp-listen", f"127.0.0.1:{udp}",
                "--grpc-listen", f"127.0.0.1:{grpc_port}",
                "--http-listen", f"127.0.0.1:{http_port}",
                "--uplink-output", str(workdir / "uplinks.jsonl"),
                *(extra or [])]
        env = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
        env["PYTHONUNBUFFERED"] = "1"
        log = workdir / f"daemon-{http_port}.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        daemon = Daemon(process, udp, grpc_port, http_port, workdir, log, argv)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if ready(daemon):
                    return daemon
            except OSError:
                pass
            time.sleep(0.1)
        if process.poll() is None:
            daemon.stop()
            raise AssertionError(f"daemon did not serve /metrics within {timeout}s:\n{daemon.log_text()}")
        last = daemon.log_text()
        if "address already in use" not in last.lower():
            break
    raise AssertionError(f"daemon exited early:\n{last}")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start_daemon(tmp_path_factory.mktemp("daemon"))
    try:
        yield running
    finally:
        running.stop()


# --- Semtech UDP, just enough to make a gateway connect (tests must not depend on the simulator's internals).

def pull_data(eui: bytes, token: int = 0x1234, version: int = 2) -> bytes:
    return bytes([version]) + token.to_bytes(2, "big") + b"\x02" + eui


def push_stat(eui: bytes, token: int = 0x4321, version: int = 2) -> bytes:
    body = b'{"stat":{"time":"2026-11-22 03:09:23 GMT","rxnb":0,"rxok":0,"rxfw":0,"ackr":100.0,"dwnb":0,"txnb":0}}'
    return bytes([version]) + token.to_bytes(2, "big") + b"\x00" + eui + body


def exchange(port: int, datagram: bytes, timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(datagram, ("127.0.0.1", port))
        reply, _ = sock.recvfrom(65535)
        return reply


# --- Metric names in PromQL and in the exposition format.

_PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
                    "offset", "bool", "inf", "nan", "atan2"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (Grafana's `$variables` allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", "1m", text)  # Grafana variables ($__rate_interval, ${instance})
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def exported_metric_names(exposition: str) -> set[str]:
    """Every name a query may use against this /metrics output, including families without samples yet."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            names.add(name)
            if kind.strip() == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count", name + "_created"})
            elif kind.strip() == "summary":
                names.update({name + "_sum", name + "_count", name + "_created"})
            elif kind.strip() == "counter":
                base = name.removesuffix("_total")
                names.update({base + "_total", base + "_created"})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


# --- The build context a container engine sends, as .dockerignore shapes it.

def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """One pattern as moby/patternmatcher compiles it: `**` spans directories, `*` and `?` stop at `/`."""
    out = "^"
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
            out += ".*" if index >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out += re.escape(pattern[index])
        elif char in "[]":
            out += char
        else:
            out += re.escape(char)
        index += 1
    return re.compile(out + "$")


def read_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per line, as `docker build` reads the file: comments, `!`, cleaned, no leading `/`."""
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/")
        if line and line != ".":
            patterns.append((exception, _dockerignore_regex(line)))
    return patterns


def dockerignored(relpath: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the engine leaves `relpath` out: the last pattern matching the path or one of its parents wins."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for exception, regex in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not exception
    return excluded


def build_context(root: Path) -> dict[str, int]:
    """relative path -> size of every file `docker build root` would send, honouring root/.dockerignore."""
    ignore = root / ".dockerignore"
    patterns = read_dockerignore(ignore) if ignore.exists() else []
    files: dict[str, int] = {}
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(directory) / name
            relpath = full.relative_to(root).as_posix()
            if not dockerignored(relpath, patterns) and not full.is_symlink():
                files[relpath] = full.stat().st_size
    return files


# --- systemd unit files.

def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values in order (systemd keys may repeat; an empty assignment resets the list)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections
