"""The operator guide's snippets are real: JSON parses, YAML options exist, commands parse with the real CLI."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml
from deploy_support import REPO

GUIDE = REPO / "docs" / "operator-guide.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_local_conf_json_overrides_the_four_gateway_keys() -> None:
    confs = [json.loads(block) for block in blocks("json")]
    local = next(conf for conf in confs if set(conf) == {"gateway_conf"})
    gateway = local["gateway_conf"]
    assert set(gateway) == {"gateway_ID", "server_address", "serv_port_up", "serv_port_down"}
    assert re.fullmatch(r"[0-9A-F]{16}", gateway["gateway_ID"])
    assert gateway["serv_port_up"] == gateway["serv_port_down"] == 1700


def test_yaml_snippets_use_real_keys() -> None:
    from gatewayserver.config import OPTIONS_BY_NAME

    for block in blocks("yaml"):
        data = yaml.safe_load(block)
        if "gateways" in data and isinstance(data["gateways"], list):
            continue  # registry file, checked below
        unknown = set(data) - set(OPTIONS_BY_NAME)
        assert not unknown, f"not configuration options: {unknown}"


def test_registry_snippet_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gatewayserver.registry import load_registry_file

    block = next(b for b in blocks("yaml") if isinstance(yaml.safe_load(b).get("gateways"), list))
    path = tmp_path / "gateways.yml"
    path.write_text(block)
    (entry,) = load_registry_file(path, "EU_863_870")
    assert entry.gateway_id == "rooftop-1" and entry.eui == bytes.fromhex("B827EBFFFE123456")


def _commands() -> list[list[str]]:
    text = GUIDE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("`").rstrip("`")
        match = re.search(r"(?:^|sudo |/bin/|\.venv/bin/)gatewayserver (.*)", line)
        if not match or line.startswith(("#", "|", "-")) or match.group(1).startswith("/"):
            continue  # not a command, or `ln -s .../bin/gatewayserver /usr/local/bin/gatewayserver`
        command = match.group(1).split(" >")[0].split("`")[0]
        out.append(shlex.split(command.replace("$F", "keys.json").replace('"$CLUSTER_KEY"', "00ff"), comments=True))
    return out


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv)[:60])
def test_documented_command_parses(argv: list[str]) -> None:
    from gatewayserver.cli import build_parser

    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert argv[0] in known, f"`gatewayserver {argv[0]}` is documented but not a command"
    parser.parse_args(argv)  # SystemExit on an unknown flag or subcommand
