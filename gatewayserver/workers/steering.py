"""The kernel half of the ownership rule: a classic BPF program that picks a socket of an `SO_REUSEPORT` group.

For a UDP socket the program sees the datagram from the first byte of the UDP payload. A Semtech header carries
the gateway EUI in bytes 4-11 of PUSH_DATA, PULL_DATA and TX_ACK alike, so `ld [8]` loads its last four bytes as
one big-endian word, `mod #N` reduces it to a socket index and `ret a` returns it: the datagram goes to socket
`EUI mod N` of the group, which is the index of the worker holding that socket (see `spec.owner_of_eui`, the same
rule in Python). A datagram too short for the load makes the program fail; the kernel then delivers it to socket 0,
whose worker rejects it like any malformed datagram.

The indices are the order in which sockets joined the group, and closing one moves the last socket into its place:
the supervisor therefore binds the sockets in worker order and keeps every one open for its whole life.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys

#: `setsockopt(SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, struct sock_fprog)`; Linux 4.5+, from <asm-generic/socket.h>.
SO_ATTACH_REUSEPORT_CBPF = 51

# Classic BPF opcodes (<linux/filter.h>).
_BPF_LD, _BPF_W, _BPF_ABS = 0x00, 0x00, 0x20
_BPF_ALU, _BPF_MOD, _BPF_K = 0x04, 0x90, 0x00
_BPF_RET, _BPF_A = 0x06, 0x10

#: Offset in the UDP payload of the last four bytes of the gateway EUI.
EUI_WORD_OFFSET = 8


class SteeringUnavailable(OSError):
    """This system cannot attach the program: `--workers` > 1 cannot keep a gateway on one worker here."""


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    # struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }
    return struct.pack("=HBBI", code, jt, jf, k)


def program(count: int) -> bytes:
    """The filter instructions steering a datagram to socket `EUI mod count`."""
    if count < 1:
        raise ValueError("a reuseport group has at least one socket")
    return (
        _instruction(_BPF_LD | _BPF_W | _BPF_ABS, 0, 0, EUI_WORD_OFFSET)
        + _instruction(_BPF_ALU | _BPF_MOD | _BPF_K, 0, 0, count)
        + _instruction(_BPF_RET | _BPF_A, 0, 0, 0)
    )


def attach(sock: socket.socket, count: int) -> None:
    """Attach the program to the group `sock` belongs to (any member will do; the group has one program)."""
    if not sys.platform.startswith("linux"):
        raise SteeringUnavailable(f"steering datagrams to workers needs Linux; this is {sys.platform}")
    code = program(count)
    buffer = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }, native alignment.
    fprog = struct.pack("HP", len(code) // 8, ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        raise SteeringUnavailable(
            f"the kernel refused SO_ATTACH_REUSEPORT_CBPF ({exc.strerror or exc}); Linux 4.5 or later is needed"
        ) from None


def check_supported() -> None:
    """Raise `SteeringUnavailable` unless a program can be attached here (tried on a throw-away group)."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        raise SteeringUnavailable(f"steering datagrams to workers needs Linux; this is {sys.platform}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        attach(sock, 2)


__all__ = ["EUI_WORD_OFFSET", "SO_ATTACH_REUSEPORT_CBPF", "SteeringUnavailable", "attach", "check_supported", "program"]
