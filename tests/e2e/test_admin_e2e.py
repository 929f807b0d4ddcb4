"""`gatewayserver gateways` against a running daemon, over its real HTTP API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import Forwarder, Harness, data_frame, next_uplink, rxpk


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gatewayserver", *args], capture_output=True, text=True, timeout=60)


def test_gateways_command_lists_connected_gateways(tmp_path: Path):
    keys = tmp_path / "keys.json"
    created = _cli("keys", "create", "--keys-file", str(keys), "--name", "ops", "--rights", "RIGHT_GATEWAY_STATUS_READ")
    assert created.returncode == 0, created.stderr
    api_key = created.stdout.strip().splitlines()[0]
    assert api_key.startswith("NNSXS.")
    harness = Harness(keys_file=str(keys)).start()
    fwd = Forwarder(harness.udp_address, bytes.fromhex("ABCDEF0123456789"))
    try:
        fwd.push({"rxpk": [rxpk(data_frame(fcnt=1))]})
        next_uplink(harness.ns)
        base = f"http://127.0.0.1:{harness.daemon.api.http.port}"

        table = _cli("gateways", "--http", base, "--api-key", api_key)
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.strip().splitlines()
        assert header.split()[:3] == ["GATEWAY", "ID", "EUI"]
        assert row.split()[:3] == ["eui-abcdef0123456789", "ABCDEF0123456789", "127.0.0.1"]

        raw = _cli("gateways", "--http", base, "--api-key", api_key, "--json")
        doc = json.loads(raw.stdout)
        (gateway,) = doc["gateways"]
        assert gateway["uplink_count"] == 1 and gateway["connected_at"].endswith("Z")

        refused = _cli("gateways", "--http", base)
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    finally:
        fwd.close()
        harness.stop()
