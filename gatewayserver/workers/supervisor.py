"""`gatewayserver run --workers N` (N > 1): the supervisor process that holds the sockets and keeps N workers alive.

It binds, for each `--udp-listen` address, N sockets into one `SO_REUSEPORT` group in worker order and attaches
the steering program (see steering.py), then starts worker `i` with socket `i` of every group (fd inheritance)
and its `WorkerSpec` on a stdin pipe. It never reads those sockets, but never closes one either: closing a member
would move the group's last socket into its index and silently hand some gateways to another worker. While a dead
worker is being restarted its socket keeps queueing its gateways' datagrams, which the new worker then reads.

Faults: a worker that dies is restarted with the same index and sockets after a backoff that grows with quick
successive deaths (0.5 s doubling up to 30 s, reset once a worker has lived a minute), so a crash loop costs at most
a start every 30 s. SIGHUP is passed to every worker (each reloads the registry and keys); SIGTERM/SIGINT stop
every worker within `shutdown_timeout` plus the API grace and exit 0. Workers die with the supervisor, even when
it is killed with SIGKILL (stdin end of file, and `PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass

import orjson

from .. import logs, preflight
from ..bind_errors import bind_error, probe
from ..config import OPTIONS_BY_NAME, Config, ConfigError
from . import affinity, steering
from .internal import MAX_SOCKET_PATH
from .spec import WorkerSpec, socket_path

log = logging.getLogger(__name__)

#: Receive buffer of each worker's UDP socket; the only queue while a worker restarts.
SOCKET_BUFFER = 4 * 1024 * 1024
#: Restart backoff: first delay, cap, and how long a worker must live for its next death to count as a first one.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0
#: On top of `shutdown_timeout`: the API servers' grace and the rest of an orderly stop.
STOP_GRACE = 10.0
#: A worker that has not bound its listeners by then is stuck: killed, and counted as a failed start.
START_TIMEOUT = 120.0


class WorkerStartFailed(Exception):
    def __init__(self, index: int, code: int) -> None:
        super().__init__(f"worker {index} exited with {describe_exit(code)} before it was ready")
        self.index = index
        self.code = code


def describe_exit(code: int | None) -> str:
    """`exit code 2` or `signal SIGKILL`, from a `returncode`."""
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def restart_delay(quick_deaths: int) -> float:
    """Seconds to wait before the next start after `quick_deaths` successive short-lived runs (1 for the first)."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, quick_deaths - 1))


def bind_groups(config: Config, count: int) -> list[list[socket.socket]]:
    """For each `--udp-listen` address, `count` sockets of one reuseport group, in worker order, steered.

    The address is probed first without SO_REUSEPORT: another program holding it with SO_REUSEPORT set would
    otherwise let us join its group instead of failing.
    """
    groups: list[list[socket.socket]] = []
    try:
        for address in config.udp_listen:
            host, _, port_text = address.rpartition(":")
            host = host.strip("[]")
            if int(port_text):
                code = probe(address, socket.SOCK_DGRAM)
                if code is not None:
                    raise bind_error("udp_listen", address, OSError(code, os.strerror(code)), socket.SOCK_DGRAM)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            group: list[socket.socket] = []
            groups.append(group)
            port = int(port_text)
            for _ in range(count):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                group.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    with contextlib.suppress(OSError):  # capped by net.core.rmem_max; the default still works
                        sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
                try:
                    sock.bind((host, port))
                except OSError as exc:
                    raise bind_error("udp_listen", address, exc, socket.SOCK_DGRAM) from None
                port = sock.getsockname()[1]  # port 0: the others join the port the first one got
            steering.attach(group[0], count)
    except BaseException:
        close_groups(groups)
        raise
    return groups


def close_groups(groups: list[list[socket.socket]]) -> None:
    for group in groups:
        for sock in group:
            sock.close()


def probe_api_ports(config: Config) -> None:
    """Each worker binds the API ports with SO_REUSEPORT, which would not fail on a port another program holds
    with SO_REUSEPORT too: find a taken port here, once, and say so in one line."""
    for option in ("grpc_listen", "http_listen"):
        address = getattr(config, option)
        if address and int(address.rpartition(":")[2]):
            code = probe(address, socket.SOCK_STREAM)
            if code is not None:
                raise bind_error(option, address, OSError(code, os.strerror(code)), socket.SOCK_STREAM)


def runtime_directory(count: int) -> str:
    """A private (0700) directory for the workers' Unix sockets: under systemd's RuntimeDirectory when set.

    A Unix socket address holds 107 bytes of path, so a directory too deep for the last worker's socket is refused
    here, in one line, before any worker starts (each worker would otherwise fail on its own).
    """
    base = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None
    if base is not None and not os.path.isdir(base):
        base = None
    path = tempfile.mkdtemp(prefix="gs-workers-", dir=base)
    longest = socket_path(path, count - 1)
    if len(os.fsencode(longest)) > MAX_SOCKET_PATH:
        os.rmdir(path)
        raise ConfigError(
            f"workers: the internal socket path {longest} is longer than the {MAX_SOCKET_PATH} bytes a Unix socket "
            "address holds; set RUNTIME_DIRECTORY (or TMPDIR) to a shorter directory"
        )
    return path


@dataclass
class _Slot:
    """One worker index: its sockets (held for good) and the process currently serving it."""

    index: int
    sockets: list[socket.socket]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    quick_deaths: int = 0
    started_at: float = 0.0
    watch: asyncio.Task[None] | None = None


class Supervisor:
    def __init__(self, config: Config, groups: list[list[socket.socket]], runtime_dir: str) -> None:
        self.config = config
        self.count = config.workers
        self.runtime_dir = runtime_dir
        self.secret = secrets.token_hex(32)  # authenticates the workers' internal calls; never logged
        # Only what differs from the defaults: every value then goes through the same parsing as a flag would.
        worker_config = {
            name: value
            for name, value in config.to_dict(reveal_secrets=True).items()
            if value != OPTIONS_BY_NAME[name].default
        }
        if not config.uplink_token_key:
            # One key for all workers, so any worker can verify an uplink token another one issued.
            worker_config["uplink_token_key"] = secrets.token_hex(32)
        # Binding is the supervisor's choice, handed over as each worker's one CPU: a worker checking the list
        # against its own (already narrowed) affinity would refuse every CPU but its own.
        worker_config.pop("worker_cpus", None)
        self._worker_config = worker_config
        self.slots = [_Slot(i, [group[i] for group in groups]) for i in range(self.count)]
        #: The CPU each worker binds itself to (`--worker-cpus`), kept across its restarts; None: not bound.
        self.cpus = [affinity.cpu_of(config.worker_cpus, i, affinity.usable()) for i in range(self.count)]
        self.stopping = asyncio.Event()

    def spec(self, slot: _Slot) -> WorkerSpec:
        return WorkerSpec(
            index=slot.index,
            count=self.count,
            runtime_dir=self.runtime_dir,
            secret=self.secret,
            udp_fds=tuple(sock.fileno() for sock in slot.sockets),
        )

    async def spawn(self, slot: _Slot) -> bool:
        """Start the worker of `slot`; True once it said ready, False if it exited first."""
        loop = asyncio.get_running_loop()
        ready_read, ready_write = os.pipe()
        spec = self.spec(slot)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gatewayserver.workers.worker",
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(*spec.udp_fds, ready_write),
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor, which stops workers in order
            )
        finally:
            os.close(ready_write)
        slot.process = process
        slot.started_at = time.monotonic()
        handover = {
            "config": self._worker_config,
            "restarts": slot.restarts,
            "ready_fd": ready_write,
            "supervisor_pid": os.getpid(),
            "cpu": self.cpus[slot.index],
        }
        assert process.stdin is not None
        process.stdin.write(spec.to_json() + b"\n" + orjson.dumps(handover) + b"\n")
        with contextlib.suppress(ConnectionError):
            await process.stdin.drain()
        reader = asyncio.StreamReader()
        with open(ready_read, "rb", buffering=0) as pipe:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
            try:
                ready = await asyncio.wait_for(reader.read(16), START_TIMEOUT) == b"ready"
            except TimeoutError:
                log.error("worker not ready in time, killing it", extra={"worker": slot.index, "pid": process.pid})
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                ready = False
            finally:
                transport.close()
        log.info(
            "worker started" if ready else "worker exited before it was ready",
            extra={"worker": slot.index, "pid": process.pid, "restarts": slot.restarts,
                   **({"cpu": self.cpus[slot.index]} if self.cpus[slot.index] is not None else {})},
        )
        return ready

    async def start(self) -> None:
        results = await asyncio.gather(*(self.spawn(slot) for slot in self.slots))
        for slot, ready in zip(self.slots, results, strict=True):
            if not ready:
                assert slot.process is not None
                code = await slot.process.wait()
                raise WorkerStartFailed(slot.index, code)
        for slot in self.slots:
            slot.watch = asyncio.get_running_loop().create_task(self._watch(slot))

    async def _watch(self, slot: _Slot) -> None:
        """Restart the worker of `slot` whenever it dies, until the supervisor stops."""
        while True:
            assert slot.process is not None
            code = await slot.process.wait()
            if self.stopping.is_set():
                return
            lived = time.monotonic() - slot.started_at
            slot.quick_deaths = 1 if lived >= BACKOFF_RESET_AFTER else slot.quick_deaths + 1
            delay = restart_delay(slot.quick_deaths)
            log.error(
                "worker died, restarting it",
                extra={
                    "worker": slot.index, "pid": slot.process.pid, "exit": describe_exit(code),
                    "lived_s": round(lived, 1), "restart_in_s": delay, "restarts": slot.restarts + 1,
                },
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            slot.restarts += 1
            await self.spawn(slot)

    def reload(self) -> None:
        log.info("reloading every worker (SIGHUP)")
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGHUP)

    async def stop(self) -> bool:
        """SIGTERM every worker and wait for them within the shutdown bound; True if all stopped in time."""
        self.stopping.set()
        processes = [s.process for s in self.slots if s.process is not None and s.process.returncode is None]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        bound = self.config.shutdown_timeout + STOP_GRACE
        clean = True
        if processes:
            _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in processes], timeout=bound)
            clean = not pending
        for slot in self.slots:
            left = slot.process
            if left is not None and left.returncode is None:
                log.error("worker did not stop in time, killing it", extra={"worker": slot.index, "pid": left.pid})
                with contextlib.suppress(ProcessLookupError):
                    left.kill()
                await left.wait()
        for slot in self.slots:
            if slot.watch is not None:
                slot.watch.cancel()
        await asyncio.gather(*(s.watch for s in self.slots if s.watch is not None), return_exceptions=True)
        return clean


async def _supervise(config: Config) -> int:
    loop = asyncio.get_running_loop()
    groups = bind_groups(config, config.workers)
    runtime_dir = ""
    try:
        probe_api_ports(config)
        runtime_dir = runtime_directory(config.workers)
        supervisor = Supervisor(config, groups, runtime_dir)
        loop.add_signal_handler(signal.SIGTERM, supervisor.stopping.set)
        loop.add_signal_handler(signal.SIGINT, supervisor.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, supervisor.reload)
        try:
            await supervisor.start()
        except WorkerStartFailed as exc:
            log.error("cannot start", extra={"error": str(exc)})
            await supervisor.stop()
            return 2 if exc.code == 2 else 1
        log.info(
            "workers started",
            extra={
                "pid": os.getpid(), "workers": config.workers,
                "udp": ",".join(logs.format_address(g[0].getsockname()) for g in groups),
            },
        )
        await supervisor.stopping.wait()
        log.info("stopping every worker")
        clean = await supervisor.stop()
        log.info("stopped")
        return 0 if clean else 1
    finally:
        close_groups(groups)
        if runtime_dir:
            shutil.rmtree(runtime_dir, ignore_errors=True)


def run_supervisor(config: Config) -> int:
    """`gatewayserver run` with `workers` > 1. Configuration errors raise `ConfigError` (one line, exit 2)."""
    logs.setup(config.log_level, config.log_format)
    preflight.check(config)  # the checks `run` and `config` share, steering support included
    return asyncio.run(_supervise(config))


__all__ = ["Supervisor", "bind_groups", "describe_exit", "restart_delay", "run_supervisor"]
