"""Uplinks as JSON lines, for operators who want to watch gateways before wiring a Network Server.

Each line is one `ttn.lorawan.v3.UplinkMessage` in The Things Stack's JSON shape, so the same `jq` filters work
on this output and on the reference's API. Writing is synchronous and batched: a line costs microseconds and the
file (or pipe) is written once per event-loop turn rather than per uplink.

Every write holds whole lines only, at most `PIPE_BUF` bytes when the lines allow: with `--workers` several
processes write to the same pipe or file, and a write of at most `PIPE_BUF` bytes to a pipe (or any write to a
file opened for appending) is never interleaved with another process's, so lines never mix.
"""

from __future__ import annotations

import asyncio
import select
import sys
from typing import IO, Any

from ..jsonpb import to_json
from .ns import ResultCallback


def whole_line_chunks(lines: list[bytes], limit: int) -> list[bytes]:
    """`lines` joined into chunks of at most `limit` bytes, never splitting a line (a longer line is one chunk)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > limit:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append(b"".join(current))
    return chunks


class JsonLinesSink:
    def __init__(self, target: str, on_result: ResultCallback) -> None:
        self._own = target not in ("", "-")
        self._out: IO[bytes] = open(target, "ab") if self._own else sys.stdout.buffer
        self._on_result = on_result
        self._flush_scheduled = False
        self._pending: list[bytes] = []

    def start(self) -> None:
        pass

    def submit_uplink(self, uplink: Any, context: Any = None, received_ns: int = 0) -> None:
        self._write(to_json(uplink) + b"\n")
        self._on_result(uplink, context, None)

    def submit_tx_ack(self, ack: Any) -> None:
        self._write(b'{"tx_acknowledgment":' + to_json(ack) + b"}\n")

    def _write(self, line: bytes) -> None:
        self._pending.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        try:
            for chunk in whole_line_chunks(pending, select.PIPE_BUF):
                self._out.write(chunk)
                self._out.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe must not take the daemon down
            pass

    async def close(self, timeout: float) -> int:
        self._flush()
        if self._own:
            self._out.close()
        return 0
