"""`frequency-plans list|show` subcommands: let operators see exactly what a plan id resolves to."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .loader import FrequencyPlanError, FrequencyPlanStore, UnknownFrequencyPlan, to_json_dict

__all__ = ["register", "add_commands"]

_DIR_HELP = "extra directory of frequency plan files; repeatable, later ones override earlier ids"


def _dirs(args: argparse.Namespace) -> list[Path]:
    # The option may be given before the leaf command, after it, or both: keep every occurrence in order.
    return [
        *(getattr(args, "frequency_plans_dir", None) or []),
        *(getattr(args, "frequency_plans_dir_leaf", None) or []),
    ]


def _load(args: argparse.Namespace) -> FrequencyPlanStore | None:
    try:
        return FrequencyPlanStore(_dirs(args))
    except FrequencyPlanError as exc:
        print(f"frequency plans: {exc}", file=sys.stderr)
        return None


def _cmd_list(args: argparse.Namespace) -> int:
    store = _load(args)
    if store is None:
        return 1
    rows = [("ID", "BAND", "NAME")] + [(p.id, p.band_id, p.name) for p in store.plans()]
    id_width = max(len(r[0]) for r in rows)
    band_width = max(len(r[1]) for r in rows)
    for plan_id, band_id, name in rows:
        print(f"{plan_id:<{id_width}}  {band_id:<{band_width}}  {name}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    store = _load(args)
    if store is None:
        return 1
    try:
        plan = store.get(args.id)
    except UnknownFrequencyPlan as exc:
        print(f"frequency plans: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(to_json_dict(plan), indent=2))
    return 0


def _add_dir_option(parser: argparse.ArgumentParser, dest: str) -> None:
    # SUPPRESS: never overwrite a value the enclosing parser already set with a default.
    parser.add_argument(
        "--frequency-plans-dir",
        dest=dest,
        metavar="DIR",
        type=Path,
        action="append",
        default=argparse.SUPPRESS,
        help=_DIR_HELP,
    )


def add_commands(subparsers: Any) -> None:
    """Add `list` and `show ID` leaves to a subparsers object."""
    list_parser = subparsers.add_parser("list", help="list frequency plans (id, band, name)")
    _add_dir_option(list_parser, "frequency_plans_dir_leaf")
    list_parser.set_defaults(func=_cmd_list)
    show_parser = subparsers.add_parser("show", help="print one frequency plan as JSON")
    show_parser.add_argument("id", metavar="ID", help="frequency plan id, e.g. EU_863_870")
    _add_dir_option(show_parser, "frequency_plans_dir_leaf")
    show_parser.set_defaults(func=_cmd_show)


def register(subparsers: Any) -> None:
    """Add the `frequency-plans` command (with `list` and `show ID`) to the gatewayserver CLI."""
    parser = subparsers.add_parser("frequency-plans", help="inspect frequency plans")
    _add_dir_option(parser, "frequency_plans_dir")
    leaves = parser.add_subparsers(dest="frequency_plans_command", metavar="{list,show}")
    leaves.required = True
    add_commands(leaves)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m frequency_plans list|show ID`."""
    parser = argparse.ArgumentParser(prog="python -m frequency_plans", description="Inspect frequency plans.")
    _add_dir_option(parser, "frequency_plans_dir")
    leaves = parser.add_subparsers(dest="frequency_plans_command", metavar="{list,show}")
    leaves.required = True
    add_commands(leaves)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `... | head`: the reader left, which is not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
