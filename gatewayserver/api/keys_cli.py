"""`gatewayserver keys create|list|revoke`: manage the API keys file a running daemon reloads.

`register(subparsers)` is wired into the main command by `gatewayserver.cli`; each leaf sets
`func(args) -> exit code`. The keys file is `--keys-file`, or `GS_KEYS_FILE` as for the daemon, so the commands
work on the file the daemon reads without repeating its path. An operator's mistake (no such directory, a
directory instead of a file, an unknown right) is one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import keys


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("keys", help="manage API keys for the operator APIs")
    sub = parser.add_subparsers(dest="keys_command", metavar="{create,list,revoke}")
    sub.required = True

    create = sub.add_parser("create", help="create an API key and print it once")
    _keys_file_option(create)
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
    _keys_file_option(list_)
    list_.set_defaults(func=_list)

    revoke = sub.add_parser("revoke", help="revoke a key by ID or name")
    _keys_file_option(revoke)
    revoke.add_argument("key", help="key ID (the middle part of the key) or its name")
    revoke.set_defaults(func=_revoke)
    return parser


def _keys_file_option(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get("GS_KEYS_FILE", "")
    parser.add_argument(
        "--keys-file", default=env or None, required=not env, metavar="FILE",
        help="JSON file holding the hashed keys (default: GS_KEYS_FILE, as for `gatewayserver run`)",
    )


def _fail(message: str) -> int:
    print(f"gatewayserver keys: {message}", file=sys.stderr)
    return 2


def _file_error(path: str, exc: OSError) -> int:
    """One line for every way the keys file's path can be wrong."""
    if isinstance(exc, IsADirectoryError) or os.path.isdir(path):
        return _fail(f"{path}: is a directory; give the path of a file in it (e.g. {os.path.join(path, 'keys.json')})")
    directory = os.path.dirname(os.path.abspath(path))
    if isinstance(exc, FileNotFoundError) and not os.path.isdir(directory):
        return _fail(f"{path}: directory {directory} does not exist; create it first (mkdir -p {directory})")
    return _fail(f"{path}: {exc.strerror or exc}")


def _create(args: argparse.Namespace) -> int:
    try:
        token, record = keys.create_key(args.keys_file, args.name, args.rights, args.gateway)
    except OSError as exc:
        return _file_error(args.keys_file, exc)
    except ValueError as exc:
        return _fail(str(exc))
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
        if not os.path.isdir(os.path.dirname(os.path.abspath(args.keys_file))):
            return _file_error(args.keys_file, FileNotFoundError())
        records = []
    except OSError as exc:
        return _file_error(args.keys_file, exc)
    except ValueError as exc:
        return _fail(f"{args.keys_file}: {exc}")
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
    except FileNotFoundError as exc:
        if os.path.isdir(os.path.dirname(os.path.abspath(args.keys_file))):
            return _fail(f"{args.keys_file}: no such file; there are no keys to revoke")
        return _file_error(args.keys_file, exc)
    except OSError as exc:
        return _file_error(args.keys_file, exc)
    except ValueError as exc:
        return _fail(str(exc))
    if not removed:
        print(f"gatewayserver keys: no key {args.key!r} in {args.keys_file}", file=sys.stderr)
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
