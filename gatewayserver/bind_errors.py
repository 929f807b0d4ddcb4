"""Turn a listener's failed bind into one line an operator can act on.

Each library reports a taken port its own way: uvloop says `could not bind to local_addr (...)` and keeps the errno
on `__cause__`, grpc raises a bare `RuntimeError("Failed to bind ...")` with no errno at all, aiohttp passes the
`OSError` through. `bind_error` finds the errno (for grpc by binding the same address once more itself, which
fails the same way while the other process holds it) and says what it means and which flag picks another address.
"""

from __future__ import annotations

import errno
import os
import socket

from .config import OPTIONS_BY_NAME, ConfigError


class BindError(ConfigError):
    """A listener could not bind; the message names the option, the address, the cause and the fix."""

    label = "cannot start"


def bind_error(option: str, address: str, exc: BaseException, sock_type: int) -> BindError:
    """The `BindError` for `address` (the value of `option`) failing with `exc`; `sock_type` is SOCK_DGRAM/STREAM."""
    code = errno_of(exc)
    if code is None:
        code = probe(address, sock_type)
    host, _, port = address.rpartition(":")
    flag = OPTIONS_BY_NAME[option].flag
    proto = "UDP" if sock_type == socket.SOCK_DGRAM else "TCP"
    if code == errno.EADDRINUSE:
        cause = (
            f"address already in use: another process is using {proto} port {port} "
            f"(`ss -l{'u' if proto == 'UDP' else 't'}np 'sport = :{port}'` shows which); stop it, "
            f"or pick another port with {flag}"
        )
    elif code == errno.EACCES:
        cause = (
            f"permission denied: {proto} ports below 1024 need root or CAP_NET_BIND_SERVICE; "
            f"grant it, or pick a port above 1023 with {flag}"
        )
    elif code == errno.EADDRNOTAVAIL:
        cause = (
            f"address not available: {host} is not an address of this machine; "
            f"pick one of its addresses (or 0.0.0.0) with {flag}"
        )
    elif code is not None:
        cause = f"{os.strerror(code).lower()}; check the address given with {flag}"
    else:
        cause = f"{' '.join(str(exc).split())}; check the address given with {flag}"
    return BindError(f"{option} {address}: cannot bind: {cause}")


def errno_of(exc: BaseException | None) -> int | None:
    """The first errno along the exception's cause/context chain."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc.errno
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def probe(address: str, sock_type: int) -> int | None:
    """Bind `address` once with a throw-away socket: the errno the failing listener must have met, or None."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=sock_type, flags=socket.AI_PASSIVE)
    except (OSError, ValueError):
        return None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if kind == socket.SOCK_STREAM:  # as every TCP server does: a port in TIME_WAIT is not "in use"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        return None
    except OSError as exc:
        return exc.errno
    finally:
        sock.close()
