"""Everything `run` checks about the configuration before it binds a port, in one function.

`gatewayserver run` calls `check(config)` first thing and builds the daemon from its result; `gatewayserver config`
calls the same function and exits with the same verdict. One function for both means an operator who validated a
configuration with `config` cannot be surprised by `run` refusing it, and a check added later for `run` is a check
of `config` too (tests/test_operator_cli.py runs both commands on each mistake and compares).

Files referenced by the configuration are read here (the gateway registry, frequency plan directories, TLS
material) so that a missing or unreadable file is named with the option that points at it. Ports are not: whether
a port is free can only be known by binding it, which `run` does and reports (see `bind_errors.BindError`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, ConfigError
from .registry import GatewayRegistry, RegistryError


@dataclass(frozen=True)
class Checked:
    """What the checks produced and `run` goes on to use."""

    plans: Any  # frequency_plans.FrequencyPlanStore
    registry: GatewayRegistry


def check(config: Config) -> Checked:
    """Raise `ConfigError` (one line naming the option or file and the problem) or return the loaded parts."""
    plans = load_plans(config)
    registry = load_registry(config, plans)
    for option in ("grpc_tls_cert", "grpc_tls_key", "http_tls_cert", "http_tls_key", "ns_ca_file"):
        _check_readable(option, getattr(config, option))
    if config.keys_file and os.path.isdir(config.keys_file):
        # A missing keys file is fine (created later, picked up without a restart); a directory never becomes one.
        raise ConfigError(f"keys_file: {config.keys_file}: is a directory; give the path of a file in it")
    check_uplink_token_key(config.uplink_token_key)
    if config.workers > 1:
        check_workers(config.workers)
    check_worker_cpus(config.worker_cpus)
    if config.redis_url:
        check_cluster(config)
    return Checked(plans, registry)


def check_worker_cpus(setting: str) -> None:
    from .workers import affinity

    problem = affinity.check(setting, affinity.usable() if hasattr(os, "sched_getaffinity") else [])
    if problem:
        raise ConfigError(problem)


def check_cluster(config: Config) -> None:
    """Several instances on one Redis need what lets them trust and reach each other, all set up front: an
    instance that found out at its first forwarded call would fail it in production, not at start-up."""
    from .cluster.identity import advertise_address

    if not config.cluster_key:
        raise ConfigError(
            "cluster_key: needed with redis_url: instances authenticate the calls they forward to each other with "
            "it; set the same --cluster-key on every instance"
        )
    if not config.uplink_token_key:
        raise ConfigError(
            "uplink_token_key: needed with redis_url: a downlink may reach any instance and must verify the uplink "
            "token another instance issued; set the same --uplink-token-key on every instance"
        )
    if not advertise_address(config):
        raise ConfigError(
            "cluster_advertise_address: needed with redis_url when grpc_listen is a wildcard address (0.0.0.0, ::) "
            "or port 0: set the HOST:PORT at which the other instances reach this instance's gRPC port"
        )


def check_uplink_token_key(key_hex: str) -> None:
    """A key the token HMAC would refuse must stop `run` here, in one line, not as a traceback at start-up."""
    from .tokens import _MIN_KEY

    if key_hex and len(key_hex) < 2 * _MIN_KEY:
        raise ConfigError(
            f"uplink_token_key: {len(key_hex) // 2} bytes is too short: at least {_MIN_KEY} bytes "
            f"({2 * _MIN_KEY} hex digits); make one with `openssl rand -hex 32`"
        )


def check_workers(count: int) -> None:
    """More than one worker only where the kernel can steer each gateway's datagrams to one of them."""
    from .workers.steering import SteeringUnavailable, check_supported

    try:
        check_supported()
    except SteeringUnavailable as exc:
        raise ConfigError(f"workers: {count} workers cannot run here: {exc}; use --workers 1") from None


def load_plans(config: Config) -> Any:
    from frequency_plans.loader import FrequencyPlanError, FrequencyPlanStore, UnknownFrequencyPlan

    try:
        plans = FrequencyPlanStore([Path(d) for d in config.frequency_plans_dir])
    except FrequencyPlanError as exc:
        raise ConfigError(f"frequency_plans_dir: {exc}") from None
    try:
        plans.get(config.frequency_plan)
    except UnknownFrequencyPlan:
        raise ConfigError(
            f"frequency_plan: unknown plan {config.frequency_plan!r}; "
            "`gatewayserver frequency-plans list` shows the plan ids"
        ) from None
    return plans


def load_registry(config: Config, plans: Any) -> GatewayRegistry:
    try:
        if config.gateways:
            return GatewayRegistry.from_file(
                config.gateways,
                fallback_frequency_plan=config.frequency_plan,
                require_registered=config.require_registered,
                frequency_plans=plans,  # unknown ids and plans of different bands are refused here (and on reload)
            )
        return GatewayRegistry(fallback_frequency_plan=config.frequency_plan, frequency_plans=plans)
    except RegistryError as exc:
        raise ConfigError(f"gateways: {exc}") from None


def _check_readable(option: str, path: str) -> None:
    if not path:
        return
    if os.path.isdir(path):
        raise ConfigError(f"{option}: {path}: is a directory, not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{option}: {path}: cannot read: {exc.strerror}") from None
