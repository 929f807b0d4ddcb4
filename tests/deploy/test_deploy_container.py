"""Containerfile and compose file, checked without a container engine (none in CI).

- the Containerfile is parsed: base image, non-root user, ports, health check, `pip install .`, and every COPY
  source exists; its build context (only the COPYed paths) is built into a wheel to catch a forgotten COPY;
  its ENTRYPOINT/CMD are parsed by the real CLI; its HEALTHCHECK command is run against a live daemon;
- compose.yml is loaded as YAML: services, published ports, and every bind mount points at files that exist,
  wired to what prometheus.yml and the Grafana provisioning expect.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from deploy_support import (  # noqa: F401
    DEPLOY,
    REPO,
    Daemon,
    build_context,
    daemon,
    dockerignored,
    free_port,
    read_dockerignore,
    ssl_get,
    start_daemon,
)

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


def test_healthcheck_is_the_healthcheck_subcommand() -> None:
    argv = _healthcheck_argv()
    assert argv[0] == "gatewayserver", "curl is not in python:3.11-slim; the CLI is"
    from gatewayserver.cli import build_parser

    assert build_parser().parse_args(argv[1:]).command == "healthcheck"


def _run_healthcheck(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """The Containerfile's HEALTHCHECK command as the engine runs it: in the container's environment."""
    argv = _healthcheck_argv()
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
    return subprocess.run([sys.executable, "-m", "gatewayserver", *argv[1:], *extra], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_healthcheck_follows_gs_http_listen(daemon: Daemon) -> None:  # noqa: F811
    """The daemon is on a non-default port, as with `-e GS_HTTP_LISTEN=0.0.0.0:PORT`: the check must find it."""
    assert daemon.http_port != 1885
    result = _run_healthcheck({"GS_HTTP_LISTEN": f"0.0.0.0:{daemon.http_port}"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == "", "--quiet: nothing in the container's health log when healthy"


def test_healthcheck_follows_the_config_file(daemon: Daemon, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "config.yml"
    config.write_text(f"http_listen: 127.0.0.1:{daemon.http_port}\n")
    result = _run_healthcheck({"GS_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_with_one_line_when_nothing_answers() -> None:
    port = free_port()
    result = _run_healthcheck({"GS_HTTP_LISTEN": f"0.0.0.0:{port}"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"http://127.0.0.1:{port}/healthz" in lines[0], result.stderr
    assert "refused" in lines[0].lower(), lines[0]


def test_healthcheck_config_error_exits_2() -> None:
    result = _run_healthcheck({"GS_HTTP_LISTEN": "no-port-here"})
    assert result.returncode == 2
    assert "http_listen" in result.stderr and "Traceback" not in result.stderr


def test_healthcheck_speaks_tls_when_the_listener_has_a_certificate(tmp_path: Path) -> None:
    from tls_support import write_self_signed

    cert, key = write_self_signed(tmp_path)
    tls = start_daemon(tmp_path, extra=["--http-tls-cert", cert, "--http-tls-key", key],
                       ready=lambda d: ssl_get(d.http_port))
    try:
        env = {"GS_HTTP_LISTEN": f"127.0.0.1:{tls.http_port}"}
        result = _run_healthcheck({**env, "GS_HTTP_TLS_CERT": cert, "GS_HTTP_TLS_KEY": key})
        assert result.returncode == 0, result.stderr
        plain = _run_healthcheck(env)
        assert plain.returncode == 1, "plain HTTP to a TLS listener must not look healthy"
    finally:
        tls.stop()


def _copy_sources() -> list[str]:
    return [source.rstrip("/") for keyword, args in instructions()
            if keyword in ("COPY", "ADD") and "--from=" not in args
            for source in _json_or_shell(args)[:-1]]


@pytest.mark.parametrize("path", [
    ".venv/lib/python3.11/site-packages/grpc/__init__.py",
    ".git/objects/pack/pack-1.pack",
    "benchmarks/standin_ns/node_modules/@grpc/grpc-js/package.json",
    "gatewayserver/__pycache__/cli.cpython-311.pyc",
    "gatewayserver/api/__pycache__/keys.cpython-311.pyc",
    "scheduler/core.pyc",
    "gatewayserver.egg-info/PKG-INFO",
    ".mypy_cache/3.11/cache.db",
    ".pytest_cache/v/cache/nodeids",
    ".hypothesis/examples/abc",
    ".ruff_cache/content",
    "keys.json",
    ".env",
    "tests/e2e/harness.py",
    "benchmarks/results/run.json",
])
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignored(path, read_dockerignore(REPO / ".dockerignore")), f"{path} would be sent to the builder"


def test_dockerignore_matcher_follows_docker_rules() -> None:
    """The stand-in for the engine's matcher: last match wins, a parent's match counts, `**` spans directories."""
    patterns = read_dockerignore_text("*\n!src/\n**/__pycache__\n!src/keep/**/*.pyc\n/docs/*.md\n")
    assert dockerignored("anything", patterns) and dockerignored("deep/down/file", patterns)
    assert not dockerignored("src/a.py", patterns) and not dockerignored("src/x/y/z.py", patterns)
    assert dockerignored("src/__pycache__/a.pyc", patterns) and dockerignored("src/x/__pycache__/a.pyc", patterns)
    assert not dockerignored("src/keep/a/b.pyc", patterns)
    assert dockerignored("docs/a.md", patterns)


def read_dockerignore_text(text: str) -> list:  # type: ignore[type-arg]
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".dockerignore", delete=False) as handle:
        handle.write(text)
    try:
        return read_dockerignore(Path(handle.name))
    finally:
        Path(handle.name).unlink()


def test_build_context_is_small_and_holds_every_copy_source() -> None:
    """What `docker build .` sends from this checkout (with its .venv, .git, caches): only what is COPYed."""
    context = build_context(REPO)
    total = sum(context.values())
    print(f"build context: {len(context)} files, {total / 1e6:.2f} MB")
    for source in _copy_sources():
        assert source in context or any(path.startswith(source + "/") for path in context), \
            f"COPY {source}: left out of the build context by .dockerignore"
    assert total < 5_000_000, f"build context {total / 1e6:.1f} MB: .dockerignore lets too much through"
    outside = sorted({path.split("/")[0] for path in context} - {source.split("/")[0] for source in _copy_sources()})
    assert outside in ([], [".dockerignore"]), f"sent but never COPYed: {outside}"


def test_build_context_of_the_copies_is_installable(tmp_path: Path) -> None:
    """Build a wheel from the build context as the engine sends it (.dockerignore applied), as the image would."""
    context = tmp_path / "src"
    sent = build_context(REPO)
    for source in _copy_sources():
        for path in sent:
            if path == source or path.startswith(source + "/"):
                (context / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / path, context / path)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels),
         str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # -v shows setuptools' own output: e.g. the `project.license` table deprecation (issue 10, item 19).
    assert "DeprecationWarning" not in result.stdout + result.stderr, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = wheels.glob("gatewayserver-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "gatewayserver/cli.py" in names
    assert "frequency_plans/plans/EU_863_870.yml" in names, "plan files must be package data"
    assert any(name.startswith("scheduler/") for name in names)
    assert not any("__pycache__" in name for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "gatewayserver = gatewayserver.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()


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
