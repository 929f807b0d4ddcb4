"""Run one worker of a group as the supervisor will: the `run` flags as arguments, its `WorkerSpec` JSON on stdin.

Test-only stand-in for the supervisor of `--workers N` (built separately): it calls the daemon's worker hook,
`run_daemon(config, worker=spec)`, which is what the supervisor's workers run.
"""

from __future__ import annotations

import sys

from gatewayserver.cli import _flags, build_parser
from gatewayserver.config import resolve
from gatewayserver.daemon import run_daemon
from gatewayserver.workers.spec import WorkerSpec

if __name__ == "__main__":
    spec = WorkerSpec.from_json(sys.stdin.buffer.read())
    args = build_parser().parse_args(["run", *sys.argv[1:]])
    sys.exit(run_daemon(resolve(_flags(args)), worker=spec))
