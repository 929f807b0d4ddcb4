"""Configuration precedence and validation: flags > GS_* environment > YAML > defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gatewayserver.config import OPTIONS, ConfigError, parse_duration, resolve


def test_defaults_are_the_documented_ones():
    config = resolve({}, environ={})
    assert config.udp_listen == ["0.0.0.0:1700"]
    assert config.grpc_listen == "0.0.0.0:1884"
    assert config.http_listen == "0.0.0.0:1885"
    assert config.frequency_plan == "EU_863_870"
    assert config.connection_expires == 180.0
    assert config.downlink_path_expires == 90.0
    assert (config.flood_datagrams, config.flood_window) == (10, 0.010)
    assert config.address_change_block == 0.0
    assert config.schedule_late_time == 0.8
    assert config.ns_address == "" and config.require_registered is False


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path: Path):
    config_file = tmp_path / "config.yml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "frequency_plan": "US_902_928_FSB_2",
                "grpc_listen": "127.0.0.1:2001",
                "http-listen": "127.0.0.1:2002",  # dashes accepted like the flag spelling
                "udp_listen": ["127.0.0.1:2003", "127.0.0.1:2004"],
                "connection_expires": "2m",
            }
        )
    )
    environ = {"GS_GRPC_LISTEN": "127.0.0.1:3001", "GS_HTTP_LISTEN": "127.0.0.1:3002"}
    flags = {"http_listen": "127.0.0.1:4002", "config": str(config_file)}
    config = resolve(flags, environ=environ)
    assert config.http_listen == "127.0.0.1:4002"  # flag
    assert config.grpc_listen == "127.0.0.1:3001"  # environment
    assert config.frequency_plan == "US_902_928_FSB_2"  # file
    assert config.udp_listen == ["127.0.0.1:2003", "127.0.0.1:2004"]
    assert config.connection_expires == 120.0
    assert config.downlink_path_expires == 90.0  # default


def test_environment_names_the_config_file_and_repeatable_values_split(tmp_path: Path):
    config_file = tmp_path / "c.yml"
    config_file.write_text("require_registered: true\ngateways: /nonexistent.yml\n")
    config = resolve({}, environ={"GS_CONFIG": str(config_file), "GS_UDP_LISTEN": "127.0.0.1:1,127.0.0.1:2"})
    assert config.require_registered is True
    assert config.udp_listen == ["127.0.0.1:1", "127.0.0.1:2"]


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"udp_listen": ["nonsense"]}, {}, "flag --udp-listen: udp_listen: not HOST:PORT"),
        ({}, {"GS_CONNECTION_EXPIRES": "soon"}, "environment GS_CONNECTION_EXPIRES: connection_expires"),
        ({}, {"GS_CLUSTER_KEY": "xyz"}, "cluster_key: must be an even number of hex digits"),
        ({"ns_address": "nonsense"}, {}, "flag --ns-address: ns_address: not HOST:PORT"),
        ({"require_registered": "true"}, {}, "require_registered: needs a gateway registry"),
        ({"ns_route": ["26000000/7=ns2:1884"]}, {}, "ns_route: needs a default Network Server"),
        ({"grpc_tls_cert": "/x.pem"}, {}, "grpc_tls_cert/grpc_tls_key: set both or neither"),
    ],
)
def test_bad_values_name_the_option_and_source(flags, environ, message):
    with pytest.raises(ConfigError) as info:
        resolve(flags, environ=environ)
    assert message in str(info.value)


def test_output_into_a_closed_pipe_is_not_an_error(monkeypatch):
    """`gatewayserver frequency-plans list | head`: the reader leaves early, the command ends quietly with 0."""
    import io
    import os

    from gatewayserver.cli import main

    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write_end, "w")), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["frequency-plans", "list"]) == 0
    stdout.close()


def test_unknown_yaml_key_is_an_error(tmp_path: Path):
    config_file = tmp_path / "c.yml"
    config_file.write_text("udp_lisen: 127.0.0.1:1700\n")
    with pytest.raises(ConfigError, match="udp_lisen: unknown option"):
        resolve({"config": str(config_file)}, environ={})


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("800ms", 0.8), ("3m", 180.0), ("1h", 3600.0), (2, 2.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_every_option_has_a_flag_env_and_help():
    flags = {o.flag for o in OPTIONS}
    envs = {o.env for o in OPTIONS}
    assert len(flags) == len(envs) == len(OPTIONS)
    assert all(o.help.endswith(".") or o.help.endswith(")") for o in OPTIONS)


def test_config_command_prints_effective_configuration_with_secrets_redacted():
    result = subprocess.run(
        [sys.executable, "-m", "gatewayserver", "config", "--cluster-key", "00aa", "--frequency-plan", "AS_923"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "GS_HTTP_LISTEN": "127.0.0.1:9999"},
    )
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["cluster_key"] == "<redacted>"
    assert printed["frequency_plan"] == "AS_923"
    assert printed["http_listen"] == "127.0.0.1:9999"


def test_issue_flags_exist_with_their_names():
    from gatewayserver.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    option_strings = {s for action in run._actions for s in action.option_strings}
    for flag in (
        "--udp-listen", "--gateways", "--frequency-plan", "--require-registered", "--ns-address", "--cluster-key",
        "--http-listen", "--grpc-listen", "--config", "--frequency-plans-dir", "--keys-file",
    ):
        assert flag in option_strings, flag


def test_max_rxpk_per_datagram_from_every_source(tmp_path: Path):
    assert resolve({}, environ={}).max_rxpk_per_datagram == 16
    config_file = tmp_path / "c.yml"
    config_file.write_text("max_rxpk_per_datagram: 24\n")
    assert resolve({"config": str(config_file)}, environ={}).max_rxpk_per_datagram == 24
    assert resolve({}, environ={"GS_MAX_RXPK_PER_DATAGRAM": "32"}).max_rxpk_per_datagram == 32
    assert resolve({"max_rxpk_per_datagram": "8"}, environ={}).max_rxpk_per_datagram == 8
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="max_rxpk_per_datagram"):
            resolve({"max_rxpk_per_datagram": bad}, environ={})
