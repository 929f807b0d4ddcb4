"""`gatewayserver gateways`: ask a running daemon which gateways are connected.

It talks to the daemon's HTTP API like any other client (`GET /api/v3/gs/gateways/connections`, an extension of
ours next to the reference's per-gateway stats), so it works against a daemon on another host and needs an API key
with RIGHT_GATEWAY_STATUS_READ like the stats endpoints do.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any

CONNECTIONS_PATH = "/api/v3/gs/gateways/connections"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gateways", help="list the gateways connected to a running daemon")
    parser.add_argument(
        "--http", default=os.environ.get("GS_HTTP_ADDRESS", "http://127.0.0.1:1885"),
        help="daemon HTTP base URL (default http://127.0.0.1:1885, or GS_HTTP_ADDRESS)",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("GS_API_KEY", ""),
        help="API key with RIGHT_GATEWAY_STATUS_READ (or GS_API_KEY)",
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON instead of a table")
    parser.add_argument("--insecure", action="store_true", help="do not verify the daemon's TLS certificate")
    parser.set_defaults(func=_gateways)


def fetch_connections(base_url: str, api_key: str, *, insecure: bool = False, timeout: float = 10.0) -> list[Any]:
    request = urllib.request.Request(base_url.rstrip("/") + CONNECTIONS_PATH)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    context = ssl._create_unverified_context() if insecure else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        document = json.load(response)
    return list(document.get("gateways", []))


def _ago(iso: str | None, now: float) -> str:
    if not iso:
        return "-"
    from datetime import datetime

    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return iso
    seconds = max(0, int(now - then))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def format_table(gateways: list[dict[str, Any]], now: float | None = None) -> str:
    now = time.time() if now is None else now
    header = ("GATEWAY ID", "EUI", "ADDRESS", "CONNECTED", "LAST UPLINK", "UPLINKS", "RTT", "SUB-BAND USE")
    rows = [header]
    for gw in gateways:
        rtt = gw.get("rtt_median_ms")
        bands = [
            f"{int(sb['min_frequency']) / 1e6:g}-{int(sb['max_frequency']) / 1e6:g}:"
            f"{100 * float(sb.get('utilization', 0)):.1f}%"
            for sb in gw.get("sub_bands", [])
            if float(sb.get("utilization", 0)) > 0
        ]
        rows.append(
            (
                gw.get("gateway_id", ""),
                gw.get("eui", ""),
                gw.get("address", ""),
                _ago(gw.get("connected_at"), now),
                _ago(gw.get("last_uplink_received_at"), now),
                str(gw.get("uplink_count", 0)),
                f"{rtt:.0f}ms" if isinstance(rtt, int | float) else "-",
                " ".join(bands) or "-",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _gateways(args: argparse.Namespace) -> int:
    try:
        gateways = fetch_connections(args.http, args.api_key, insecure=args.insecure)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        sys.stderr.write(f"gatewayserver gateways: HTTP {exc.code}: {body}\n")
        return 1
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"gatewayserver gateways: cannot reach {args.http}: {exc}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps({"gateways": gateways}, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(gateways) + "\n")
    return 0
