"""Uplinks as JSON lines, for operators who want to watch gateways before wiring a Network Server.

Each line is one `ttn.lorawan.v3.UplinkMessage` in The Things Stack's JSON shape, so the same `jq` filters work
on this output and on the reference's API. Writing is synchronous and buffered: a line costs microseconds and the
file (or pipe) is flushed once per event-loop turn rather than per uplink.
"""

from __future__ import annotations

import asyncio
import sys
from typing import IO, Any

from ..jsonpb import to_json
from .ns import ResultCallback


class JsonLinesSink:
    def __init__(self, target: str, on_result: ResultCallback) -> None:
        self._own = target not in ("", "-")
        self._out: IO[bytes] = open(target, "ab") if self._own else sys.stdout.buffer
        self._on_result = on_result
        self._flush_scheduled = False

    def start(self) -> None:
        pass

    def submit_uplink(self, uplink: Any, context: Any = None, received_ns: int = 0) -> None:
        self._out.write(to_json(uplink) + b"\n")
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        self._on_result(uplink, context, None)

    def submit_tx_ack(self, ack: Any) -> None:
        self._out.write(b'{"tx_acknowledgment":' + to_json(ack) + b"}\n")

    def _flush(self) -> None:
        self._flush_scheduled = False
        try:
            self._out.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe must not take the daemon down
            pass

    async def close(self, timeout: float) -> int:
        self._flush()
        if self._own:
            self._out.close()
        return 0
