"""Run a command under the seccomp rule systemd installs for `MemoryDenyWriteExecute=yes`.

systemd implements the option as a seccomp filter refusing (EPERM) `mmap` with PROT_WRITE|PROT_EXEC together,
`mprotect`/`pkey_mprotect` with PROT_EXEC and `shmat` with SHM_EXEC. systemd is not PID 1 in CI, so this script
installs the same filter itself and execs the command: whatever runs under it would run under the unit.

Usage: python mdwe_exec.py COMMAND [ARG...]
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
SHM_EXEC = 0o100000

# audit arch, and syscall numbers of mmap, mprotect, pkey_mprotect, shmat.
ARCHES = {
    "x86_64": (0xC000003E, 9, 10, 329, 30),
    "aarch64": (0xC00000B7, 222, 226, 288, 196),
}

BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_AND_K = 0x54
BPF_RET_K = 0x06
OFF_NR = 0
OFF_ARCH = 4
OFF_ARG2 = 16 + 2 * 8  # low 32 bits of args[2] (little-endian)


def build() -> list[tuple[int, int, int, int]]:
    """Assemble with labels (BPF jumps only forward); simpler to audit than hand-counted offsets."""
    arch, mmap, mprotect, pkey_mprotect, shmat = ARCHES[platform.machine()]
    allow = ("ret", SECCOMP_RET_ALLOW)
    deny = ("ret", SECCOMP_RET_ERRNO | EPERM)
    src: list[tuple] = [
        ("ld", OFF_ARCH),
        ("jeq", arch, None, "allow"),
        ("ld", OFF_NR),
        ("jeq", mmap, "mmap", None),
        ("jeq", mprotect, "mprotect", None),
        ("jeq", pkey_mprotect, "mprotect", None),
        ("jeq", shmat, "shmat", "allow"),
        ("label", "mmap"),
        ("ld", OFF_ARG2),
        ("and", PROT_WRITE | PROT_EXEC),
        ("jeq", PROT_WRITE | PROT_EXEC, "deny", "allow"),
        ("label", "mprotect"),
        ("ld", OFF_ARG2),
        ("and", PROT_EXEC),
        ("jeq", 0, "allow", "deny"),
        ("label", "shmat"),
        ("ld", OFF_ARG2),
        ("and", SHM_EXEC),
        ("jeq", 0, "allow", "deny"),
        ("label", "deny"),
        deny,
        ("label", "allow"),
        allow,
    ]
    labels: dict[str, int] = {}
    pc = 0
    for ins in src:
        if ins[0] == "label":
            labels[ins[1]] = pc
        else:
            pc += 1
    out: list[tuple[int, int, int, int]] = []
    for ins in src:
        op = ins[0]
        if op == "label":
            continue
        here = len(out)
        if op == "ld":
            out.append((BPF_LD_W_ABS, 0, 0, ins[1]))
        elif op == "and":
            out.append((BPF_AND_K, 0, 0, ins[1]))
        elif op == "ret":
            out.append((BPF_RET_K, 0, 0, ins[1]))
        elif op == "jeq":
            jt = 0 if ins[2] is None else labels[ins[2]] - here - 1
            jf = 0 if ins[3] is None else labels[ins[3]] - here - 1
            assert 0 <= jt < 256 and 0 <= jf < 256
            out.append((BPF_JEQ_K, jt, jf, ins[1]))
    return out


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    code = build()
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in code)
    buf = ctypes.create_string_buffer(raw, len(raw))
    prog = SockFprog(len(code), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    install()
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
