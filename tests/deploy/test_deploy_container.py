"""Containerfile and compose file, checked without a container engine (none in CI).

- the Containerfile is parsed: base image, non-root user, ports, health check, `pip install .`, and every COPY
  source exists; its build context (only the COPYed paths) is built into a wheel to catch a forgotten COPY;
  its ENTRYPOINT/CMD are parsed by the real CLI; its HEALTHCHECK command is run against a live daemon;
- compose.yml is loaded as YAML: services, published ports, and every bind mount points at files that exist,
  wired to what prometheus.yml and the Grafana provisioning expect.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from deploy_support import DEPLOY, REPO, daemon  # noqa: F401

CONTAINERFILE = DEPLOY / "container" / "Containerfile"
COMPOSE = DEPLOY / "container" / "compose.yml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "dangling line continuation"
    return out


def _json_or_shell(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def test_base_image_is_python_311_slim() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert froms[-1].split()[0] == "python:3.11-slim"


def test_runs_as_a_non_root_user_after_installing() -> None:
    steps = instructions()
    users = [(index, args) for index, (keyword, args) in enumerate(steps) if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    index, user = users[-1]
    name = user.split(":")[0]
    assert name not in ("root", "0"), user
    install = max(i for i, (keyword, args) in enumerate(steps) if keyword == "RUN" and "pip install" in args)
    assert install < index, "install as root, then drop privileges"
    assert re.search(r"pip install (\S+ )*\.(\s|$)", steps[install][1]), "the image installs the package: pip install ."


def test_exposes_the_three_ports() -> None:
    exposed = {port for keyword, args in instructions() if keyword == "EXPOSE" for port in args.split()}
    assert {"1700/udp", "1884", "1885"} <= exposed, exposed


def test_every_copy_source_exists() -> None:
    for keyword, args in instructions():
        if keyword in ("COPY", "ADD") and "--from=" not in args:
            *sources, _destination = _json_or_shell(args)
            for source in sources:
                assert (REPO / source).exists(), f"{keyword} {source}: not in the repository"


def test_entrypoint_and_cmd_are_a_valid_command() -> None:
    steps = dict(instructions())
    argv = _json_or_shell(steps["ENTRYPOINT"]) + _json_or_shell(steps["CMD"])
    assert argv[0] == "gatewayserver"
    from gatewayserver.cli import build_parser

    assert build_parser().parse_args(argv[1:]).command == "run"


def _healthcheck_argv() -> list[str]:
    args = dict(instructions())["HEALTHCHECK"]
    command = args[args.index("CMD ") + 4:].strip()
    return _json_or_shell(command)


def test_healthcheck_hits_healthz_on_the_http_port() -> None:
    argv = _healthcheck_argv()
    assert argv[0] == "python", "curl is not in python:3.11-slim"
    assert "http://127.0.0.1:1885/healthz" in " ".join(argv)


def test_healthcheck_command_passes_against_a_live_daemon(daemon) -> None:  # noqa: F811
    argv = [sys.executable if arg == "python" else arg.replace(":1885/", f":{daemon.http_port}/")
            for arg in _healthcheck_argv()]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_build_context_of_the_copies_is_installable(tmp_path: Path) -> None:
    """Build a wheel from only the COPYed paths, as `pip install .` in the image would, and look inside."""
    context = tmp_path / "src"
    context.mkdir()
    for keyword, args in instructions():
        if keyword == "COPY" and "--from=" not in args:
            *sources, _ = _json_or_shell(args)
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(origin, context / source.rstrip("/"),
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(origin, context / source)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels),
         str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = wheels.glob("gatewayserver-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "gatewayserver/cli.py" in names
    assert "frequency_plans/plans/EU_863_870.yml" in names, "plan files must be package data"
    assert any(name.startswith("scheduler/") for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "gatewayserver = gatewayserver.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# --- compose

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _binds(service: dict) -> dict[str, Path]:
    """container path -> host path, for bind mounts (relative sources are relative to the compose file)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith((".", "/")):
            out[target] = (COMPOSE.parent / source).resolve()
    return out


def test_services(compose: dict) -> None:
    assert {"gatewayserver", "prometheus", "grafana"} <= set(compose["services"])


def test_daemon_service_builds_this_repository(compose: dict) -> None:
    service = compose["services"]["gatewayserver"]
    context = (COMPOSE.parent / service["build"]["context"]).resolve()
    assert context == REPO
    assert (context / service["build"]["dockerfile"]).resolve() == CONTAINERFILE
    ports = [str(port) for port in service["ports"]]
    assert "1700:1700/udp" in ports and "1884:1884" in ports and "1885:1885" in ports
    for name in service.get("environment", {}):
        assert name.startswith("GS_"), name
        from gatewayserver.config import OPTIONS

        assert name in {option.env for option in OPTIONS} | {"GS_CONFIG"}, f"{name}: no such option"


def test_prometheus_gets_our_config_and_rules(compose: dict) -> None:
    service = compose["services"]["prometheus"]
    binds = _binds(service)
    assert binds["/etc/prometheus"] == DEPLOY / "prometheus"
    config_flag = next(arg for arg in service["command"] if arg.startswith("--config.file="))
    in_container = config_flag.split("=", 1)[1]
    host = binds["/etc/prometheus"] / Path(in_container).relative_to("/etc/prometheus")
    assert host.is_file(), host
    scrape = yaml.safe_load(host.read_text())
    job = next(job for job in scrape["scrape_configs"] if job["job_name"] == "gatewayserver")
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets == ["gatewayserver:1885"], "scrape the compose service by name on the HTTP port"
    assert list((binds["/etc/prometheus"] / "rules").glob("*.yml")), "rules must be inside the mounted directory"


def test_grafana_gets_provisioning_and_dashboards(compose: dict) -> None:
    service = compose["services"]["grafana"]
    binds = _binds(service)
    assert binds["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"
    assert (binds["/etc/grafana/provisioning"] / "datasources").is_dir()
    assert (binds["/etc/grafana/provisioning"] / "dashboards").is_dir()
    dashboards = binds["/var/lib/grafana/dashboards"]
    assert (dashboards / "gatewayserver.json").is_file()
    home = service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).relative_to("/var/lib/grafana/dashboards")).is_file()
    assert "prometheus" in service.get("depends_on", [])


def test_every_bind_mount_exists(compose: dict) -> None:
    for name, service in compose["services"].items():
        for target, source in _binds(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
