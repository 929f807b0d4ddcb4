"""deploy/cluster: two instances, Redis and a UDP load balancer, checked without a container engine (none in CI).

- compose.yml is loaded as YAML: services, every bind mount exists, the instances' commands with their environment
  (the secrets `generate-secrets.sh` writes) are accepted by the real CLI's `gatewayserver config`;
- generate-secrets.sh writes fresh hex keys, 0600, never over an existing file; the file it writes is ignored by git;
- nginx.conf passes `nginx -t` (the instances' names replaced by loopback addresses: nginx resolves them), and its
  Prometheus configuration passes `promtool check config`;
- the real thing on loopback: nginx with this nginx.conf in front of two `gatewayserver run --redis-url` processes
  and a redis-server; a gateway's datagrams through it are acknowledged and its uplinks reach a stand-in Network
  Server; killing the instance its address is hashed to moves it to the other one; with Redis then stopped the
  survivor still serves it and the compose health check still passes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import DEPLOY, REPO, require_tool, wait_until
from free_ports import free_port

CLUSTER = DEPLOY / "cluster"
COMPOSE = CLUSTER / "compose.yml"
NGINX_CONF = CLUSTER / "nginx.conf"
GENERATE = CLUSTER / "generate-secrets.sh"
INSTANCES = ("gatewayserver-a", "gatewayserver-b")
# Debian's nginx has the stream module as a dynamic module (libnginx-mod-stream); nginx.org's builds have it inside.
DEBIAN_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _binds(service: dict[str, Any]) -> dict[str, Path]:
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith((".", "/")):
            out[target] = (COMPOSE.parent / source).resolve()
    return out


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


@pytest.fixture(scope="module")
def secrets_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cluster.env as the documented step writes it."""
    path = tmp_path_factory.mktemp("cluster") / "cluster.env"
    result = subprocess.run(["sh", str(GENERATE), str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return path


# --- compose.yml


def test_services(compose: dict[str, Any]) -> None:
    assert {*INSTANCES, "loadbalancer", "redis"} <= set(compose["services"])


def test_instances_build_this_repository_and_share_their_secrets(compose: dict[str, Any]) -> None:
    for name in INSTANCES:
        service = compose["services"][name]
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == REPO
        assert (context / service["build"]["dockerfile"]).is_file()
        assert service["env_file"] == ["cluster.env"], "the shared secrets come from the generated file"
        assert "ports" not in service, "gateways reach the instances through the load balancer only"
        from gatewayserver.config import OPTIONS

        for variable in service.get("environment", {}):
            assert variable in {option.env for option in OPTIONS}, f"{name}: {variable}: no such option"
            assert variable not in ("GS_CLUSTER_KEY", "GS_UPLINK_TOKEN_KEY", "GS_REDIS_URL"), \
                f"{name}: {variable} is a secret: cluster.env, not compose.yml"
        assert service["healthcheck"]["test"][1:3] == ["gatewayserver", "healthcheck"]
        assert service["environment"]["GS_NEW_GATEWAYS_PER_SOURCE"] == "0", \
            "every gateway comes from nginx's address: a per-source budget would throttle a failover"


def _compose_healthcheck() -> list[str]:
    """The instances' health check command in compose.yml, after "CMD"."""
    test = yaml.safe_load(COMPOSE.read_text())["services"][INSTANCES[0]]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "gatewayserver", test
    return list(test[1:])


def _instance_flags(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    assert command[0] == "run", "the image's ENTRYPOINT is gatewayserver"
    return list(command[1:])


def test_each_instance_names_itself_and_where_the_others_call_it(compose: dict[str, Any]) -> None:
    from gatewayserver.cli import build_parser

    ids, addresses = set(), set()
    for name in INSTANCES:
        args = build_parser().parse_args(["run", *_instance_flags(compose["services"][name])])
        ids.add(args.instance_id)
        addresses.add(args.cluster_advertise_address)
        assert args.cluster_advertise_address == f"{name}:1884", "the service name and the gRPC port"
    assert len(ids) == len(INSTANCES) and len(addresses) == len(INSTANCES)


@pytest.mark.parametrize("name", INSTANCES)
def test_gatewayserver_config_accepts_each_instance(compose: dict[str, Any], secrets_env: Path, name: str) -> None:
    """What the container runs, checked by `gatewayserver config` exactly as `run` checks it at start."""
    service = compose["services"][name]
    env = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
    env.update(service.get("environment", {}))
    env.update({key: value for key, value in _env_file(secrets_env).items() if key.startswith("GS_")})
    result = subprocess.run([sys.executable, "-m", "gatewayserver", "config", *_instance_flags(service)],
                            env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["instance_id"] == name.replace("gatewayserver-", "gs-")
    assert printed["cluster_advertise_address"] == f"{name}:1884"
    assert printed["redis_url"].startswith("redis://") and "@redis:6379/0" in printed["redis_url"]
    assert printed["cluster_key"] == printed["uplink_token_key"] == "<redacted>"
    secrets = _env_file(secrets_env)
    for secret in (secrets["GS_CLUSTER_KEY"], secrets["GS_UPLINK_TOKEN_KEY"], secrets["REDIS_PASSWORD"]):
        assert secret not in result.stdout + result.stderr


def test_an_instance_without_the_secrets_is_refused(compose: dict[str, Any]) -> None:
    """Forgetting generate-secrets.sh's keys but keeping Redis: one line, exit 2 (not a silently random key)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
    env["GS_REDIS_URL"] = "redis://:x@redis:6379/0"
    result = subprocess.run(
        [sys.executable, "-m", "gatewayserver", "config", *_instance_flags(compose["services"][INSTANCES[0]])],
        env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2 and "cluster_key" in result.stderr and "Traceback" not in result.stderr


def test_every_bind_mount_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for target, source in _binds(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_loadbalancer_publishes_udp_1700_with_our_nginx_conf(compose: dict[str, Any]) -> None:
    service = compose["services"]["loadbalancer"]
    assert "1700:1700/udp" in [str(port) for port in service["ports"]]
    assert _binds(service)["/etc/nginx/nginx.conf"] == NGINX_CONF
    assert set(service["depends_on"]) >= set(INSTANCES), "nginx resolves the instances' names at start"


def test_redis_requires_the_generated_password(compose: dict[str, Any]) -> None:
    service = compose["services"]["redis"]
    assert service["env_file"] == ["cluster.env"]
    assert "--requirepass" in " ".join(service["command"]) and "$$REDIS_PASSWORD" in " ".join(service["command"])
    assert "ports" not in service, "Redis is for the instances only"


def test_prometheus_scrapes_every_instance_directly(compose: dict[str, Any]) -> None:
    service = compose["services"]["prometheus"]
    binds = _binds(service)
    config = binds["/etc/prometheus/prometheus.yml"]
    assert binds["/etc/prometheus/rules"] == DEPLOY / "prometheus" / "rules"
    scrape = yaml.safe_load(config.read_text())
    job = next(job for job in scrape["scrape_configs"] if job["job_name"] == "gatewayserver")
    targets = [target for static in job["static_configs"] for target in static["targets"]]
    assert sorted(targets) == [f"{name}:1885" for name in INSTANCES]


def test_promtool_accepts_the_cluster_prometheus_config(tmp_path: Path) -> None:
    """As mounted in the container: prometheus.yml beside the rules directory."""
    tool = require_tool("promtool")
    shutil.copy(CLUSTER / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copytree(DEPLOY / "prometheus" / "rules", tmp_path / "rules")
    result = subprocess.run([tool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                            text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rules = len(list((DEPLOY / "prometheus" / "rules").glob("*.yml")))
    assert f"{rules} rule files found" in output, output


# --- the secrets step


def test_generate_secrets_writes_fresh_private_keys(secrets_env: Path, tmp_path: Path) -> None:
    assert stat.S_IMODE(secrets_env.stat().st_mode) == 0o600
    values = _env_file(secrets_env)
    assert set(values) == {"GS_CLUSTER_KEY", "GS_UPLINK_TOKEN_KEY", "REDIS_PASSWORD", "GS_REDIS_URL"}
    for key in ("GS_CLUSTER_KEY", "GS_UPLINK_TOKEN_KEY"):
        assert re.fullmatch(r"[0-9a-f]{64}", values[key]), key
    assert values["GS_REDIS_URL"] == f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0"
    other = tmp_path / "other.env"
    subprocess.run(["sh", str(GENERATE), str(other)], check=True, capture_output=True, timeout=30)
    assert _env_file(other)["GS_CLUSTER_KEY"] != values["GS_CLUSTER_KEY"], "random per run"


def test_generate_secrets_never_replaces_existing_keys(tmp_path: Path) -> None:
    """New keys would break downlinks for uplinks already forwarded, and the Network Server's key."""
    path = tmp_path / "cluster.env"
    subprocess.run(["sh", str(GENERATE), str(path)], check=True, capture_output=True, timeout=30)
    before = path.read_text()
    result = subprocess.run(["sh", str(GENERATE), str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "keeping it" in result.stderr
    assert path.read_text() == before


def test_the_secrets_file_is_never_committed() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/cluster/cluster.env"], cwd=REPO, timeout=30)
    assert ignored.returncode == 0, "deploy/cluster/cluster.env must be in .gitignore"
    tracked = subprocess.run(["git", "ls-files", "deploy/cluster"], cwd=REPO, capture_output=True, text=True,
                             timeout=30).stdout.split()
    assert "deploy/cluster/cluster.env" not in tracked


# --- nginx.conf


def test_udp_upstream_hashes_the_source_address_consistently() -> None:
    text = NGINX_CONF.read_text()
    upstream = re.search(r"upstream gatewayserver_udp \{(.*?)\}", text, flags=re.S)
    assert upstream, "no UDP upstream"
    body = re.sub(r"#.*", "", upstream.group(1))
    assert re.search(r"^\s*hash \$remote_addr consistent;", body, flags=re.M), \
        "the source address, not address and port: a forwarder's PUSH_DATA and PULL_DATA come from two ports"
    servers = re.findall(r"^\s*server (\S+?)(?:\s[^;]*)?;", body, flags=re.M)
    assert servers == [f"{name}:1700" for name in INSTANCES]
    assert re.search(r"listen 1700 udp", text)
    assert not re.search(r"^\s*proxy_responses", re.sub(r"#.*", "", text), flags=re.M), \
        "downlinks (PULL_RESP) come unasked: limiting the responses per datagram would drop them"


def _nginx_conf_for(tmp_path: Path, ports: dict[str, str], *, listen: dict[int, int] | None = None) -> Path:
    """deploy/cluster/nginx.conf with the compose names (and, to run it, the listening ports) on loopback."""
    text = NGINX_CONF.read_text()
    for name, address in ports.items():
        text = text.replace(name, address)
    for port, local in (listen or {}).items():
        text, count = re.subn(rf"listen {port}( udp)?( reuseport)?;", rf"listen 127.0.0.1:{local}\1\2;", text)
        assert count == 1, port
    if DEBIAN_STREAM_MODULE.exists():
        text = f"load_module {DEBIAN_STREAM_MODULE};\n" + text
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    return path


def _nginx_argv(tmp_path: Path, conf: Path) -> list[str]:
    return [require_tool("nginx"), "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log"),
            "-g", f"pid {tmp_path / 'nginx.pid'};"]


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    names = {f"{name}:{port}": f"127.0.0.1:{port}" for name in INSTANCES for port in (1700, 1884, 1885)}
    conf = _nginx_conf_for(tmp_path, names)
    result = subprocess.run([*_nginx_argv(tmp_path, conf), "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --- the real thing on loopback


@pytest.fixture
def loopback_cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """redis-server, a stand-in Network Server, two instances and nginx with this nginx.conf, all on loopback."""
    from e2e.daemon_process import DaemonProcess
    from redis_support import RedisServer
    from workers.workers_support import NetworkServerThread

    nginx = require_tool("nginx")
    assert nginx
    cluster_key, token_key = "ab" * 32, "cd" * 32
    stack: list[Any] = []
    try:
        redis = RedisServer(password="deploy-test-password")
        redis.start()
        stack.append(redis.close)
        ns = NetworkServerThread().start()
        stack.append(ns.stop)
        instances = {}
        for name in INSTANCES:
            workdir = tmp_path / name
            workdir.mkdir()
            instance_id = name.replace("gatewayserver-", "gs-")
            daemon = DaemonProcess(workdir, "--log-format", "json", "--ns-address", f"127.0.0.1:{ns.port}",
                                   "--redis-url", redis.url, "--cluster-key", cluster_key,
                                   "--uplink-token-key", token_key, "--instance-id", instance_id)
            daemon.extra = (*daemon.extra, "--cluster-advertise-address", f"127.0.0.1:{daemon.grpc_port}")
            instances[name] = daemon.start()
            stack.append(daemon.stop)
        lb_udp = free_port(socket.SOCK_DGRAM)
        names = {}
        for name, daemon in instances.items():
            names[f"{name}:1700"] = f"127.0.0.1:{daemon.udp_port}"
            names[f"{name}:1884"] = f"127.0.0.1:{daemon.grpc_port}"
            names[f"{name}:1885"] = f"127.0.0.1:{daemon.http_port}"
        listen = {1700: lb_udp, 1884: free_port(socket.SOCK_STREAM), 1885: free_port(socket.SOCK_STREAM)}
        conf = _nginx_conf_for(tmp_path, names, listen=listen)
        process = subprocess.Popen([*_nginx_argv(tmp_path, conf), "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop_nginx() -> None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

        stack.append(stop_nginx)
        yield {"instances": instances, "ns": ns.ns, "lb": ("127.0.0.1", lb_udp), "nginx": process, "redis": redis,
               "error_log": tmp_path / "error.log"}
    finally:
        for undo in reversed(stack):
            try:
                undo()
            except Exception as exc:  # keep tearing down the rest
                print(f"teardown: {exc!r}")


def _metric(daemon: Any, prefix: str) -> float:
    """Sum of the samples whose line starts with `prefix` (a name, or a name and the start of its labels)."""
    with urllib.request.urlopen(daemon.http + "/metrics", timeout=10) as response:
        return sum(float(line.rsplit(" ", 1)[1]) for line in response.read().decode().splitlines()
                   if line.startswith(prefix))


def _datagrams(daemon: Any) -> dict[str, float]:
    return {kind: _metric(daemon, f'gs_udp_datagrams_received_total{{type="{kind}"}}') for kind in ("push_data",
                                                                                                    "pull_data")}


def _acked(sock: socket.socket, datagram: bytes, ack: bytes, address: tuple[str, int]) -> bool:
    """Send one datagram; True when its ack came back within the socket's timeout. Anything else is ignored, as a
    packet forwarder does (nginx sends an empty datagram when it ends a session whose upstream refused it)."""
    sock.sendto(datagram, address)
    deadline = time.monotonic() + (sock.gettimeout() or 2.0)
    while time.monotonic() < deadline:
        try:
            reply, _ = sock.recvfrom(65535)
        except (TimeoutError, ConnectionRefusedError):
            return False
        if reply == ack:
            return True
    return False


def _push_until_acked(gateway: Any, fcnt: int, timeout: float) -> int:
    """PUSH_DATA with a new uplink until one is acknowledged; returns the FCnt of the one acknowledged."""
    from e2e.harness import data_frame, rxpk

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fcnt += 1
        token = gateway.next_token()
        body = json.dumps({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=fcnt)]}).encode()
        if _acked(gateway.up, b"\x02" + token + b"\x00" + gateway.eui + body, b"\x02" + token + b"\x01",
                  gateway.address):
            return fcnt
    raise AssertionError(f"no PUSH_ACK through the load balancer within {timeout}s")


def _pull_until_acked(gateway: Any, timeout: float) -> None:
    """PULL_DATA until its PULL_ACK comes back (nginx may still be starting, or failing over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token = gateway.next_token()
        if _acked(gateway.down, b"\x02" + token + b"\x02" + gateway.eui, b"\x02" + token + b"\x04", gateway.address):
            return
    raise AssertionError(f"no PULL_ACK through the load balancer within {timeout}s")


def _uplink_with_fcnt(ns: Any, fcnt: int, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the uplink with FCnt {fcnt} did not reach the Network Server")
        uplink, _metadata = ns.uplinks.get(timeout=remaining)
        if uplink.raw_payload[6:8] == fcnt.to_bytes(2, "little"):
            return uplink


def test_a_gateway_through_the_load_balancer_moves_when_its_instance_dies(loopback_cluster: dict[str, Any]) -> None:
    from e2e.harness import Forwarder

    instances, ns = loopback_cluster["instances"], loopback_cluster["ns"]
    eui = bytes.fromhex("0016C001FF10A7E5")
    gateway = Forwarder(loopback_cluster["lb"], eui)
    for sock in (gateway.up, gateway.down):
        sock.settimeout(1.0)  # per attempt; the attempts go on for up to 30 s
    try:
        _pull_until_acked(gateway, timeout=30)  # PULL_ACK through nginx: the downlink path is open
        fcnt = _push_until_acked(gateway, 0, timeout=30)
        uplink = _uplink_with_fcnt(ns, fcnt)
        assert uplink.rx_metadata[0].gateway_ids.eui == eui
        for _ in range(4):
            # The forwarder restarts (or a NAT rebinds it): new source ports, same address, a new nginx session
            # per socket. The hash of the address alone keeps every one on the same instance.
            gateway.close()
            gateway = Forwarder(loopback_cluster["lb"], eui)
            for sock in (gateway.up, gateway.down):
                sock.settimeout(1.0)
            fcnt = _push_until_acked(gateway, fcnt, timeout=30)
            _pull_until_acked(gateway, timeout=30)
        _uplink_with_fcnt(ns, fcnt)
        counts = {name: _datagrams(daemon) for name, daemon in instances.items()}
        owners = [name for name, count in counts.items() if any(count.values())]
        assert len(owners) == 1, f"one instance gets all of a gateway's datagrams: {counts}"
        assert counts[owners[0]]["push_data"] >= 5 and counts[owners[0]]["pull_data"] >= 5, counts
        (other,) = set(instances) - set(owners)

        dead = instances[owners[0]]
        assert dead.process is not None
        dead.process.kill()  # a crash: no goodbye, as when a host dies
        dead.process.wait(10)
        fcnt = _push_until_acked(gateway, fcnt, timeout=30)
        uplink = _uplink_with_fcnt(ns, fcnt)
        assert uplink.rx_metadata[0].gateway_ids.eui == eui
        wait_until(lambda: _metric(instances[other], "gs_uplinks_forwarded_total ") >= 1, timeout=30,
                   what="the survivor's count of forwarded uplinks")
        _pull_until_acked(gateway, timeout=30)  # and the gateway's downlink path now ends at the survivor
        print(f"gateway moved from {owners[0]} to {other}; nginx: "
              f"{[line for line in loopback_cluster['error_log'].read_text().splitlines() if 'upstream' in line][:3]}")

        # Redis goes away: the survivor keeps serving the gateway, and the compose health check (/healthz) keeps
        # passing, so the container is not restarted for a Redis outage; /readyz is 200 and says "degraded".
        survivor = instances[other]
        loopback_cluster["redis"].stop()
        wait_until(lambda: _metric(survivor, "gs_redis_up ") == 0, timeout=30, what="gs_redis_up 0")
        fcnt = _push_until_acked(gateway, fcnt, timeout=30)
        _uplink_with_fcnt(ns, fcnt)
        with urllib.request.urlopen(survivor.http + "/readyz", timeout=10) as response:
            ready = json.loads(response.read())
        assert response.status == 200 and ready["degraded"][0]["part"] == "redis", ready
        argv = _compose_healthcheck()
        env = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
        env["GS_HTTP_LISTEN"] = f"127.0.0.1:{survivor.http_port}"
        check = subprocess.run([sys.executable, "-m", "gatewayserver", *argv[1:]], env=env, capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0, check.stderr
    finally:
        gateway.close()
