"""What the supervisor hands each worker, and the one ownership rule both the kernel and the workers apply.

The BPF program the supervisor attaches loads the 32-bit big-endian word at offset 8 of the UDP payload (bytes
8-11: the last four bytes of the gateway EUI in PUSH_DATA, PULL_DATA and TX_ACK alike) and returns it modulo the
worker count as the index of the socket in the group. `owner_of_eui` is that same rule in Python, used to find
the owner of a gateway for a forwarded call; the two must never differ, so nothing else may compute an owner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import orjson

def owner_of_eui(eui: bytes, count: int) -> int:
    """The index of the worker that owns the gateway with this 8-byte EUI."""
    if len(eui) != 8:
        raise ValueError("a gateway EUI has 8 bytes")
    return int.from_bytes(eui[4:8], "big") % count


def socket_path(runtime_dir: str, index: int) -> str:
    """Where worker `index` serves the internal API (a Unix socket, mode 0600, in a 0700 directory)."""
    return os.path.join(runtime_dir, f"worker-{index}.sock")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One worker's place in the group. `secret` (hex) authenticates internal calls; it is never logged."""

    index: int
    count: int
    runtime_dir: str
    secret: str
    #: One inherited UDP socket per `--udp-listen` address, in the configuration's order.
    udp_fds: tuple[int, ...] = ()

    def peer_paths(self) -> list[str]:
        return [socket_path(self.runtime_dir, i) for i in range(self.count)]

    def owns(self, eui: bytes) -> bool:
        return owner_of_eui(eui, self.count) == self.index

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "index": self.index,
                "count": self.count,
                "runtime_dir": self.runtime_dir,
                "secret": self.secret,
                "udp_fds": list(self.udp_fds),
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> WorkerSpec:
        doc = orjson.loads(data)
        spec = cls(
            index=int(doc["index"]),
            count=int(doc["count"]),
            runtime_dir=str(doc["runtime_dir"]),
            secret=str(doc["secret"]),
            udp_fds=tuple(int(fd) for fd in doc.get("udp_fds", ())),
        )
        if not 0 <= spec.index < spec.count:
            raise ValueError(f"worker index {spec.index} outside 0..{spec.count - 1}")
        return spec


__all__ = ["WorkerSpec", "owner_of_eui", "socket_path"]
