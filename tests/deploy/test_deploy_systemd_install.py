"""The operator guide's systemd install, run as written, and the unit's ExecStart run as the unit's user.

systemd is not PID 1 here (nor in CI), so `systemctl start` is emulated by what systemd 252 (Debian 12) does
for this unit, read from the unit file the guide's `install` line copied: the user and group (User=/Group=, or a
transient uid for DynamicUser=), ConfigurationDirectory= (created root:root, chmod'ed, never chowned),
StateDirectory= (created and chowned to the user), WorkingDirectory=, UMask=, Environment=, EnvironmentFile=
(read by root), systemd's PATH, then ExecStart under `setpriv` with that uid/gid, no supplementary groups, no
capabilities and no_new_privs. The guide's commands run with their absolute paths moved under a scratch root
(/etc/gatewayserver -> ROOT/etc/gatewayserver, ...), so the host is not touched; `useradd` becomes an unused
numeric uid/gid, `sudoedit` writes the guide's YAML snippets into the files, and `pip install .` is this test
environment's install, started through an interpreter the unprivileged user can execute. The kernel's
permission checks are the same ones the real unit meets.

Then, over real sockets: the daemon starts (config.yml and gateways.yml readable), runs as that uid, writes an
uplink into its state directory, accepts the key `keys create` printed (keys.json readable), picks up a second
key written while it runs, survives ExecReload's SIGHUP and exits 0 on SIGTERM. A second test puts back the
DynamicUser= unit this replaced and shows the emulation reproduces its failure (Permission denied, exit 2).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from deploy_support import REPO, free_port, http_get, missing, parse_unit, wait_until

GUIDE = REPO / "docs" / "operator-guide.md"
UNIT_NAME = "gatewayserver.service"
# systemd's default PATH for services (src/basic/path-util.h, split-usr off).
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
EUI = "B827EBFFFE123456"


def _section(title: str) -> str:
    text = GUIDE.read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _free_id(after: int = 63999) -> int:
    used = {entry.pw_uid for entry in pwd.getpwall()} | {entry.gr_gid for entry in grp.getgrall()}
    return next(candidate for candidate in range(after + 1, 65000) if candidate not in used)


@dataclass
class Install:
    root: Path
    uid: int
    gid: int
    launcher_python: str
    site: Path

    def path(self, absolute: str) -> str:
        """Where an absolute path of the guide or the unit lives under the scratch root."""
        return str(self.root) + absolute if absolute.startswith("/") else absolute

    def rewrite(self, text: str) -> str:
        for prefix in ("/etc/gatewayserver", "/etc/systemd/system", "/opt/gatewayserver", "/usr/local/bin",
                       "/var/lib/gatewayserver"):
            text = re.sub(rf"(?<![\w/.]){re.escape(prefix)}", str(self.root) + prefix, text)
        return text.replace("-g gatewayserver", f"-g {self.gid}")

    def shell(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
        env["PATH"] = f"{self.root}/usr/local/bin:{env.get('PATH', SYSTEMD_PATH)}"
        return subprocess.run(["bash", "-euo", "pipefail", "-c", self.rewrite(command)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120, check=False)


def _unprivileged(uid: int, gid: int) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        missing("`setpriv` (Debian package util-linux)")
    assert setpriv
    return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs", "--inh-caps=-all",
            "--bounding-set=-all", "--"]


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link where the file system allows (fast, no extra space), a copy otherwise."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _runtime_distributions() -> list[metadata.Distribution]:
    """The installed distributions `pip install .` brings in: the project's requirements, transitively, no extras."""
    seen: dict[str, metadata.Distribution] = {}
    pending = [requirement for requirement in metadata.requires("gatewayserver") or []]
    while pending:
        requirement = pending.pop()
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a marker excluded it on this platform
        seen[name] = distribution
        pending.extend(distribution.requires or [])
    return list(seen.values())


def _install_program(site: Path) -> None:
    """The project and its runtime dependencies, as `pip install .` would put them, copied under `site`.

    Copied rather than referenced: the repository and the test venv may live where the service user cannot read
    (a clone in /root), and the project is usually installed editable (pointing into the repository).
    """
    for distribution in _runtime_distributions():
        for file in distribution.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # console scripts outside site-packages; bytecode
            destination = site / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(str(file.locate()), str(destination))
    for package in ("gatewayserver", "scheduler", "frequency_plans"):
        shutil.copytree(REPO / package, site / package, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for directory, _dirnames, filenames in os.walk(site):
        os.chmod(directory, 0o755)
        for name in filenames:
            path = os.path.join(directory, name)
            mode = os.stat(path).st_mode
            if mode & 0o444 != 0o444:  # a hard link shares its mode with the original: copy before chmod
                shutil.copy2(path, path + ".copy")
                os.replace(path + ".copy", path)
                os.chmod(path, mode | 0o444)


def _launcher_python(uid: int, gid: int, site: Path) -> str:
    """An interpreter of this Python's version that `uid` can run and that imports the program from `site`."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, os.path.realpath(sys.executable), f"/usr/bin/python{version}",
                  shutil.which(f"python{version}") or ""]
    probe = f"import site; site.addsitedir({str(site)!r}); import gatewayserver.cli, grpc, uvloop"
    for candidate in dict.fromkeys(c for c in candidates if c):
        result = subprocess.run([*_unprivileged(uid, gid), candidate, "-S", "-c", probe], capture_output=True,
                                timeout=60, check=False)
        if result.returncode == 0:
            return candidate
    missing(f"a Python {version} that an unprivileged user can run (tried {', '.join(candidates)})")
    raise AssertionError("unreachable")


@pytest.fixture
def install() -> Iterator[Install]:
    if os.geteuid() != 0:
        missing("root (the test chowns files and drops to an unprivileged uid like systemd)")
    root = Path(tempfile.mkdtemp(prefix="gs-install-", dir="/tmp"))
    try:
        root.chmod(0o755)
        for directory in ("etc/systemd/system", "opt", "usr/local/bin", "var/lib"):
            (root / directory).mkdir(parents=True, mode=0o755)
            os.chmod(root / directory, 0o755)
        free = _free_id()
        site = root / "site-packages"  # becomes /opt/gatewayserver's when the guide's `pip install .` runs
        _install_program(site)
        yield Install(root, free, free, _launcher_python(free, free, site), site)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _emulate_venv_and_pip(install: Install) -> None:
    """`python3 -m venv /opt/gatewayserver && /opt/gatewayserver/bin/pip install .`, from this test's install."""
    bin_dir = Path(install.path("/opt/gatewayserver/bin"))
    bin_dir.mkdir(parents=True)
    for directory in (bin_dir.parent, bin_dir):
        directory.chmod(0o755)
    site = bin_dir.parent / "lib" / "site-packages"
    site.parent.mkdir(mode=0o755)
    install.site.rename(site)
    script = bin_dir / "gatewayserver"
    script.write_text(
        f"#!{install.launcher_python} -S\n"
        "import site, sys\n"
        f"site.addsitedir({str(site)!r})\n"
        "from gatewayserver.cli import main\n"
        "sys.exit(main())\n"
    )
    script.chmod(0o755)


def _sudoedit(install: Install, files: list[str]) -> None:
    """Write the guide's snippets into the files in place, keeping owner and mode, as sudoedit does."""
    config = _blocks(_section("Installing as a systemd service"), "yaml")[0]
    registry = next(block for block in _blocks(GUIDE.read_text(), "yaml")
                    if isinstance(yaml.safe_load(block).get("gateways"), list))
    contents = {"/etc/gatewayserver/config.yml": install.rewrite(config),
                "/etc/gatewayserver/gateways.yml": registry}
    for name in files:
        with open(install.path(name), "r+") as handle:
            handle.truncate()
            handle.write(contents[name])


def run_documented_install(install: Install) -> dict[str, str]:
    """Every command of the guide's install and secrets blocks, in order; returns what some of them printed."""
    section = _section("Installing as a systemd service")
    install_block, secrets_block = _blocks(section, "sh")[:2]
    printed: dict[str, str] = {}
    emulated = []
    for line in [*install_block.splitlines(), *secrets_block.splitlines()]:
        command = line.strip()
        if not command or command.startswith("#"):
            continue
        command = command.removeprefix("sudo ")
        if command == "python3 -m venv /opt/gatewayserver":
            emulated.append("venv")
        elif command == "/opt/gatewayserver/bin/pip install .":
            _emulate_venv_and_pip(install)
            emulated.append("pip")
        elif command.startswith("useradd "):
            argv = shlex.split(command)
            assert argv[-1] == "gatewayserver" and "--system" in argv and "--user-group" in argv, command
            emulated.append("useradd")  # the numeric uid/gid of `install`
        elif command.startswith("sudoedit "):
            _sudoedit(install, shlex.split(command)[1:])
        elif command.startswith(("systemctl ", "journalctl ")):
            emulated.append(command.split()[0] + " " + command.split()[1])
        else:
            command = command.replace("GS_CLUSTER_KEY=<hex>", "GS_CLUSTER_KEY=00112233445566778899aabbccddeeff")
            command = command.replace("| sudo tee", "| tee")
            result = install.shell(command)
            assert result.returncode == 0, f"{command}: exit {result.returncode}\n{result.stdout}{result.stderr}"
            printed[command] = result.stdout
    assert emulated[:3] == ["venv", "pip", "useradd"], emulated
    assert "systemctl enable" in emulated and "systemctl daemon-reload" in emulated, emulated
    return printed


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    log: Path
    http_port: int
    udp_port: int
    state_dir: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _read_environment_file(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def start_unit(install: Install, extra_environment: dict[str, str]) -> Service:
    """`systemctl start gatewayserver` for the installed unit, as far as it can be done without systemd."""
    unit = parse_unit(Path(install.path(f"/etc/systemd/system/{UNIT_NAME}")).read_text())["Service"]
    dynamic = unit.get("DynamicUser", ["no"])[-1] == "yes"
    if dynamic:
        uid = gid = _free_id(after=install.uid)  # a transient identity, in no group of the files
    else:
        assert unit["User"][-1] == unit["Group"][-1] == "gatewayserver"
        uid, gid = install.uid, install.gid
    for name in unit.get("ConfigurationDirectory", []):
        path = Path(install.path(f"/etc/{name}"))
        mode = int(unit.get("ConfigurationDirectoryMode", ["0755"])[-1], 8)
        created = not path.exists()
        path.mkdir(mode=mode, exist_ok=True)
        if created or dynamic:
            path.chmod(mode)  # owner untouched: systemd does not chown configuration directories
    state_dirs = []
    for name in unit.get("StateDirectory", []):
        path = Path(install.path(f"/var/lib/{name}"))
        path.mkdir(exist_ok=True)
        path.chmod(int(unit.get("StateDirectoryMode", ["0755"])[-1], 8))
        for directory, _dirs, files in os.walk(path):
            for entry in [directory, *(os.path.join(directory, f) for f in files)]:
                os.chown(entry, uid, gid)
        state_dirs.append(path)
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "USER": "gatewayserver", "LOGNAME": "gatewayserver",
           "HOME": install.path("/var/lib/gatewayserver"), "SHELL": "/usr/sbin/nologin",
           "STATE_DIRECTORY": ":".join(map(str, state_dirs))}
    for assignment in unit.get("Environment", []):
        for item in shlex.split(assignment):
            key, _, value = item.partition("=")
            env[key] = value
    for entry in unit.get("EnvironmentFile", []):
        file = install.path(entry.removeprefix("-"))
        if os.path.exists(file) or not entry.startswith("-"):
            env.update(_read_environment_file(file))  # read by systemd, as root
    env.update(extra_environment)
    argv = [install.path(arg) if arg.startswith("/") else arg for arg in shlex.split(unit["ExecStart"][-1])]
    workdir = install.path(unit["WorkingDirectory"][-1])
    log = install.root / "journal.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([*_unprivileged(uid, gid), *argv], env=env, cwd=workdir,
                                   umask=int(unit["UMask"][-1], 8), stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    return Service(process, log, int(extra_environment["GS_HTTP_LISTEN"].rsplit(":", 1)[1]),
                   int(extra_environment["GS_UDP_LISTEN"].rsplit(":", 1)[1]), state_dirs[0])


def _listeners(install: Install) -> dict[str, str]:
    """Free loopback ports, in the environment file as an operator would set them (the defaults may be taken)."""
    listeners = {"GS_UDP_LISTEN": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
                 "GS_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
                 "GS_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
                 "GS_UPLINK_OUTPUT": install.path("/var/lib/gatewayserver/uplinks.jsonl")}
    with open(install.path("/etc/gatewayserver/environment"), "a") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in listeners.items())
    return listeners


def _wait_serving(service: Service) -> None:
    def serving() -> bool:
        if service.process.poll() is not None:
            raise AssertionError(f"exited with {service.process.returncode}:\n{service.log_text()}")
        status, body = http_get(f"http://127.0.0.1:{service.http_port}/metrics", timeout=1.0)
        return status == 200 and b"gs_gateways_connected" in body
    wait_until(serving, timeout=60, what="the service to serve /metrics")


def _stop(service: Service) -> int:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=10)
    return int(service.process.returncode)


def _push_uplink(port: int) -> bytes:
    frame = bytes([0x40]) + (0x26011234).to_bytes(4, "little") + b"\x00\x01\x00\x01hello" + b"\xa1\xb2\xc3\xd4"
    import base64

    rxpk = {"tmst": 1000000, "chan": 0, "rfch": 0, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125",
            "codr": "4/5", "rssi": -40, "lsnr": 9.5, "size": len(frame), "data": base64.b64encode(frame).decode()}
    datagram = b"\x02\x12\x34\x00" + bytes.fromhex(EUI) + json.dumps({"rxpk": [rxpk]}).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(datagram, ("127.0.0.1", port))
        return sock.recvfrom(64)[0]


def _stats(service: Service, key: str) -> int:
    status, _ = http_get(f"http://127.0.0.1:{service.http_port}/api/v3/gs/gateways/rooftop-1/connection/stats",
                         timeout=5.0, headers={"Authorization": f"Bearer {key}"})
    return status


def _uid_of(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    return int(line.split()[1])


def test_documented_install_runs_as_the_unit_user(install: Install) -> None:
    printed = run_documented_install(install)
    etc = Path(install.path("/etc/gatewayserver"))
    for path, mode in [(etc, 0o750), (etc / "config.yml", 0o640), (etc / "gateways.yml", 0o640),
                       (etc / "keys.json", 0o640)]:
        info = path.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, install.gid, mode), \
            f"{path}: {info.st_uid}:{info.st_gid} {oct(info.st_mode & 0o777)}"
    environment = (etc / "environment").stat()
    assert (environment.st_uid, environment.st_mode & 0o777) == (0, 0o600), "secrets: root only"
    key = next(out for command, out in printed.items() if " keys create " in f" {command}").strip()
    assert key.startswith("NNSXS."), key

    service = start_unit(install, _listeners(install))
    try:
        _wait_serving(service)
        assert _uid_of(service.process.pid) == install.uid, "the daemon must run as the unit's user"
        print(f"running as uid {install.uid}, gid {install.gid}, python {install.launcher_python}")

        # The state directory is writable: the uplink of the registered gateway lands in it.
        assert _push_uplink(service.udp_port)[3] == 0x01, "PUSH_ACK"
        uplinks = service.state_dir / "uplinks.jsonl"
        wait_until(lambda: uplinks.exists() and uplinks.read_text().count("\n") >= 1, timeout=30,
                   what="the uplink in the state directory")
        assert uplinks.stat().st_uid == install.uid

        # keys.json is readable: the key `keys create` printed is accepted, a made-up one is not.
        assert _stats(service, key) == 200, service.log_text()
        assert _stats(service, key[:-4] + "AAAA") in (401, 403)

        # A key added while it runs (root rewrites keys.json) is picked up: the rewrite kept the group.
        second = install.shell("gatewayserver keys create --keys-file /etc/gatewayserver/keys.json "
                               "--name ops-2 --rights RIGHT_GATEWAY_STATUS_READ")
        assert second.returncode == 0, second.stderr
        assert (etc / "keys.json").stat().st_gid == install.gid
        wait_until(lambda: _stats(service, second.stdout.strip()) == 200, timeout=30, what="the new key to work")

        # ExecReload=/bin/kill -HUP $MAINPID keeps it running.
        os.kill(service.process.pid, signal.SIGHUP)
        time.sleep(1.0)
        _wait_serving(service)
    finally:
        code = _stop(service)
    assert code == 0, f"SIGTERM (systemctl stop) must exit 0, got {code}:\n{service.log_text()}"
    assert "Traceback" not in service.log_text(), service.log_text()


def test_emulation_reproduces_the_dynamic_user_lockout(install: Install) -> None:
    """The unit before issue 10's fix: DynamicUser= and a ConfigurationDirectory= systemd makes root-only."""
    run_documented_install(install)
    unit = Path(install.path(f"/etc/systemd/system/{UNIT_NAME}"))
    text = unit.read_text()
    assert "User=gatewayserver\nGroup=gatewayserver\n" in text
    unit.write_text(text.replace("User=gatewayserver\nGroup=gatewayserver\n",
                                 "DynamicUser=yes\nConfigurationDirectory=gatewayserver\n"
                                 "ConfigurationDirectoryMode=0750\n"))
    service = start_unit(install, _listeners(install))
    try:
        code = service.process.wait(timeout=60)
    finally:
        _stop(service)
    assert code == 2, service.log_text()
    assert "Permission denied" in service.log_text(), service.log_text()
