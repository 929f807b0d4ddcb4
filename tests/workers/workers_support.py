"""Several worker processes sharing one runtime directory and secret, without the supervisor.

Each worker gets its own UDP, gRPC and HTTP port, so a test can address any worker's API and send each gateway's
datagrams to its owner's UDP port itself, which is what the kernel's steering does in production.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import yaml

from gatewayserver.api.keys import create_key
from gatewayserver.ttnpb import networkserver_pb2_grpc
from gatewayserver.workers.spec import WorkerSpec, owner_of_eui

from e2e.harness import LoopbackPorts, StandInNetworkServer, free_tcp_port

LAUNCHER = str(Path(__file__).with_name("worker_launcher.py"))
CLUSTER_KEY = "00112233445566778899aabbccddeeff"


def eui_owned_by(owner: int, count: int, salt: int = 0) -> bytes:
    """A gateway EUI the kernel's rule gives to worker `owner`."""
    for low in range(salt * 1000, salt * 1000 + 1000):
        eui = bytes.fromhex("0016c001") + low.to_bytes(4, "big")
        if owner_of_eui(eui, count) == owner:
            return eui
    raise AssertionError("unreachable")


class NetworkServerThread:
    """The stand-in Network Server on its own loop, so module-scoped fixtures outlive each test's loop."""

    def __init__(self) -> None:
        self.ns = StandInNetworkServer()
        self.port = free_tcp_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: grpc.aio.Server | None = None

    def start(self) -> NetworkServerThread:
        self.thread.start()

        async def start() -> None:
            self.server = grpc.aio.server()
            networkserver_pb2_grpc.add_GsNsServicer_to_server(self.ns, self.server)
            self.server.add_insecure_port(f"127.0.0.1:{self.port}")
            await self.server.start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self.server is not None:
                await self.server.stop(0)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Worker(LoopbackPorts):
    def __init__(self, spec: WorkerSpec) -> None:
        super().__init__()
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


class WorkerProcesses:
    """`count` workers of one group; `gateways` is a list of (gateway_id, eui) written to the shared registry."""

    def __init__(
        self, workdir: Path, count: int, ns_port: int, gateways: list[tuple[str, bytes]], *extra: str
    ) -> None:
        """`extra`: more `run` flags for every worker."""
        self.workdir = workdir
        self.extra = extra
        self.count = count
        self.runtime_dir = str(workdir / "run")
        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        self.secret = secrets.token_hex(32)
        # One uplink token key for the group, as the supervisor gives its workers.
        self.token_key = secrets.token_hex(32)
        self.keys_file = str(workdir / "keys.json")
        self.admin_key, _ = create_key(self.keys_file, "admin", ["RIGHT_ALL"])
        self.registry = workdir / "gateways.yml"
        entries = [{"gateway_id": g, "eui": e.hex(), "frequency_plan_id": "EU_863_870"} for g, e in gateways]
        self.registry.write_text(yaml.safe_dump({"gateways": entries}))
        self.ns_port = ns_port
        self.workers = [
            Worker(WorkerSpec(index=i, count=count, runtime_dir=self.runtime_dir, secret=self.secret))
            for i in range(count)
        ]

    def owner(self, eui: bytes) -> Worker:
        return self.workers[owner_of_eui(eui, self.count)]

    def start(self, timeout: float = 60.0) -> WorkerProcesses:
        for worker in self.workers:
            self._spawn(worker)
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            self._wait_healthy(worker, deadline)
        return self

    def restart(self, index: int, timeout: float = 60.0) -> None:
        """Start a killed worker again with the same spec and ports, as the supervisor does."""
        worker = self.workers[index]
        self._spawn(worker)
        self._wait_healthy(worker, time.monotonic() + timeout)

    def _spawn(self, worker: Worker) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        worker.log_path = self.workdir / f"worker-{worker.spec.index}.log"
        argv = [
            sys.executable, LAUNCHER,
            "--udp-listen", f"127.0.0.1:{worker.udp_port}",
            "--grpc-listen", worker.grpc_target,
            "--http-listen", f"127.0.0.1:{worker.http_port}",
            "--keys-file", self.keys_file,
            "--gateways", str(self.registry),
            "--ns-address", f"127.0.0.1:{self.ns_port}",
            "--cluster-key", CLUSTER_KEY,
            "--uplink-token-key", self.token_key,
            "--log-level", "info",
            *self.extra,
        ]
        with open(worker.log_path, "ab") as log:
            worker.process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        assert worker.process.stdin is not None
        worker.process.stdin.write(worker.spec.to_json())
        worker.process.stdin.close()

    def _wait_healthy(self, worker: Worker, deadline: float) -> None:
        while not self._healthy(worker):
            assert worker.process is not None
            if worker.process.poll() is not None:
                raise AssertionError(f"worker {worker.spec.index} exited:\n{worker.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {worker.spec.index} not healthy:\n{worker.log()}")
            time.sleep(0.1)

    @staticmethod
    def _healthy(worker: Worker) -> bool:
        try:
            with urllib.request.urlopen(worker.http + "/healthz", timeout=2.0) as response:
                return response.status == 200
        except OSError:
            return False

    def kill(self, index: int) -> None:
        process = self.workers[index].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.process is not None:
                try:
                    worker.process.wait(30)
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait(10)


def http_json(url: str, key: str, body: Any = None, timeout: float = 15.0) -> tuple[int, Any]:
    import json
    import urllib.error

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
