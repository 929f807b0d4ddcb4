"""API keys: format, hashed storage, rights implications, reload and the `keys` CLI."""

from __future__ import annotations

import argparse
import os
import re

import orjson
import pytest

from gatewayserver.api import keys as keys_mod
from gatewayserver.api.keys import KeyStore, create_key, expand_rights, revoke_key
from gatewayserver.api.keys_cli import register
from gatewayserver.errors import GsError


def test_key_format_and_storage_hold_no_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "keys.json")
    token, record = create_key(path, "ops", ["gateway_status_read"], ["gtw1"])
    assert re.fullmatch(r"NNSXS\.[A-Z2-7]{39}\.[A-Z2-7]{64}", token)
    secret = token.split(".")[2]
    raw = open(path, "rb").read()
    assert secret.encode() not in raw
    assert record.id.encode() in raw
    # Group-readable (the daemon's group reads it), nothing for others; the group is the directory's.
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.stat(path).st_gid == os.stat(tmp_path).st_gid
    stored = orjson.loads(raw)["keys"][0]
    assert stored["rights"] == ["RIGHT_GATEWAY_STATUS_READ"] and stored["gateway_ids"] == ["gtw1"]


def test_rights_implications() -> None:
    assert "RIGHT_GATEWAY_TRAFFIC_READ" in expand_rights(["RIGHT_GATEWAY_ALL"])
    assert "RIGHT_GATEWAY_STATUS_READ" in expand_rights(["RIGHT_ALL"])
    assert "RIGHT_GATEWAY_INFO" in expand_rights(["RIGHT_GATEWAY_LINK"])
    assert "RIGHT_GATEWAY_INFO" not in expand_rights(["RIGHT_GATEWAY_STATUS_READ"])
    with pytest.raises(ValueError):
        keys_mod.normalize_right("RIGHT_TO_PARTY")


def test_authenticate_reload_and_revoke(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "keys.json")
    clock = [0.0]
    store = KeyStore(path, reload_interval=1.0, clock=lambda: clock[0])
    token, record = create_key(path, "a", ["RIGHT_GATEWAY_ALL"], ["gtw1"])
    clock[0] += 2
    principal = store.authenticate(f"Bearer {token}")
    assert principal.key_id == record.id
    assert "RIGHT_GATEWAY_TRAFFIC_READ" in principal.rights_for("gtw1")
    assert principal.rights_for("gtw2") == frozenset()
    revoke_key(path, "a")
    clock[0] += 0.5  # within the reload interval the old keys still apply
    store.authenticate(f"Bearer {token}")
    clock[0] += 1
    with pytest.raises(GsError) as info:
        store.authenticate(f"Bearer {token}")
    assert info.value.full_name == "pkg/auth:api_key_not_found"


def test_broken_file_keeps_previous_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "keys.json")
    token, _ = create_key(path, "a", ["RIGHT_GATEWAY_ALL"])
    store = KeyStore(path, reload_interval=0.0)
    with open(path, "ab") as f:
        f.write(b"garbage")
    assert store.authenticate(f"Bearer {token}").name == "a"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_create_list_revoke(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "k.json")
    assert run_cli(["keys", "create", "--keys-file", path, "--name", "grafana", "--rights",
                    "RIGHT_GATEWAY_STATUS_READ", "--gateway", "gtw1"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("NNSXS.") and token.split(".")[2] not in out.err
    assert run_cli(["keys", "list", "--keys-file", path]) == 0
    listing = capsys.readouterr().out
    assert "grafana" in listing and token.split(".")[1] in listing and token.split(".")[2] not in listing
    assert run_cli(["keys", "revoke", "--keys-file", path, "grafana"]) == 0
    assert run_cli(["keys", "revoke", "--keys-file", path, "grafana"]) == 1
    assert run_cli(["keys", "create", "--keys-file", path, "--name", "x", "--rights", "NOPE"]) == 2
