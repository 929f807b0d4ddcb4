"""`gatewayserver run --workers N` as operators run it: a supervisor subprocess, its workers, real UDP sockets and
the grpc.aio stand-in Network Server.

Each gateway sends PUSH_DATA from one socket and PULL_DATA from another (different source ports, so the kernel's
default reuseport hash would split them across workers about half the time): every datagram must be acked, every
uplink must reach the Network Server, and each gateway must be connected exactly once, by the worker the ownership
rule names. A killed worker is replaced and its gateways' traffic resumes; SIGTERM and a killed supervisor leave no
process behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gatewayserver.ttnpb import networkserver_pb2_grpc
from gatewayserver.workers.spec import owner_of_eui

from harness import StandInNetworkServer, data_frame, free_tcp_port, free_udp_port, rxpk, wait_for

GATEWAYS = 200


class PeerRecordingNetworkServer(StandInNetworkServer):
    """Also records from which gRPC connection (one per worker process) each gateway's uplink came."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[tuple[str, bytes]] = []

    async def HandleUplink(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.peers.append((context.peer(), bytes(request.rx_metadata[0].gateway_ids.eui)))
        return await super().HandleUplink(request, context)


class NetworkServerThread:
    """The stand-in Network Server on its own loop and thread (the daemon under test is another process)."""

    def __init__(self) -> None:
        self.ns = PeerRecordingNetworkServer()
        self.port = free_tcp_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: grpc.aio.Server | None = None

    def __enter__(self) -> NetworkServerThread:
        self.thread.start()

        async def start() -> grpc.aio.Server:
            server = grpc.aio.server()
            networkserver_pb2_grpc.add_GsNsServicer_to_server(self.ns, server)
            server.add_insecure_port(f"127.0.0.1:{self.port}")
            await server.start()
            return server

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(15)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def uplinks(self, count: int, timeout: float = 60.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < count:
            got.append(self.ns.uplinks.get(timeout=max(0.1, deadline - time.monotonic()))[0])
        return got


class Workers:
    """`gatewayserver run --workers N` in a child process, its log (all processes' stderr) in a file."""

    def __init__(self, workdir: Path, count: int, ns_port: int, *extra: str) -> None:
        self.count = count
        self.udp_port = free_udp_port()
        self.http_port = free_tcp_port()
        self.grpc_port = free_tcp_port()
        self.log_path = workdir / f"workers-{count}.log"
        argv = [
            sys.executable, "-m", "gatewayserver", "run", "--workers", str(count),
            "--udp-listen", f"127.0.0.1:{self.udp_port}",
            "--grpc-listen", f"127.0.0.1:{self.grpc_port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--ns-address", f"127.0.0.1:{ns_port}",
            "--shutdown-timeout", "2s",
            "--new-gateways-per-source", "0",  # 200 unregistered gateways from one host within a second
            *extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GS_")}
        # As systemd's RuntimeDirectory= would set it, and as short as /run/gatewayserver: pytest's own temporary
        # directories are too deep for a Unix socket path (107 bytes), which the supervisor refuses.
        self.runtime = Path(tempfile.mkdtemp(prefix=f"gsw{count}-", dir="/tmp"))
        env["RUNTIME_DIRECTORY"] = str(self.runtime)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=workdir
            )
        wait_for(lambda: self.process.poll() is not None or "workers started" in self.log(), timeout=90)
        assert self.process.poll() is None, self.log()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=10) as response:
            assert response.status == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> dict[int, int]:
        """The current pid of each worker index, from the supervisor's `worker started` lines (latest wins)."""
        pids: dict[int, int] = {}
        for match in re.finditer(r"worker started worker=(\d+) pid=(\d+)", self.log()):
            pids[int(match.group(1))] = int(match.group(2))
        return pids

    def scrape(self, name: str) -> dict[str, float]:
        """`name` from the daemon-wide /metrics (whichever worker answers merges every worker's), by its `worker`
        label ("" for a metric without one)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    key = sample.labels.get("worker", "")
                    values[key] = values.get(key, 0.0) + sample.value
        return values

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.runtime, ignore_errors=True)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that is not ours counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


class Gateway:
    """One packet forwarder: PUSH_DATA from `up`, PULL_DATA from `down` (two source ports)."""

    def __init__(self, number: int, count: int) -> None:
        self.eui = bytes.fromhex("00800000a0") + number.to_bytes(3, "big")
        self.owner = owner_of_eui(self.eui, count)
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock in (self.up, self.down):
            sock.bind(("127.0.0.1", 0))
        self.token = number & 0xFFFF
        self.fcnt = 0

    def push(self, address: tuple[str, int], dev_addr: int) -> bytes:
        self.token = (self.token + 1) & 0xFFFF
        self.fcnt += 1
        frame = data_frame(dev_addr=dev_addr, fcnt=self.fcnt)
        body = json.dumps({"rxpk": [rxpk(frame)]}).encode()
        token = self.token.to_bytes(2, "big")
        self.up.sendto(b"\x02" + token + b"\x00" + self.eui + body, address)
        return b"\x02" + token + b"\x01"

    def pull(self, address: tuple[str, int]) -> bytes:
        self.token = (self.token + 1) & 0xFFFF
        token = self.token.to_bytes(2, "big")
        self.down.sendto(b"\x02" + token + b"\x02" + self.eui, address)
        return b"\x02" + token + b"\x04"

    def close(self) -> None:
        self.up.close()
        self.down.close()


def collect_acks(expected: dict[socket.socket, set[bytes]], timeout: float = 60.0) -> None:
    """Read every socket until each has received all the acks it expects."""
    deadline = time.monotonic() + timeout
    waiting = {sock: set(acks) for sock, acks in expected.items() if acks}
    while waiting:
        left = deadline - time.monotonic()
        assert left > 0, f"{sum(len(a) for a in waiting.values())} acks missing"
        ready, _, _ = select.select(list(waiting), [], [], left)
        for sock in ready:
            data = sock.recv(64)
            waiting[sock].discard(data)
            if not waiting[sock]:
                del waiting[sock]


def exchange(gateways: list[Gateway], address: tuple[str, int], ns: NetworkServerThread, round_: int) -> None:
    """Every gateway sends one PULL_DATA and one PUSH_DATA; all acks and all uplinks must arrive."""
    expected: dict[socket.socket, set[bytes]] = {}
    for number, gateway in enumerate(gateways):
        expected.setdefault(gateway.down, set()).add(gateway.pull(address))
        expected.setdefault(gateway.up, set()).add(gateway.push(address, 0x26000000 + round_ * 0x10000 + number))
    collect_acks(expected)
    uplinks = ns.uplinks(len(gateways))
    assert sorted(bytes(u.rx_metadata[0].gateway_ids.eui) for u in uplinks) == sorted(g.eui for g in gateways)
    assert all(int.from_bytes(u.raw_payload[1:5], "little") >> 16 == 0x2600 + round_ for u in uplinks)


@pytest.mark.parametrize("count", [2, 3])
def test_every_gateway_meets_its_owner_and_a_killed_worker_is_replaced(tmp_path: Path, count: int) -> None:
    with NetworkServerThread() as ns:
        daemon = Workers(tmp_path, count, ns.port)
        gateways = [Gateway(number, count) for number in range(GATEWAYS)]
        address = ("127.0.0.1", daemon.udp_port)
        try:
            pids = daemon.worker_pids()
            assert sorted(pids) == list(range(count))
            [private] = list(daemon.runtime.iterdir())  # the workers' socket directory: private, removed at exit
            assert private.stat().st_mode & 0o777 == 0o700

            exchange(gateways, address, ns, 0)
            owned = {i: sum(1 for g in gateways if g.owner == i) for i in range(count)}
            # One connection per gateway: PUSH_DATA and PULL_DATA (two source ports) met the same state, in the
            # worker the ownership rule names (a gateway split across workers would be connected twice).
            connected = daemon.scrape("gs_worker_gateways_connected")
            print(f"gateways connected per worker with {count} workers: {connected}; owned: {owned}")
            assert connected == {str(i): float(n) for i, n in owned.items()}
            assert daemon.scrape("gs_gateways_connected") == {"": float(GATEWAYS)}  # one scrape, every worker
            # Each worker's uplinks came over its own gRPC connection: one connection per owner.
            owners_by_peer: dict[str, set[int]] = {}
            for peer, eui in ns.ns.peers:
                owners_by_peer.setdefault(peer, set()).add(owner_of_eui(eui, count))
            assert sorted(min(o) for o in owners_by_peer.values()) == list(range(count)), owners_by_peer
            assert all(len(o) == 1 for o in owners_by_peer.values()), owners_by_peer

            # Kill worker 1: the supervisor starts a new one on the same index and sockets.
            victim = pids[1]
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: daemon.worker_pids()[1] != victim, timeout=60)
            assert re.search(rf"worker died, restarting it worker=1 pid={victim} exit=signal SIGKILL", daemon.log())
            assert "restarts=1" in daemon.log()
            assert not alive(victim)
            survivors = {i: pid for i, pid in daemon.worker_pids().items() if i != 1}
            assert survivors == {i: pid for i, pid in pids.items() if i != 1}

            exchange(gateways, address, ns, 1)
            # The new worker 1 connected its gateways again; nobody else's gateway reconnected.
            # The new worker 1 counts its own connections from zero, the others' counts stand: a total of exactly
            # one connection per gateway means no gateway of worker 0 or 2 had to connect again.
            wait_for(lambda: daemon.scrape("gs_gateway_connects_total") == {"": float(GATEWAYS)}, timeout=20)
            assert daemon.scrape("gs_worker_gateways_connected") == {str(i): float(n) for i, n in owned.items()}
            assert daemon.scrape("gs_worker_restarts")["1"] == 1.0

            # SIGTERM: every worker drains, the supervisor exits 0, nothing is left.
            workers = list(daemon.worker_pids().values())
            daemon.process.send_signal(signal.SIGTERM)
            assert daemon.process.wait(60) == 0, daemon.log()
            wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30)
            assert daemon.log().count("gatewayserver stopped worker=") == count
            assert not private.exists()
        finally:
            for gateway in gateways:
                gateway.close()
            daemon.kill()


def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    with NetworkServerThread() as ns:
        daemon = Workers(tmp_path, 2, ns.port)
        try:
            workers = list(daemon.worker_pids().values())
            assert len(workers) == 2 and all(alive(pid) for pid in workers)
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(30)
            wait_for(lambda: not any(alive(pid) for pid in workers), timeout=60)
            # An orderly stop (stdin end of file or PR_SET_PDEATHSIG's SIGTERM, whichever came first), not a crash.
            wait_for(lambda: daemon.log().count("gatewayserver stopped worker=") == 2, timeout=30)
        finally:
            daemon.kill()


def test_sighup_reaches_every_worker(tmp_path: Path) -> None:
    registry = tmp_path / "gateways.yml"
    registry.write_text("gateways:\n  - eui: '0080000000000001'\n    gateway_id: first\n")
    with NetworkServerThread() as ns:
        daemon = Workers(tmp_path, 2, ns.port, "--gateways", str(registry))
        try:
            registry.write_text(
                "gateways:\n  - eui: '0080000000000001'\n    gateway_id: first\n"
                "  - eui: '0080000000000002'\n    gateway_id: second\n"
            )
            daemon.process.send_signal(signal.SIGHUP)
            wait_for(lambda: daemon.log().count("gateway registry reloaded") >= 2, timeout=30)
            reloads = re.findall(r"gateway registry reloaded gateways=2 worker=(\d+)", daemon.log())
            assert sorted(reloads) == ["0", "1"]
        finally:
            daemon.kill()



def test_a_worker_that_does_not_stop_is_killed_at_the_shutdown_bound(tmp_path: Path) -> None:
    with NetworkServerThread() as ns:
        daemon = Workers(tmp_path, 2, ns.port)
        try:
            workers = daemon.worker_pids()
            os.kill(workers[1], signal.SIGSTOP)  # hung: cannot handle SIGTERM
            daemon.process.send_signal(signal.SIGTERM)
            # shutdown_timeout (2 s here) plus the supervisor's grace, then SIGKILL; exit 1 says it was not clean.
            assert daemon.process.wait(90) == 1, daemon.log()
            assert re.search(rf"worker did not stop in time, killing it worker=1 pid={workers[1]}", daemon.log())
            assert "gatewayserver stopped worker=0" in daemon.log()
            wait_for(lambda: not any(alive(pid) for pid in workers.values()), timeout=30)
        finally:
            daemon.kill()


@pytest.mark.parametrize("listed", [False, True], ids=["auto", "list"])
def test_worker_cpus_binds_each_worker_and_its_threads_and_a_restart_keeps_the_cpu(
    tmp_path: Path, listed: bool
) -> None:
    usable = sorted(os.sched_getaffinity(0))
    cpus = usable[::-1] if listed else usable  # a list in an order of the operator's own: worker i gets its i-th
    expected = {i: {cpus[i % len(cpus)]} for i in range(3)}  # cycles on a host with fewer CPUs than workers
    setting = ",".join(map(str, cpus)) if listed else "auto"

    def threads_bound(pid: int) -> set[frozenset[int]]:
        return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")}

    with NetworkServerThread() as ns:
        daemon = Workers(tmp_path, 3, ns.port, "--worker-cpus", setting)
        try:
            pids = daemon.worker_pids()
            for index, pid in pids.items():
                # Every thread, grpc's included: the worker binds itself before it starts any.
                assert threads_bound(pid) == {frozenset(expected[index])}, (index, threads_bound(pid))
                assert f"worker started worker={index} pid={pid} restarts=0 cpu={min(expected[index])}" in daemon.log()
            assert set(os.sched_getaffinity(daemon.process.pid)) == set(usable)  # the supervisor is not bound
            os.kill(pids[2], signal.SIGKILL)
            wait_for(lambda: daemon.worker_pids()[2] != pids[2], timeout=60)
            assert threads_bound(daemon.worker_pids()[2]) == {frozenset(expected[2])}
        finally:
            daemon.kill()


@pytest.mark.parametrize("listed_all", [False, True], ids=["one", "list"])
def test_worker_cpus_binds_a_single_process_daemon_too(tmp_path: Path, listed_all: bool) -> None:
    from daemon_process import DaemonProcess

    usable = sorted(os.sched_getaffinity(0), reverse=True)
    cpu = usable[0]  # the first listed
    daemon = DaemonProcess(tmp_path, "--worker-cpus", ",".join(map(str, usable if listed_all else [cpu]))).start()
    try:
        pid = daemon.process.pid
        assert {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")} == {
            frozenset({cpu})
        }
    finally:
        daemon.stop()
