"""`--worker-cpus`: which CPU each worker binds to, and the one-line refusals of what cannot be applied."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gatewayserver.config import ConfigError, resolve
from gatewayserver.workers import affinity


@pytest.mark.parametrize(
    ("given", "normalised"),
    [("none", "none"), ("", "none"), ("AUTO", "auto"), (" 0, 2 ,4", "0,2,4"), (3, "3")],
)
def test_parse_normalises(given: object, normalised: str) -> None:
    assert affinity.parse_worker_cpus(given) == normalised


@pytest.mark.parametrize("given", ["0-3", "1,,2", "a", "1,1", "-1", "123456", True])
def test_parse_refuses(given: object) -> None:
    with pytest.raises(ValueError):
        affinity.parse_worker_cpus(given)


def test_a_worker_gets_the_index_th_cpu_cycling_past_the_end() -> None:
    assert [affinity.cpu_of("auto", i, [2, 5, 7]) for i in range(4)] == [2, 5, 7, 2]
    assert [affinity.cpu_of("3,1", i, [0, 1, 2, 3]) for i in range(3)] == [3, 1, 3]
    assert affinity.cpu_of("none", 0, [0, 1]) is None


def test_a_cpu_this_process_may_not_use_is_refused_with_the_fix() -> None:
    assert affinity.check("auto", [0, 1]) is None and affinity.check("1", [0, 1]) is None
    problem = affinity.check("1,9", [0, 1])
    assert problem == ("worker_cpus: CPU 9 is not one this process may run on (usable: 0,1); list only those, "
                       "or use auto")


def test_the_option_reaches_the_configuration_from_a_flag_and_the_environment() -> None:
    assert resolve({"worker_cpus": "0"}).worker_cpus == "0"
    assert resolve({}, environ={"GS_WORKER_CPUS": "auto"}).worker_cpus == "auto"
    with pytest.raises(ConfigError):
        resolve({"worker_cpus": "zero"})


def test_config_and_run_refuse_an_unusable_cpu_in_one_line() -> None:
    foreign = str(max(os.sched_getaffinity(0)) + 1)
    for command in ("config", "run"):
        done = subprocess.run(
            [sys.executable, "-m", "gatewayserver", command, "--worker-cpus", foreign, "--udp-listen", "127.0.0.1:0",
             "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
            capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                              if not k.startswith("GS_")},
        )
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.strip().splitlines() == [
            f"gatewayserver: configuration error: worker_cpus: CPU {foreign} is not one this process may run on "
            f"(usable: {','.join(map(str, sorted(os.sched_getaffinity(0))))}); list only those, or use auto"
        ], done.stderr
