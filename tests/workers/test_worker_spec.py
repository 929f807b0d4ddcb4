"""The ownership rule is the BPF program's: the last four EUI bytes, big-endian, modulo the worker count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayserver.workers.spec import WorkerSpec, owner_of_eui, socket_path


def test_owner_is_the_last_four_eui_bytes_modulo_the_count() -> None:
    assert owner_of_eui(bytes.fromhex("0016c001ff000001"), 2) == 1
    assert owner_of_eui(bytes.fromhex("0016c001ff000003"), 3) == 0
    assert owner_of_eui(bytes.fromhex("ffffffff00000005"), 4) == 1  # the first four bytes do not count
    with pytest.raises(ValueError):
        owner_of_eui(b"\x01\x02", 2)


@given(st.binary(min_size=8, max_size=8), st.integers(min_value=1, max_value=64))
def test_exactly_one_worker_owns_each_gateway(eui: bytes, count: int) -> None:
    owners = [
        i for i in range(count) if WorkerSpec(index=i, count=count, runtime_dir="/run/x", secret="00").owns(eui)
    ]
    assert len(owners) == 1


def test_spec_round_trips_and_refuses_an_index_out_of_range() -> None:
    spec = WorkerSpec(index=1, count=3, runtime_dir="/run/gs", secret="ab" * 32, udp_fds=(5, 6))
    assert WorkerSpec.from_json(spec.to_json()) == spec
    assert spec.peer_paths() == [socket_path("/run/gs", i) for i in range(3)]
    with pytest.raises(ValueError):
        WorkerSpec.from_json(WorkerSpec(index=3, count=3, runtime_dir="/x", secret="00").to_json())
