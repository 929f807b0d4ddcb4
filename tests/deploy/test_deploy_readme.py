"""The README's set-up: exactly two commands, the first one a virtual environment (issue 10, item 19).

Debian 12, Ubuntu 23.04+ and Raspberry Pi OS mark their system Python as externally managed (PEP 668), so a bare
`pip install .` fails there; the install command must create and use a venv in the clone. The commands
themselves are run against a fresh clone by hand (see the commit log); here their shape and the CLI are checked.
"""

from __future__ import annotations

import re
import shlex

from deploy_support import REPO

README = REPO / "README.md"


def _setup_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ") and line.strip()]


def test_exactly_two_setup_commands() -> None:
    assert _setup_commands() == [
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/gatewayserver run",
        "bash .ci/test",
    ]


def test_no_pip_outside_a_virtual_environment() -> None:
    code = "\n".join(line for line in README.read_text().splitlines() if line.startswith("    "))
    assert not re.search(r"(?<![\w/.])(python3? -m pip|pip3?) install", code), \
        "a pip outside .venv fails with externally-managed-environment on Debian 12"


def test_install_command_runs_the_daemon_with_a_real_subcommand() -> None:
    from gatewayserver.cli import build_parser

    steps = [shlex.split(step) for step in _setup_commands()[0].split("&&")]
    assert steps[0] == ["python3", "-m", "venv", ".venv"]
    assert steps[1][:2] == [".venv/bin/pip", "install"]
    assert steps[2][0] == ".venv/bin/gatewayserver"
    assert build_parser().parse_args(steps[2][1:]).command == "run"


def test_the_test_command_exists() -> None:
    assert (REPO / ".ci" / "test").is_file()
