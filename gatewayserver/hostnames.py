"""Host name validation shared by the configuration and the APIs (no heavy imports: config.py uses it)."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def valid_host(host: str) -> bool:
    """An IP address literal or an RFC 1123 host name (letters, digits, inner dashes; labels of 1-63; at most
    253 characters; not all-numeric at the top)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()
