"""One worker process: `python -m gatewayserver.workers.worker`, started only by the supervisor.

What it is handed comes through its stdin pipe, never argv or the environment (both readable by other local
users in /proc, and the spec holds the internal API secret): a first line with the `WorkerSpec`, a second with the
supervisor's resolved configuration, its restart count, the fd of the pipe on which to say "ready", the
supervisor's pid and the CPU to bind to (`--worker-cpus`). The pipe then stays open as a lifeline: when it
reaches end of file the supervisor is gone (killed with SIGKILL included), and the worker stops like on SIGTERM.
`PR_SET_PDEATHSIG` is the second line of defence, for a worker blocked where it cannot notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from typing import Any

import orjson

from ..config import ConfigError, resolve
from . import affinity
from .metrics import WORKER_RESTARTS
from .spec import WorkerSpec

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: The most bytes the supervisor's two lines may take; anything longer is not from it.
_MAX_HANDOVER = 1 << 20


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send SIGTERM when the supervisor dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # died between our fork and the prctl: nobody would signal us
        raise SystemExit(1)


def read_handover(fd: int = 0) -> tuple[WorkerSpec, dict[str, Any]]:
    """The two lines the supervisor writes on stdin (read unbuffered, so nothing past them is consumed)."""
    data = b""
    while data.count(b"\n") < 2:
        chunk = os.read(fd, 65536)
        if not chunk or len(data) > _MAX_HANDOVER:
            raise SystemExit("gatewayserver worker: no hand-over on stdin; workers are started by `run --workers`")
        data += chunk
    spec_line, doc_line, _ = data.split(b"\n", 2)
    return WorkerSpec.from_json(spec_line), orjson.loads(doc_line)


def main() -> int:
    spec, doc = read_handover()
    if doc.get("cpu") is not None:
        affinity.bind(int(doc["cpu"]))  # first, while this is the only thread: grpc's threads inherit the mask
    die_with_parent(int(doc["supervisor_pid"]))
    ready_fd = int(doc["ready_fd"])
    WORKER_RESTARTS.labels(str(spec.index)).set(int(doc.get("restarts", 0)))
    try:
        config = resolve(doc["config"], environ={})
    except ConfigError as exc:
        sys.stderr.write(f"gatewayserver: worker {spec.index}: configuration error: {exc}\n")
        return 2

    def started(stop: asyncio.Event) -> None:
        os.write(ready_fd, b"ready")
        os.close(ready_fd)
        loop = asyncio.get_running_loop()

        def on_stdin() -> None:
            try:
                data = os.read(0, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(0)
                log.warning("supervisor gone (stdin closed), stopping")
                stop.set()

        os.set_blocking(0, False)
        loop.add_reader(0, on_stdin)

    from ..daemon import run_daemon

    try:
        return run_daemon(config, spec, started)
    except ConfigError as exc:
        label = getattr(exc, "label", "configuration error")
        sys.stderr.write(f"gatewayserver: worker {spec.index}: {label}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
