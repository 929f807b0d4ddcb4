"""A too short `uplink_token_key` (say, a hand-typed one in GS_UPLINK_TOKEN_KEY) is one line and exit 2 from both
`config` and `run`, like every other configuration mistake, never a traceback from the token HMAC at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

EPHEMERAL = ["--udp-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
             "--uplink-output", os.devnull]


def _gs(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
    env["GS_UPLINK_TOKEN_KEY"] = "abcd" * 4  # 8 bytes: the HMAC needs 16
    return subprocess.run([sys.executable, "-m", "gatewayserver", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_short_uplink_token_key_is_one_line_exit_2_from_config_and_run() -> None:
    for result in (_gs("config"), _gs("run", *EPHEMERAL)):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "uplink_token_key: 8 bytes is too short: at least 16 bytes" in lines[0], lines[0]
        assert "abcd" not in result.stderr, "a secret, even a bad one, is not echoed"


def test_a_16_byte_key_is_accepted() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
    result = subprocess.run([sys.executable, "-m", "gatewayserver", "config", "--uplink-token-key", "ab" * 16],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
