"""Several `gatewayserver run` processes sharing one real redis-server, as several hosts would run them.

Each instance has its own UDP, gRPC and HTTP ports on loopback; a test sends a gateway's datagrams to the instance
a load balancer would pick, and moves the gateway by sending them to another instance from new sockets (a new
source address, as after a failover). One stand-in Network Server (a real grpc.aio server on its own thread)
receives every instance's uplinks and TX acknowledgments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import yaml

from gatewayserver.api.keys import create_key
from gatewayserver.ttnpb import gatewayserver_pb2_grpc, messages_pb2

from e2e.daemon_process import log_records
from e2e.harness import Forwarder, LoopbackPorts
from redis_support import RedisServer

CLUSTER_KEY = "ab" * 16
TOKEN_KEY = "cd" * 16
CLUSTER_METADATA = (("authorization", "ClusterKey " + CLUSTER_KEY),)


class Instance(LoopbackPorts):
    def __init__(self, name: str, workdir: Path) -> None:
        super().__init__()
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def logged(self, msg: str) -> list[dict[str, Any]]:
        return log_records(self.log(), msg)

    def get(self, path: str, key: str = "") -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.http + path, headers=headers), timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metric(self, name: str, **labels: str) -> float:
        """A sample from the instance's /metrics (0 when absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        target = f"{name}{{{want}}}" if labels else name
        for line in self.get("/metrics")[1].decode().splitlines():
            if line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            if sample == target:
                return float(value)
        return 0.0

    def ready(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/readyz")[1]))

    def schedule(self, message: messages_pb2.DownlinkMessage, metadata: Any = CLUSTER_METADATA) -> Any:
        """NsGs.ScheduleDownlink at this instance, as the Network Server calls it."""
        with grpc.insecure_channel(self.grpc_target) as channel:
            return gatewayserver_pb2_grpc.NsGsStub(channel).ScheduleDownlink(message, metadata=metadata, timeout=15)


class Cluster:
    """`names` instances, one registry, one Redis, one Network Server."""

    def __init__(self, workdir: Path, redis: RedisServer, ns_port: int, names: list[str],
                 gateways: list[tuple[str, bytes]], extra: dict[str, list[str]] | None = None) -> None:
        self.workdir = workdir
        self.redis = redis
        self.ns_port = ns_port
        self.keys_file = str(workdir / "keys.json")
        self.admin_key, _ = create_key(self.keys_file, "admin", ["RIGHT_ALL"])
        self.registry = workdir / "gateways.yml"
        entries = [{"gateway_id": g, "eui": e.hex(), "frequency_plan_id": "EU_863_870"} for g, e in gateways]
        self.registry.write_text(yaml.safe_dump({"gateways": entries}))
        self.instances = {name: Instance(name, workdir) for name in names}
        self.extra = extra or {}

    def __getitem__(self, name: str) -> Instance:
        return self.instances[name]

    def start(self, timeout: float = 60.0) -> Cluster:
        for instance in self.instances.values():
            self._spawn(instance)
        deadline = time.monotonic() + timeout
        for instance in self.instances.values():
            self._wait_healthy(instance, deadline)
        return self

    def _spawn(self, instance: Instance) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        argv = [
            sys.executable, "-m", "gatewayserver", "run",
            "--udp-listen", f"127.0.0.1:{instance.udp_port}",
            "--grpc-listen", instance.grpc_target,
            "--http-listen", f"127.0.0.1:{instance.http_port}",
            "--keys-file", self.keys_file,
            "--gateways", str(self.registry),
            "--ns-address", f"127.0.0.1:{self.ns_port}",
            "--cluster-key", CLUSTER_KEY,
            "--uplink-token-key", TOKEN_KEY,
            "--redis-url", self.redis.url,
            "--instance-id", instance.name,
            "--log-format", "json",
            "--log-level", "info",
            *self.extra.get(instance.name, []),
        ]
        with open(instance.log_path, "ab") as log:
            instance.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )

    def _wait_healthy(self, instance: Instance, deadline: float, retries: int = 3) -> None:
        while True:
            try:
                if instance.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            assert instance.process is not None
            if instance.process.poll() is not None:
                if retries and "address already in use" in instance.log():
                    # A free port picked here was taken by another test process before the instance bound it.
                    retries -= 1
                    LoopbackPorts.__init__(instance)
                    self._spawn(instance)
                    continue
                raise AssertionError(f"instance {instance.name} exited:\n{instance.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"instance {instance.name} not healthy:\n{instance.log()}")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        process = self.instances[name].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for instance in self.instances.values():
            if instance.process is not None and instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        for name, instance in self.instances.items():
            if instance.process is None:
                continue
            try:
                codes[name] = instance.process.wait(30)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                codes[name] = instance.process.wait(10)
        return codes


def pull_resp(gw: Forwarder) -> tuple[bytes, dict[str, Any]]:
    """The next PULL_RESP on the forwarder's down socket: (token, txpk)."""
    while True:
        data, _ = gw.down.recvfrom(4096)
        if data[3] == 0x03:
            return data[1:3], json.loads(data[4:])["txpk"]


def in_a_window(txpk: dict[str, Any], uplink_tmst: int) -> bool:
    """RX1 (1 s after the uplink, 868.1 MHz) or, on a machine too loaded for RX1, RX2 (2 s, 869.525 MHz)."""
    return (txpk["tmst"], txpk["freq"]) in ((uplink_tmst + 1_000_000, 868.1), (uplink_tmst + 2_000_000, 869.525))


def redis_get(redis: RedisServer, key: str) -> bytes | None:
    """GET over a plain socket (RESP bulk string, after the AUTH's reply)."""
    reply = redis.command("GET", key).removeprefix(b"+OK\r\n")
    if not reply.startswith(b"$") or reply.startswith(b"$-1"):
        return None
    header, _, rest = reply.partition(b"\r\n")
    return rest[: int(header[1:])]


__all__ = [
    "CLUSTER_KEY", "CLUSTER_METADATA", "Cluster", "Instance", "TOKEN_KEY", "in_a_window", "pull_resp", "redis_get",
]
