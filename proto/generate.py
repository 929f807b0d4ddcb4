#!/usr/bin/env python3
"""Generate ``gatewayserver/ttnpb`` from ``proto/ttn/lorawan/v3/*.proto``.

protoc names Python modules after the proto path (``ttn.lorawan.v3.x_pb2``),
but we ship them inside ``gatewayserver.ttnpb`` so they never clash with another
copy of the TTS API on ``sys.path``. The descriptor file names stay
``ttn/lorawan/v3/*.proto`` so gRPC reflection and ``Any`` type URLs look exactly
like The Things Stack's. Only imports of our own modules are rewritten; imports
of ``google.protobuf`` stay absolute.

Usage::

    python proto/generate.py           # regenerate in place
    python proto/generate.py --check   # exit 1 and list files that are stale

The output depends on the grpcio-tools version (pinned in pyproject.toml), so
``--check`` compares byte for byte.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
PROTO_PACKAGE_DIR = Path("ttn/lorawan/v3")
OUT_DIR = REPO_ROOT / "gatewayserver" / "ttnpb"
OUT_PACKAGE = "gatewayserver.ttnpb"

# Files in OUT_DIR that are written by hand and must be left alone.
HAND_WRITTEN = frozenset({"__init__.py"})
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")

# `from ttn.lorawan.v3 import x_pb2 ...` -> `from . import x_pb2 ...`
_FROM_IMPORT = re.compile(r"^(\s*)from ttn\.lorawan\.v3 import ", re.MULTILINE)
# `import ttn.lorawan.v3.x_pb2 as alias` (not emitted today; guard for future protoc versions).
_PLAIN_IMPORT = re.compile(r"^(\s*)import ttn\.lorawan\.v3\.(\w+)( as \w+)?$", re.MULTILINE)
# The module name protoc hands to the builder becomes each class's __module__;
# point it at the real module so pickling and repr() find the classes.
_MODULE_NAME = re.compile(r"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, )'ttn\.lorawan\.v3\.(\w+)'")


def proto_files() -> list[Path]:
    """Proto paths relative to PROTO_ROOT, sorted so protoc sees a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PROTO_PACKAGE_DIR).glob("*.proto"))


def _is_generated(name: str) -> bool:
    return name.endswith(GENERATED_SUFFIXES)


def rewrite_imports(source: str) -> str:
    source = _FROM_IMPORT.sub(r"\1from . import ", source)

    def plain(m: re.Match[str]) -> str:
        alias = m.group(3) or f" as {m.group(2)}"
        return f"{m.group(1)}from . import {m.group(2)}{alias}"

    source = _PLAIN_IMPORT.sub(plain, source)
    source = _MODULE_NAME.sub(rf"\1'{OUT_PACKAGE}.\2'", source)
    if re.search(r"\bttn\.lorawan\.v3\.\w+_pb2\b", _strip_descriptor_literals(source)) or re.search(
        r"'ttn\.lorawan\.v3\.\w+_pb2'", source
    ):
        raise RuntimeError("an absolute import of ttn.lorawan.v3 survived the rewrite")
    return source


def _strip_descriptor_literals(source: str) -> str:
    """Drop string literals so names inside serialized descriptors do not trip the guard."""
    return re.sub(r"b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\"", "''", source)


def generate(out_dir: Path) -> list[str]:
    """Run protoc for every proto file and write rewritten modules to out_dir.

    Returns the names of the files written.
    """
    import grpc_tools
    from grpc_tools import protoc  # imported lazily: only needed at build time

    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    files = proto_files()
    if not files:
        raise RuntimeError(f"no .proto files under {PROTO_ROOT / PROTO_PACKAGE_DIR}")

    with tempfile.TemporaryDirectory(prefix="ttnpb-protoc-") as raw:
        raw_dir = Path(raw)
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={well_known}",
            f"--python_out={raw_dir}",
            f"--pyi_out={raw_dir}",
            f"--grpc_python_out={raw_dir}",
            *(str(f) for f in files),
        ]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc}")

        produced = sorted((raw_dir / PROTO_PACKAGE_DIR).iterdir())
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path in produced:
            if not _is_generated(path.name):
                continue
            text = rewrite_imports(path.read_text(encoding="utf-8"))
            (out_dir / path.name).write_text(text, encoding="utf-8", newline="\n")
            written.append(path.name)
    return written


def generated_files_in(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.is_file() and _is_generated(p.name)}


def check(out_dir: Path = OUT_DIR) -> list[str]:
    """Describe every difference between a fresh generation and out_dir (empty when current)."""
    with tempfile.TemporaryDirectory(prefix="ttnpb-check-") as tmp:
        fresh_dir = Path(tmp)
        fresh = set(generate(fresh_dir))
        current = generated_files_in(out_dir)
        problems = []
        for name in sorted(fresh - current):
            problems.append(f"missing: {name}")
        for name in sorted(current - fresh):
            problems.append(f"not generated from any .proto (delete it): {name}")
        for name in sorted(fresh & current):
            if not filecmp.cmp(fresh_dir / name, out_dir / name, shallow=False):
                problems.append(f"stale: {name}")
        if not (out_dir / "__init__.py").is_file():
            problems.append("missing: __init__.py (hand-written)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether gatewayserver/ttnpb is current")
    opts = parser.parse_args(argv)

    if opts.check:
        problems = check()
        if problems:
            print(f"{OUT_DIR.relative_to(REPO_ROOT)} is out of date; run: python proto/generate.py", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"{OUT_DIR.relative_to(REPO_ROOT)} is up to date")
        return 0

    written = set(generate(OUT_DIR))
    for leftover in sorted(generated_files_in(OUT_DIR) - written):
        (OUT_DIR / leftover).unlink()
        print(f"removed {leftover}")
    print(f"wrote {len(written)} files to {OUT_DIR.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
