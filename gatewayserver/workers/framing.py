"""The frames workers exchange on their internal Unix stream connections: a sans-I/O codec.

Why not gRPC: a grpc.aio call costs about 270 µs of CPU on each side, a length-prefixed frame on a plain asyncio
stream about 12 µs; with two workers half of all forwarded ScheduleDownlink calls paid that difference.

One frame is `length` (u32, big-endian: the bytes after it), `kind` (u8), `request id` (u32), then the payload.
A connection starts with one HELLO frame from the client carrying the worker secret; after that the client opens
calls by request id (many at once on one connection) and the server answers each id:

    client → server   HELLO(0, secret)   CALL(id, deadline ms, method, body)   OPEN(id, window, method, body)
                      CANCEL(id)         CREDIT(id, n)
    server → client   RESPONSE(id, body) ERROR(id, ErrorDetails)   ITEM(id, body)   END(id)

A unary call ends with RESPONSE or ERROR. A server stream sends ITEMs, never more than the credit the client has
granted (the OPEN window, then CREDIT frames as it reads), and ends with END or ERROR; CANCEL ends either early.
ERROR id 0 refuses the whole connection (a wrong secret).

Nothing here reads a clock or touches a socket: `FrameDecoder.feed` takes bytes and returns whole frames, and
raises `FrameError` with a short, bounded reason for anything malformed. It never holds more than one frame's
bytes: a length above `max_frame` is refused before its payload is read.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HELLO = 1
CALL = 2
OPEN = 3
CANCEL = 4
CREDIT = 5
RESPONSE = 6
ERROR = 7
ITEM = 8
END = 9

CLIENT_KINDS = frozenset({HELLO, CALL, OPEN, CANCEL, CREDIT})
SERVER_KINDS = frozenset({RESPONSE, ERROR, ITEM, END})

_HEADER = struct.Struct(">IBI")  # length (of what follows it), kind, request id
HEADER_SIZE = _HEADER.size
_MIN_LENGTH = HEADER_SIZE - 4  # kind and request id
_CALL = struct.Struct(">IB")  # deadline ms (CALL) or window (OPEN), method name length
_U32 = struct.Struct(">I")

#: The largest frame a connection accepts once authenticated (a peer's whole /metrics exposition, a batch of
#: connection stats for many gateways): the same bound as the gRPC transport's receive limit before it.
MAX_FRAME = 64 << 20
#: The largest frame before the secret was presented: a HELLO is a few dozen bytes, so an unauthenticated peer
#: cannot make this process buffer more than this.
MAX_HELLO_FRAME = 256
MAX_METHOD = 255
MAX_U32 = 0xFFFF_FFFF


class Frame(NamedTuple):
    kind: int
    request_id: int
    payload: bytes


class FrameError(Exception):
    """Malformed input; `reason` is a bounded label for the `gs_worker_frames_rejected_total` counter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class FrameDecoder:
    """Bytes in, frames out, for one direction of one connection.

    `kinds` are the frame kinds this side may receive; anything else is refused. `max_frame` may be raised once
    the peer is authenticated."""

    __slots__ = ("_buffer", "kinds", "max_frame")

    def __init__(self, kinds: frozenset[int], max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self.kinds = kinds
        self.max_frame = max_frame

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet: non-zero at end of stream means the peer stopped mid-frame."""
        return len(self._buffer)

    def feed(self, data: bytes, max_frames: int | None = None) -> list[Frame]:
        """The frames `data` completes. With `max_frames`, stop after that many and keep the rest unparsed, for
        the next call to read under a limit changed meanwhile (the server reads the HELLO alone under
        `MAX_HELLO_FRAME`, then the calls pipelined right behind it under `MAX_FRAME`)."""
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        pos = 0
        end = len(buffer)
        while end - pos >= 4 and (max_frames is None or len(frames) < max_frames):
            # Each field is checked as soon as it is readable, not once the rest arrives: no waiting on a lie.
            (length,) = _U32.unpack_from(buffer, pos)
            if length > self.max_frame:
                raise FrameError("oversize", f"{length} bytes, at most {self.max_frame}")
            if length < _MIN_LENGTH:
                raise FrameError("short", f"length {length}")
            if end - pos > 4 and buffer[pos + 4] not in self.kinds:
                raise FrameError("kind", f"kind {buffer[pos + 4]}")
            stop = pos + 4 + length
            if stop > end:
                break
            _, kind, request_id = _HEADER.unpack_from(buffer, pos)
            frames.append(Frame(kind, request_id, bytes(buffer[pos + HEADER_SIZE : stop])))
            pos = stop
        if pos:
            del buffer[:pos]
        return frames


# --- encoding -----------------------------------------------------------------------------------------------------


def encode(kind: int, request_id: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(len(payload) + _MIN_LENGTH, kind, request_id) + payload


def encode_call(kind: int, request_id: int, method: bytes, number: int, body: bytes) -> bytes:
    """A CALL (`number`: the deadline in ms) or an OPEN (`number`: the initial window, in items)."""
    if len(method) > MAX_METHOD:
        raise ValueError("method name too long")
    head = _CALL.pack(min(max(number, 0), MAX_U32), len(method))
    return _HEADER.pack(_MIN_LENGTH + len(head) + len(method) + len(body), kind, request_id) + head + method + body


def decode_call(payload: bytes) -> tuple[bytes, int, bytes]:
    """(method, deadline ms or window, body) of a CALL or OPEN payload."""
    if len(payload) < _CALL.size:
        raise FrameError("call", "payload too short")
    number, method_length = _CALL.unpack_from(payload, 0)
    start = _CALL.size
    if len(payload) < start + method_length:
        raise FrameError("call", "method name truncated")
    return payload[start : start + method_length], number, payload[start + method_length :]


def encode_u32(value: int) -> bytes:
    return _U32.pack(min(max(value, 0), MAX_U32))


def decode_u32(payload: bytes) -> int:
    if len(payload) != 4:
        raise FrameError("credit", f"{len(payload)} bytes")
    (value,) = _U32.unpack(payload)
    return int(value)


__all__ = [
    "CALL",
    "CANCEL",
    "CLIENT_KINDS",
    "CREDIT",
    "END",
    "ERROR",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "HEADER_SIZE",
    "HELLO",
    "ITEM",
    "MAX_FRAME",
    "MAX_HELLO_FRAME",
    "OPEN",
    "RESPONSE",
    "SERVER_KINDS",
    "decode_call",
    "decode_u32",
    "encode",
    "encode_call",
    "encode_u32",
]
