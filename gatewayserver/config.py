"""Configuration: one schema, four sources.

Every option is declared once in `OPTIONS`. The same declaration produces the command-line flag, the `GS_*`
environment variable, the YAML key and the generated reference in `docs/configuration.md`, so the four can never
drift apart. Precedence is flags > environment > YAML file > embedded defaults: an operator's one-off flag beats
the unit file's environment, which beats the shared config file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from gatewayserver.hostnames import valid_host
from gatewayserver.workers.affinity import parse_worker_cpus


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the option and the source."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90s`, `800ms`, `3m` or `1h`; operators write durations every way."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 800ms, 3m)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_address(value: Any) -> str:
    """`HOST:PORT` with a numeric port; `[::1]:1700` for IPv6."""
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"not HOST:PORT: {value!r}")
    if not host:
        raise ValueError(f"missing host in {value!r}")
    return text


def parse_optional_address(value: Any) -> str:
    """Empty (not configured) or `HOST:PORT`."""
    text = str(value).strip()
    return parse_address(text) if text else ""


def parse_optional_host(value: Any) -> str:
    """Empty (not configured), or a host name or IP address without a port."""
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text and not valid_host(text):
        raise ValueError(f"not a host name or IP address (no port, no scheme): {value!r}")
    return text


_PUBLIC_ADDRESS = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])(?::[0-9]{1,5})?"
)


def parse_public_address(value: Any) -> str:
    """Empty, or `host[:port]` as `ttn.lorawan.v3.MQTTConnectionInfo` allows it (a DNS name or IPv4 address)."""
    text = str(value).strip()
    if text and not _PUBLIC_ADDRESS.fullmatch(text):
        raise ValueError("must be host[:port], for example mqtt.example.com:1883")
    return text


_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def parse_instance_id(value: Any) -> str:
    """Empty (the host name at start-up), or a name peers and Redis keys can carry as it is."""
    text = str(value).strip()
    if text and not _INSTANCE_ID.fullmatch(text):
        raise ValueError(f"not an instance ID: {value!r} (letters, digits, '.', '_', '-'; at most 63)")
    return text


def parse_redis_url(value: Any) -> str:
    """Empty (no Redis), or `redis://[[user]:password@]host[:port][/db]`; `rediss://` for TLS."""
    text = str(value).strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("must start with redis:// or rediss:// (rediss: TLS)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if not parts.hostname or (port is not None and port == 0):
        raise ValueError("must name a host, e.g. redis://redis.example.com:6379/0")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ValueError(f"the database after the host must be a number, not {database!r}")
    return text


def redact_url(value: Any) -> str:
    """The URL with its password (and user) replaced, so `config` and logs can name the server."""
    parts = urlsplit(str(value))
    if parts.password is None and parts.username is None:
        return str(value)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = "<redacted>@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_hex_key(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
        raise ValueError("must be an even number of hex digits")
    return text.lower()


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    number = int(value)
    if number < 0:
        raise ValueError(f"negative: {value!r}")
    return number


def parse_workers(value: Any) -> int:
    """A positive number of worker processes, or `auto`: the CPUs this process may run on."""
    if isinstance(value, bool):
        raise ValueError(f"not a worker count: {value!r}")
    text = str(value).strip().lower()
    if text == "auto":
        return usable_cpus()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"not a worker count: {value!r} (a number of at least 1, or auto)")
    return int(text)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which cgroups and `taskset` narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def parse_positive_int(value: Any) -> int:
    number = parse_int(value)
    if number < 1:
        raise ValueError(f"must be at least 1: {value!r}")
    return number


def parse_str(value: Any) -> str:
    return str(value)


def parse_log_level(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("debug", "info", "warning", "error"):
        raise ValueError("one of debug, info, warning, error")
    return text


def parse_log_format(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("json", "text"):
        raise ValueError("one of json, text")
    return text


@dataclasses.dataclass(frozen=True)
class Option:
    """One configuration option, as seen from every source."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    section: str
    repeated: bool = False
    secret: bool = False
    metavar: str | None = None
    #: For a secret that is only partly secret (a URL with a password): what `config` may show of it.
    redact: Callable[[Any], Any] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "GS_" + self.name.upper()


def _opt(section: str, name: str, default: Any, parse: Callable[[Any], Any], help: str, **kw: Any) -> Option:
    return Option(name=name, default=default, parse=parse, help=help, section=section, **kw)


OPTIONS: tuple[Option, ...] = (
    # Listeners
    _opt("listeners", "udp_listen", ["0.0.0.0:1700"], parse_address,
         "UDP address for Semtech packet forwarders (repeatable).", repeated=True, metavar="ADDR"),
    _opt("listeners", "grpc_listen", "0.0.0.0:1884", parse_address,
         "gRPC address for Gs, NsGs, Events and GatewayConfigurationService.", metavar="ADDR"),
    _opt("listeners", "http_listen", "0.0.0.0:1885", parse_address,
         "HTTP address for the /api/v3 REST bindings, /metrics, /healthz and /readyz.", metavar="ADDR"),
    _opt("listeners", "grpc_tls_cert", "", parse_str, "PEM certificate for the gRPC listener (TLS when set).",
         metavar="FILE"),
    _opt("listeners", "grpc_tls_key", "", parse_str, "PEM private key for the gRPC listener.", metavar="FILE"),
    _opt("listeners", "http_tls_cert", "", parse_str, "PEM certificate for the HTTP listener (TLS when set).",
         metavar="FILE"),
    _opt("listeners", "http_tls_key", "", parse_str, "PEM private key for the HTTP listener.", metavar="FILE"),
    # Gateways
    _opt("gateways", "gateways", "", parse_str,
         "YAML gateway registry (EUI to gateway id, plan, location, ...). Reloaded on SIGHUP.", metavar="FILE"),
    _opt("gateways", "frequency_plan", "EU_863_870", parse_str,
         "Fallback frequency plan for gateways without one in the registry.", metavar="ID"),
    _opt("gateways", "frequency_plans_dir", [], parse_str,
         "Directory with extra frequency plan YAML files (repeatable).", repeated=True, metavar="DIR"),
    _opt("gateways", "require_registered", False, parse_bool,
         "Refuse gateways that are not in the registry instead of admitting them as eui-<eui>."),
    # UDP connections
    _opt("udp", "connection_expires", 180.0, parse_duration,
         "A gateway silent for this long is disconnected."),
    _opt("udp", "downlink_path_expires", 90.0, parse_duration,
         "Without PULL_DATA or TX_ACK for this long a gateway's downlink path is considered gone."),
    _opt("udp", "flood_datagrams", 10, parse_int,
         "Flood guard: a datagram is dropped when the N-th previous one with the same EUI from the same source "
         "address (IP and port) arrived within flood_window. 0 disables the guard."),
    _opt("udp", "flood_window", 0.010, parse_duration, "Flood guard window."),
    _opt("udp", "address_change_block", 0.0, parse_duration,
         "Refuse datagrams from a new IP for this long after the last one from the old IP, and PULL_DATA from "
         "a new address or port while the downlink path got PULL_DATA within this long (0: off). Protects "
         "against EUI spoofing at the cost of slower NAT changes; make it longer than keepalive_interval."),
    _opt("udp", "max_gateways", 100_000, parse_int,
         "Room for unregistered gateways: past this many connections the least recently active unregistered "
         "one is evicted for a newcomer. Registered gateways are always admitted."),
    _opt("udp", "new_gateways_per_source", 100, parse_int,
         "New unregistered gateways one source host may connect per second; more are refused (counted as "
         "source_limit) so that one host cycling EUIs cannot starve the others. Registered gateways are not "
         "counted. 0: no limit."),
    _opt("udp", "max_rxpk_per_datagram", 16, parse_positive_int,
         "Most rxpk entries one PUSH_DATA may carry (reference forwarders send at most 8 to 16); bounds the work "
         "one datagram can cause. A PUSH_DATA with more is refused whole, counted once as too_many_rxpk; one whose "
         "body holds more JSON values than that many rxpk can (counted as commas and braces) is refused before "
         "it is parsed, as too_many_values."),
    _opt("udp", "schedule_late_time", 0.8, parse_duration,
         "Hold PULL_RESP until this long before transmission for gateways without a jit queue."),
    # Upstream
    _opt("upstream", "ns_address", "", parse_optional_address,
         "Network Server gRPC address HOST:PORT. Without it uplinks are written as JSON lines.",
         metavar="HOST:PORT"),
    _opt("upstream", "ns_route", [], parse_str,
         "Route uplinks whose DevAddr matches PREFIX/BITS to another Network Server: "
         "'26000000/7=ns2.example:1884' (repeatable). Joins go to --ns-address.", repeated=True,
         metavar="PREFIX/BITS=HOST:PORT"),
    _opt("upstream", "ns_tls", False, parse_bool, "Use TLS towards the Network Server."),
    _opt("upstream", "ns_ca_file", "", parse_str, "CA bundle to verify the Network Server (implies TLS).",
         metavar="FILE"),
    _opt("upstream", "cluster_key", "", parse_hex_key,
         "Shared cluster key: sent as 'authorization: ClusterKey <hex>' to the Network Server and required "
         "from callers of NsGs.ScheduleDownlink.", secret=True, metavar="HEX"),
    _opt("upstream", "ns_api_key", "", parse_str,
         "Bearer key sent to the Network Server instead of the cluster key.", secret=True, metavar="KEY"),
    _opt("upstream", "upstream_deadline", 5.0, parse_duration, "Deadline of one call to the Network Server."),
    _opt("upstream", "upstream_max_in_flight", 256, parse_int,
         "Concurrent calls to each Network Server."),
    _opt("upstream", "upstream_queue_size", 20000, parse_int,
         "Uplinks waiting for a free call slot; beyond it the oldest is dropped (counted) for the newest."),
    _opt("upstream", "upstream_retries", 3, parse_int,
         "Retries of transient failures (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) per uplink."),
    _opt("upstream", "upstream_max_age", 6.0, parse_duration,
         "Drop an uplink (counted as stale) instead of sending or retrying it once this long has passed since "
         "its datagram arrived, and drop the oldest first when the queue is full. 6s is the last class A "
         "receive window with LoRaWAN's default timings (join-accept RX2; also RX2 with The Things Stack's "
         "5 s RX1 delay): the Network Server can no longer answer an older uplink. 0: never drop for age."),
    _opt("upstream", "forward_crc_failed", False, parse_bool, "Forward uplinks whose CRC failed."),
    _opt("upstream", "uplink_output", "-", parse_str,
         "Without --ns-address: where uplink JSON lines go ('-' for stdout, or a file path).", metavar="PATH"),
    _opt("upstream", "uplink_token_key", "", parse_hex_key,
         "HMAC key for uplink tokens (hex). Random per start when empty; set it when several instances share "
         "Network Servers.", secret=True, metavar="HEX"),
    # APIs
    _opt("api", "keys_file", "", parse_str, "API keys file (hashed secrets only); reloaded on change.",
         metavar="FILE"),
    _opt("api", "gcs_server_address", "", parse_optional_host,
         "Public host name or IP address of the UDP listener, written into generated global_conf.json "
         "(server_address). Set it on any daemon reachable from the internet. Empty: the host name the file was "
         "requested on (the request's Host header), if it is a valid host name or IP address; otherwise the "
         "request fails with no_server_address.", metavar="HOST"),
    _opt("api", "mqtt_public_address", "", parse_public_address,
         "MQTT address (host[:port]) GtwGs.GetMQTTConnectionInfo hands to gateways. Empty with the TLS one "
         "empty too: the call answers UNIMPLEMENTED (no_configuration_provider).", metavar="HOST[:PORT]"),
    _opt("api", "mqtt_public_tls_address", "", parse_public_address,
         "MQTT over TLS address (host[:port]) for GtwGs.GetMQTTConnectionInfo.", metavar="HOST[:PORT]"),
    _opt("api", "mqttv2_public_address", "", parse_public_address,
         "Legacy (The Things Network Stack V2) MQTT address for GtwGs.GetMQTTV2ConnectionInfo.",
         metavar="HOST[:PORT]"),
    _opt("api", "mqttv2_public_tls_address", "", parse_public_address,
         "Legacy MQTT over TLS address for GtwGs.GetMQTTV2ConnectionInfo.", metavar="HOST[:PORT]"),
    _opt("api", "events_history_size", 10000, parse_int,
         "Events kept in memory for tail, after and FindRelated, in total."),
    _opt("api", "events_history_per_gateway", 1000, parse_int,
         "Events kept in memory per gateway, so one gateway's flood of events cannot evict every other "
         "gateway's history. 0: only the total bound applies."),
    _opt("api", "events_history_age", 3600.0, parse_duration, "Oldest event kept for tail and after."),
    _opt("api", "events_subscriber_buffer", 1024, parse_int,
         "Events buffered per stream subscriber before it is dropped as too slow."),
    _opt("api", "events_max_gateway_ids", 1000, parse_int,
         "Most gateway identifiers one event stream request may name; beyond it the request is refused "
         "(INVALID_ARGUMENT, HTTP 400)."),
    _opt("api", "events_max_streams_per_key", 10, parse_int,
         "Most event streams one API key may have open at once (with several workers: in all of them "
         "together); beyond it new streams are refused (RESOURCE_EXHAUSTED, HTTP 429)."),
    _opt("api", "events_max_streams", 100, parse_int,
         "Most event streams open at once in total (with several workers: in all of them together); beyond "
         "it new streams are refused (RESOURCE_EXHAUSTED, HTTP 429)."),
    _opt("api", "stats_retention", 172800.0, parse_duration,
         "How long a disconnected gateway's connection stats stay readable."),
    # Logging
    _opt("logging", "log_level", "info", parse_log_level, "debug, info, warning or error."),
    _opt("logging", "log_format", "text", parse_log_format, "text or json (one object a line)."),
    _opt("logging", "shutdown_timeout", 5.0, parse_duration,
         "On SIGTERM, how long to wait for in-flight upstream calls."),
    # Process
    _opt("process", "workers", 1, parse_workers,
         "Worker processes sharing the listeners, each owning the gateways whose EUI modulo N is its index "
         "(the kernel steers each datagram to its owner). 'auto': one per usable CPU. 1: a single process, no "
         "supervisor. More than 1 needs Linux (SO_ATTACH_REUSEPORT_CBPF).", metavar="N|auto"),
    _opt("process", "worker_cpus", "none", parse_worker_cpus,
         "Bind each worker to one CPU: 'auto' worker i to the i-th usable CPU, or a list such as 0,2,4 (cycled "
         "when there are more workers than CPUs); fewer cross-core hand-offs, less CPU per uplink on a host whose "
         "cores the daemon has to itself. 'none': the kernel places them. With 1 worker: the one process.",
         metavar="none|auto|LIST"),
    # Cluster
    _opt("cluster", "redis_url", "", parse_redis_url,
         "Redis shared by several instances (events, connection stats, which instance owns a gateway): "
         "redis://[:PASSWORD@]HOST[:PORT][/DB], rediss:// for TLS. Empty: a single instance, no Redis.",
         secret=True, redact=redact_url, metavar="URL"),
    _opt("cluster", "instance_id", "", parse_instance_id,
         "This instance's name among the instances sharing redis_url (default: the host name); unique per "
         "instance.", metavar="ID"),
    _opt("cluster", "cluster_advertise_address", "", parse_optional_address,
         "HOST:PORT at which the other instances reach this instance's gRPC port (default: grpc_listen unless it "
         "is a wildcard address such as 0.0.0.0).", metavar="HOST:PORT"),
)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def _fields() -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    for option in OPTIONS:
        default = option.default
        if isinstance(default, list):
            out.append((option.name, list[Any], dataclasses.field(default_factory=default.copy)))
        else:
            out.append((option.name, type(default), dataclasses.field(default=default)))
    return out


_ConfigBase = dataclasses.make_dataclass("_ConfigBase", _fields(), frozen=True)


class Config(_ConfigBase):  # type: ignore[misc, valid-type]
    """The effective configuration. Attribute names are the option names in `OPTIONS`."""

    def to_dict(self, *, reveal_secrets: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for option in OPTIONS:
            value = getattr(self, option.name)
            if option.secret and value and not reveal_secrets:
                value = option.redact(value) if option.redact is not None else "<redacted>"
            out[option.name] = list(value) if isinstance(value, list) else value
        return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per option. Defaults are suppressed so we can tell what the operator actually passed."""
    parser.add_argument("--config", metavar="FILE", default=None, help="YAML configuration file.")
    sections: dict[str, argparse._ArgumentGroup] = {}
    for option in OPTIONS:
        group = sections.setdefault(option.section, parser.add_argument_group(option.section))
        kwargs: dict[str, Any] = {"dest": option.name, "default": argparse.SUPPRESS, "help": option.help}
        if option.parse is parse_bool:
            kwargs["nargs"] = "?"
            kwargs["const"] = "true"
            kwargs["metavar"] = "BOOL"
        elif option.metavar:
            kwargs["metavar"] = option.metavar
        if option.repeated:
            kwargs["action"] = "append"
        group.add_argument(option.flag, **kwargs)


def _convert(option: Option, raw: Any, source: str) -> Any:
    try:
        if option.repeated:
            if isinstance(raw, str):
                items: Iterable[Any] = [item for item in re.split(r"[,\s]+", raw) if item]
            elif isinstance(raw, list | tuple):
                items = raw
            else:
                items = [raw]
            return [option.parse(item) for item in items]
        return option.parse(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {option.name}: {exc}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of option names")
    return data


def resolve(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Config:
    """Merge the sources, highest precedence first: flags, `GS_*` environment, YAML file, defaults."""
    flags = dict(flags or {})
    environ = os.environ if environ is None else environ
    config_file = config_file or flags.pop("config", None) or environ.get("GS_CONFIG") or None
    file_values: dict[str, Any] = {}
    if config_file:
        for key, raw in load_yaml(config_file).items():
            name = str(key).replace("-", "_")
            if name not in OPTIONS_BY_NAME:
                raise ConfigError(f"{config_file}: {key}: unknown option")
            file_values[name] = raw
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.name in flags and flags[option.name] is not None:
            values[option.name] = _convert(option, flags[option.name], f"flag {option.flag}")
        elif option.env in environ:
            values[option.name] = _convert(option, environ[option.env], f"environment {option.env}")
        elif option.name in file_values:
            values[option.name] = _convert(option, file_values[option.name], str(config_file))
    config = Config(**values)
    _check(config)
    return config


def _check(config: Config) -> None:
    if config.require_registered and not config.gateways:
        raise ConfigError("require_registered: needs a gateway registry (--gateways FILE)")
    if bool(config.grpc_tls_cert) != bool(config.grpc_tls_key):
        raise ConfigError("grpc_tls_cert/grpc_tls_key: set both or neither")
    if bool(config.http_tls_cert) != bool(config.http_tls_key):
        raise ConfigError("http_tls_cert/http_tls_key: set both or neither")
    if config.ns_route and not config.ns_address:
        raise ConfigError("ns_route: needs a default Network Server (--ns-address)")


def markdown_reference() -> str:
    """The configuration reference in docs/configuration.md, generated from `OPTIONS`."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `gatewayserver/config.py` by `python -m gatewayserver.config --markdown`; do not edit.",
        "",
        "Precedence: command-line flag > `GS_*` environment variable > YAML file (`--config FILE`, keys as in "
        "the first column) > default. Durations accept `90`, `90s`, `800ms`, `3m`, `1h`. Repeatable options "
        "take the flag several times, a YAML list, or a comma-separated environment value.",
        "",
    ]
    section = None
    for option in OPTIONS:
        if option.section != section:
            section = option.section
            lines += [f"## {section}", "", "| key | flag | environment | default | meaning |", "|---|---|---|---|---|"]
        default = option.default
        if isinstance(default, list):
            default_text = ", ".join(default) if default else "(none)"
        elif isinstance(default, bool):
            default_text = str(default).lower()
        elif default == "":
            default_text = "(empty)"
        else:
            default_text = str(default)
        repeat = " (repeatable)" if option.repeated else ""
        lines.append(
            f"| `{option.name}` | `{option.flag}`{repeat} | `{option.env}` | `{default_text}` | {option.help} |"
        )
        next_index = OPTIONS.index(option) + 1
        if next_index == len(OPTIONS) or OPTIONS[next_index].section != section:
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - exercised through the docs freshness test
    import sys

    if sys.argv[1:] == ["--markdown"]:
        sys.stdout.write(markdown_reference())
    else:
        sys.stderr.write("usage: python -m gatewayserver.config --markdown\n")
        sys.exit(2)
