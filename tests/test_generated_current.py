"""The committed gatewayserver/ttnpb must match what proto/generate.py produces.

Generated code is committed so that installing the package needs no protoc; this
test catches a .proto edit that was not followed by a regeneration (or a
hand edit of generated code).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_ttnpb_generate", REPO_ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_reports_every_kind_of_drift(tmp_path: Path) -> None:
    """Guards against a --check that passes vacuously: drift in a copy must be reported."""
    generator = _load_generator()
    copy = tmp_path / "ttnpb"
    shutil.copytree(REPO_ROOT / "gatewayserver" / "ttnpb", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert generator.check(copy) == []

    with (copy / "messages_pb2.py").open("a", encoding="utf-8") as f:
        f.write("# edited by hand\n")
    (copy / "events_pb2_grpc.py").unlink()
    (copy / "removed_pb2.py").write_text("", encoding="utf-8")

    assert generator.check(copy) == [
        "missing: events_pb2_grpc.py",
        "not generated from any .proto (delete it): removed_pb2.py",
        "stale: messages_pb2.py",
    ]


def test_generated_modules_import_only_relatively() -> None:
    """Absolute `ttn.lorawan.v3` imports would only work with the proto dir on sys.path."""
    for path in sorted((REPO_ROOT / "gatewayserver" / "ttnpb").glob("*_pb2*.py*")):
        text = path.read_text(encoding="utf-8")
        assert "from ttn.lorawan" not in text, path.name
        assert "import ttn.lorawan" not in text, path.name
