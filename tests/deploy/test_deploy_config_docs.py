"""docs/configuration.md is generated from the configuration schema; fail when someone forgot to regenerate it."""

from __future__ import annotations

import subprocess
import sys

from deploy_support import REPO

DOC = REPO / "docs" / "configuration.md"
REGENERATE = "python -m gatewayserver.config --markdown > docs/configuration.md"


def test_configuration_reference_is_current() -> None:
    generated = subprocess.run([sys.executable, "-m", "gatewayserver.config", "--markdown"], capture_output=True,
                               text=True, check=True, cwd=REPO, timeout=60).stdout
    assert DOC.is_file(), f"missing; run: {REGENERATE}"
    assert DOC.read_text() == generated, f"docs/configuration.md is stale; run: {REGENERATE}"


def test_configuration_reference_lists_every_option() -> None:
    from gatewayserver.config import OPTIONS

    text = DOC.read_text()
    for option in OPTIONS:
        assert f"`{option.flag}`" in text and f"`{option.env}`" in text, option.name
