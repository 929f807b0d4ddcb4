"""The `gatewayserver` command.

Subcommands are registered by the packages that own them (`register(subparsers)`), so the CLI is only a table of
contents: `run` and `config` live here, the simulator, frequency plans, keys and gateways commands beside their
code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, add_arguments, resolve

# Modules that contribute subcommands, in help order.
_REGISTRARS = (
    "gatewayserver.simulator",
    "frequency_plans.cli",
    "gatewayserver.api.keys_cli",
    "gatewayserver.admin",
    "gatewayserver.events_cli",
    "gatewayserver.healthcheck",
)


def _run(args: argparse.Namespace) -> int:
    from .daemon import run_daemon

    config = resolve(_flags(args))
    if config.workers > 1:
        from .workers.supervisor import run_supervisor

        return run_supervisor(config)
    if config.worker_cpus != "none":
        import dataclasses

        from .preflight import check_worker_cpus
        from .workers import affinity

        check_worker_cpus(config.worker_cpus)
        cpu = affinity.cpu_of(config.worker_cpus, 0, affinity.usable())
        if cpu is not None:
            affinity.bind(cpu)  # before the daemon starts any thread
        # Applied: checked again against the narrowed mask, a list would name CPUs this process may no longer use
        # (the supervisor drops the option from its workers' configuration for the same reason).
        config = dataclasses.replace(config, worker_cpus=affinity.NONE)
    return run_daemon(config)


def _config(args: argparse.Namespace) -> int:
    import yaml

    from .preflight import check

    config = resolve(_flags(args))
    check(config)  # what `run` checks before binding: a configuration `config` prints is one `run` accepts
    sys.stdout.write(yaml.safe_dump(config.to_dict(reveal_secrets=args.reveal_secrets), sort_keys=False))
    return 0


def _flags(args: argparse.Namespace) -> dict[str, object]:
    return {key: value for key, value in vars(args).items() if key not in ("func", "reveal_secrets")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatewayserver",
        description="LoRaWAN Gateway Server for Semtech UDP packet forwarders (ttn.lorawan.v3 compatible).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = subparsers.add_parser("run", help="run the daemon")
    add_arguments(run)
    run.set_defaults(func=_run)

    config = subparsers.add_parser("config", help="check the configuration as `run` would and print it as YAML")
    add_arguments(config)
    config.add_argument("--reveal-secrets", action="store_true", help="print keys instead of <redacted>")
    config.set_defaults(func=_config)

    for module_name in _REGISTRARS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left shows up here, not at interpreter exit
        return code
    except ConfigError as exc:
        label = getattr(exc, "label", "configuration error")
        sys.stderr.write(f"gatewayserver: {label}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gatewayserver ... | head`: the reader left, which is not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
