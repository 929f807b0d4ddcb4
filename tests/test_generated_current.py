"""The committed gatewayserver/ttnpb must match what proto/generate.py produces.

Generated code is committed so that installing the package needs no protoc; this
test catches a .proto edit that was not followed by a regeneration (or a
hand edit of generated code).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "proto" / "generate.py"), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        "gatewayserver/ttnpb is stale; run `python proto/generate.py`\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
