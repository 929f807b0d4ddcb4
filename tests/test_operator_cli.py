"""The operator's mistakes, as the real `gatewayserver` command reports them (issue 10, items 12, 15, 16, 17, 18, 23).

Every case runs the command in a subprocess and reads what an operator would read: the exit code and stderr. The
bar is one line naming the file, flag or port and the problem, exit 2, and never a traceback.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

EPHEMERAL = ["--udp-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]
GOOD_EUI = "B827EBFFFE000001"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
    env.update(extra)
    return env


def gs(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gatewayserver", *args], capture_output=True, text=True, timeout=timeout,
        env=env or _env(),
    )


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


class Daemon:
    """`gatewayserver run` in a subprocess, its stderr read line by line by a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatewayserver", "run", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            text=True, env=env or _env(),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}; got:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        time.sleep(0.1)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=30)


def registry(path: Path, *entries: str) -> Path:
    path.write_text("gateways:\n" + "".join(entries))
    return path


def entry(eui: str = GOOD_EUI, plans: str = "frequency_plan_id: EU_863_870") -> str:
    return f"  - eui: \"{eui}\"\n    {plans}\n"


# --- item 15 (and 12): `config` validates everything `run` validates ------------------------------------------------


def _mistakes(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (arguments, text the one error line must contain)."""
    syntax = tmp / "syntax.yml"
    syntax.write_text("gateways:\n  - eui: [unclosed\n")
    unknown = registry(tmp / "unknown.yml", entry(plans="frequency_plan_id: NOT_A_PLAN"))
    mixed = registry(tmp / "mixed.yml", entry(plans="frequency_plan_ids: [EU_863_870, US_902_928_FSB_2]"))
    not_utf8 = tmp / "latin1.yml"
    not_utf8.write_bytes(b"gateways:\n  - eui: \"B827EBFFFE000001\"\n    gateway_id: caf\xe9\n")
    empty = tmp / "empty.yml"
    empty.write_text("# nothing yet\n")
    return {
        "yaml_syntax": (["--gateways", str(syntax)], "syntax.yml: invalid YAML"),
        "unknown_plan": (["--gateways", str(unknown)], "unknown frequency plan 'NOT_A_PLAN'"),
        "mixed_bands": (["--gateways", str(mixed)], "mixed.yml: gateways[0].frequency_plan_ids"),
        "missing_file": (["--gateways", str(tmp / "nope.yml")], "nope.yml: cannot read"),
        "fallback_plan": (["--frequency-plan", "EU868"], "frequency_plan: unknown plan 'EU868'"),
        "not_utf8": (["--gateways", str(not_utf8)], "latin1.yml: not UTF-8"),
        "empty_file": (["--gateways", str(empty)], "empty.yml: empty file"),
        "tls_missing": (["--http-tls-cert", str(tmp / "c.pem"), "--http-tls-key", str(tmp / "k.pem")],
                        "http_tls_cert"),
        "keys_file_dir": (["--keys-file", str(tmp)], "keys_file: " + str(tmp) + ": is a directory"),
        "redis_url_scheme": (["--redis-url", "http://127.0.0.1:6379"], "redis_url: must start with redis://"),
        "redis_no_cluster_key": (["--redis-url", "redis://127.0.0.1:6379/0"], "cluster_key: needed with redis_url"),
        "redis_no_token_key": (["--redis-url", "redis://127.0.0.1:6379/0", "--cluster-key", "ab" * 16],
                               "uplink_token_key: needed with redis_url"),
        "redis_no_advertise": (["--redis-url", "redis://127.0.0.1:6379/0", "--cluster-key", "ab" * 16,
                                "--uplink-token-key", "cd" * 16], "cluster_advertise_address: needed with redis_url"),
    }


MISTAKES = ["yaml_syntax", "unknown_plan", "mixed_bands", "missing_file", "fallback_plan", "not_utf8", "empty_file",
            "tls_missing", "keys_file_dir", "redis_url_scheme", "redis_no_cluster_key", "redis_no_token_key",
            "redis_no_advertise"]


@pytest.mark.parametrize("case", MISTAKES)
def test_config_and_run_give_the_same_verdict(tmp_path: Path, case: str) -> None:
    args, expected = _mistakes(tmp_path)[case]
    checked = gs("config", *args)
    try:
        ran = gs("run", *args, *EPHEMERAL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`run` started with a configuration `config` refused ({case})")
    for result in (checked, ran):
        lines = stderr_lines(result)
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert expected in lines[0], lines[0]
    assert stderr_lines(checked) == stderr_lines(ran)
    assert checked.stdout == ""  # nothing printed that looks like an accepted configuration


def test_config_accepts_what_run_accepts(tmp_path: Path) -> None:
    path = registry(tmp_path / "ok.yml", entry(plans="frequency_plan_ids: [EU_863_870, EU_863_870_TTN]"))
    result = gs("config", "--gateways", str(path))
    assert result.returncode == 0, result.stderr
    assert f"gateways: {path}" in result.stdout


# --- item 12: SIGHUP with a broken file keeps the old registry, one line each -----------------------------------------


def test_sighup_with_broken_files_logs_one_line_and_keeps_running(tmp_path: Path, daemons: list[Daemon]) -> None:
    path = registry(tmp_path / "gateways.yml", entry(), entry("B827EBFFFE000002"))
    daemon = Daemon("--gateways", str(path), *EPHEMERAL)
    daemons.append(daemon)
    assert "registered_gateways=2" in daemon.wait_for("gateway server started")

    path.write_bytes(b"gateways:\n  - eui: \"B827EBFFFE000003\"\n    gateway_id: \xff\xfe\n")
    daemon.proc.send_signal(signal.SIGHUP)
    line = daemon.wait_for("reload failed")
    assert f"{path}: not UTF-8" in line and "keeping the old one" in line

    path.write_text("")
    daemon.proc.send_signal(signal.SIGHUP)
    assert f"{path}: empty file" in daemon.wait_for("reload failed")

    path.write_text("gateways: []\n")  # deliberately none: accepted, with a warning
    daemon.proc.send_signal(signal.SIGHUP)
    assert "warning" in daemon.wait_for("reloaded with no gateways")

    registry(path, entry())
    daemon.proc.send_signal(signal.SIGHUP)
    assert "gateways=1" in daemon.wait_for("gateway registry reloaded")
    assert daemon.stop() == 0
    assert not [line for line in daemon.lines if "Traceback" in line or "exception" in line.lower()], daemon.lines


def test_failed_reload_keeps_the_old_entries(tmp_path: Path) -> None:
    from gatewayserver.registry import GatewayRegistry, RegistryError

    path = registry(tmp_path / "gateways.yml", entry(), entry("B827EBFFFE000002"))
    reg = GatewayRegistry.from_file(path)
    for broken in (b"", b"\n# only a comment\n", b"gateways:\n  - eui: \"\xff\"\n", b"gateways: [\n"):
        path.write_bytes(broken)
        with pytest.raises(RegistryError, match=str(path)):
            reg.reload()
        assert len(reg) == 2 and reg.by_id("eui-b827ebfffe000002") is not None


# --- item 16: ports in use ----------------------------------------------------------------------------------------


def _occupied(kind: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    if reuse_port:  # another program that also shares its port: our workers' SO_REUSEPORT must not join it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if kind == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    ("option", "kind"),
    [("udp-listen", socket.SOCK_DGRAM), ("grpc-listen", socket.SOCK_STREAM), ("http-listen", socket.SOCK_STREAM)],
)
def test_port_in_use_is_one_line_exit_2(option: str, kind: int, workers: int) -> None:
    holder = _occupied(kind, reuse_port=workers > 1)
    port = holder.getsockname()[1]
    try:
        args = list(EPHEMERAL)
        args[args.index(f"--{option}") + 1] = f"127.0.0.1:{port}"
        result = gs("run", *args, "--workers", str(workers))
    finally:
        holder.close()
    lines = stderr_lines(result)
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr  # no traceback, no grpc core complaint, no "Event loop is closed"
    line = lines[0]
    assert f"127.0.0.1:{port}" in line and "address already in use" in line, line
    assert f"--{option}" in line and "another process" in line, line
    print(line)


# --- item 17: keys commands and the daemon's word on missing keys ----------------------------------------------------


def test_keys_file_path_mistakes_are_one_line(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "keys.json"
    cases = [
        (["keys", "create", "--keys-file", str(missing_dir), "--name", "a", "--rights", "RIGHT_GATEWAY_INFO"],
         "does not exist; create it first"),
        (["keys", "create", "--keys-file", str(tmp_path), "--name", "a", "--rights", "RIGHT_GATEWAY_INFO"],
         "is a directory"),
        (["keys", "list", "--keys-file", str(tmp_path)], "is a directory"),
        (["keys", "list", "--keys-file", str(missing_dir)], "does not exist"),
        (["keys", "revoke", "--keys-file", str(tmp_path), "x"], "is a directory"),
        (["keys", "create", "--keys-file", str(tmp_path / "k.json"), "--name", "a", "--rights", "RIGHT_GATEWAY_NOPE"],
         "unknown right 'RIGHT_GATEWAY_NOPE'; the rights this server checks: RIGHT_ALL, RIGHT_GATEWAY_ALL"),
    ]
    for args, expected in cases:
        result = gs(*args)
        lines = stderr_lines(result)
        assert result.returncode == 2, (args, result.stderr)
        assert len(lines) == 1 and expected in lines[0], (args, result.stderr)
    assert "RIGHT_GATEWAY_STATUS_READ" in stderr_lines(gs(*cases[-1][0]))[0]


def test_keys_commands_read_gs_keys_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    env = _env(GS_KEYS_FILE=str(keys_file))
    created = gs("keys", "create", "--name", "ops", "--rights", "RIGHT_GATEWAY_STATUS_READ", env=env)
    assert created.returncode == 0, created.stderr
    assert keys_file.exists()
    listed = gs("keys", "list", env=env)
    assert listed.returncode == 0 and "ops" in listed.stdout
    revoked = gs("keys", "revoke", "ops", env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert gs("keys", "list").returncode == 2  # neither flag nor environment: argparse names --keys-file


@pytest.mark.parametrize("keys", ["none", "missing"])
def test_daemon_says_when_no_key_can_be_valid(tmp_path: Path, daemons: list[Daemon], keys: str) -> None:
    args = [] if keys == "none" else ["--keys-file", str(tmp_path / "keys.json")]
    daemon = Daemon(*args, *EPHEMERAL)
    daemons.append(daemon)
    daemon.wait_for("gateway server started")
    line = daemon.wait_for("refuse every request")
    assert "gatewayserver keys create" in line
    if keys == "missing":
        assert str(tmp_path / "keys.json") in line
    assert daemon.stop() == 0


# --- item 18: grpc's debug chatter ----------------------------------------------------------------------------------


def test_debug_log_is_not_grpc_chatter(daemons: list[Daemon]) -> None:
    daemon = Daemon(*EPHEMERAL, "--log-level", "debug")
    daemons.append(daemon)
    started = daemon.wait_for("gateway server started")
    grpc_address = started.split(" grpc=")[1].split()[0]
    with grpc.insecure_channel(grpc_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(20):
            response = stub.Check(health_pb2.HealthCheckRequest(), timeout=30)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
    assert daemon.stop() == 0
    chatter = [line for line in daemon.lines if "Loaded running loop" in line or " grpc." in line]
    print(f"{len(daemon.lines)} lines at debug, {len(chatter)} from grpc")
    assert chatter == [], chatter


# --- item 23: simulate offers the real plan ids ----------------------------------------------------------------------


def test_simulate_frequency_plan_is_a_real_plan_id() -> None:
    result = gs("simulate", "--frequency-plan", "KR_920_923")
    assert result.returncode == 2
    assert "unknown frequency plan 'KR_920_923'" in result.stderr and "KR_920_923_TTN" in result.stderr

    from gatewayserver.simulator import plan_uplink_frequencies

    assert plan_uplink_frequencies("KR_920_923_TTN")[:3] == (922.1, 922.3, 922.5)
    assert plan_uplink_frequencies("US_902_928_FSB_2")[0] == 903.9
