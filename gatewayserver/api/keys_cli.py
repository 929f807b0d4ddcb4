"""`gatewayserver keys create|list|revoke`: manage the API keys file a running daemon reloads.

`register(subparsers)` is wired into the main command by `gatewayserver.cli`; each leaf sets
`func(args) -> exit code`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import keys


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("keys", help="manage API keys for the operator APIs")
    sub = parser.add_subparsers(dest="keys_command", metavar="{create,list,revoke}")
    sub.required = True

    create = sub.add_parser("create", help="create an API key and print it once")
    create.add_argument("--keys-file", required=True, help="JSON file holding the hashed keys")
    create.add_argument("--name", required=True, help="a label for the key (e.g. who uses it)")
    create.add_argument(
        "--rights",
        nargs="+",
        required=True,
        metavar="RIGHT",
        help="rights by Right enum name, e.g. RIGHT_GATEWAY_STATUS_READ RIGHT_GATEWAY_TRAFFIC_READ",
    )
    create.add_argument(
        "--gateway", action="append", metavar="ID", help="restrict the key to this gateway (repeatable)"
    )
    create.set_defaults(func=_create)

    list_ = sub.add_parser("list", help="list keys (IDs, names, rights; never secrets)")
    list_.add_argument("--keys-file", required=True)
    list_.set_defaults(func=_list)

    revoke = sub.add_parser("revoke", help="revoke a key by ID or name")
    revoke.add_argument("--keys-file", required=True)
    revoke.add_argument("key", help="key ID (the middle part of the key) or its name")
    revoke.set_defaults(func=_revoke)
    return parser


def _create(args: argparse.Namespace) -> int:
    try:
        token, record = keys.create_key(args.keys_file, args.name, args.rights, args.gateway)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"created key {record.id} ({record.name}) with {', '.join(sorted(record.rights))}"
        + (f" for {', '.join(sorted(record.gateway_ids))}" if record.gateway_ids else " for all gateways")
        + "; store it now, it cannot be shown again",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        records = keys.load_keys_file(args.keys_file)
    except FileNotFoundError:
        records = []
    if not records:
        print("no keys")
        return 0
    print(f"{'ID':<39}  {'NAME':<20}  {'CREATED':<20}  {'GATEWAYS':<20}  RIGHTS")
    for k in records:
        gateways = ",".join(sorted(k.gateway_ids)) if k.gateway_ids else "*"
        print(f"{k.id:<39}  {k.name:<20}  {k.created_at:<20}  {gateways:<20}  {' '.join(sorted(k.rights))}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        removed = keys.revoke_key(args.keys_file, args.key)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not removed:
        print(f"error: no key {args.key!r}", file=sys.stderr)
        return 1
    for k in removed:
        print(f"revoked {k.id} ({k.name})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (`python -m gatewayserver.api.keys_cli keys ...`) until the CLI is wired."""
    parser = argparse.ArgumentParser(prog="gatewayserver")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
