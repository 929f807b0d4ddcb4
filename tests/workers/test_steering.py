"""The steering program over real sockets: a datagram reaches socket `EUI mod N` of the group the supervisor binds,
whatever its source port, and the refusal when the kernel cannot attach the program is one line, exit 2."""

from __future__ import annotations

import os
import select
import socket
import struct

import pytest

from gatewayserver import cli
from gatewayserver.config import resolve
from gatewayserver.workers import steering
from gatewayserver.workers.spec import owner_of_eui
from gatewayserver.workers.supervisor import bind_groups, close_groups, describe_exit, restart_delay


def test_program_is_load_word_at_8_mod_n_return_a() -> None:
    code = steering.program(3)
    assert len(code) == 24
    assert [struct.unpack("=HBBI", code[i : i + 8]) for i in range(0, 24, 8)] == [
        (0x20, 0, 0, 8),  # BPF_LD | BPF_W | BPF_ABS, k = 8
        (0x94, 0, 0, 3),  # BPF_ALU | BPF_MOD | BPF_K, k = N
        (0x16, 0, 0, 0),  # BPF_RET | BPF_A
    ]
    with pytest.raises(ValueError):
        steering.program(0)


def _receiver(group: list[socket.socket]) -> int:
    ready, _, _ = select.select(group, [], [], 10.0)
    assert len(ready) == 1, ready
    ready[0].recv(2048)
    return group.index(ready[0])


@pytest.mark.parametrize("count", [2, 3])
def test_each_datagram_reaches_the_socket_of_its_owner(count: int) -> None:
    config = resolve({"udp_listen": ["127.0.0.1:0"], "workers": count}, environ={})
    [group] = bind_groups(config, count)
    try:
        port = group[0].getsockname()[1]
        assert all(sock.getsockname()[1] == port for sock in group)
        hits = 0
        for number in range(60):
            eui = os.urandom(4) + number.to_bytes(4, "big")
            for kind in (0x00, 0x02, 0x05):  # PUSH_DATA, PULL_DATA, TX_ACK, each from a fresh source port
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                    client.sendto(bytes([2, 0, 1, kind]) + eui, ("127.0.0.1", port))
                hits += _receiver(group) == owner_of_eui(eui, count)
        assert hits == 180
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"\x02\x00", ("127.0.0.1", port))  # too short for the load: socket 0, rejected there
        assert _receiver(group) == 0
    finally:
        close_groups([group])


def test_workers_refused_in_one_line_when_the_kernel_cannot_attach(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(steering, "SO_ATTACH_REUSEPORT_CBPF", 9999)  # an option this kernel does not know
    for command in ("config", "run"):
        code = cli.main([command, "--workers", "2", "--udp-listen", "127.0.0.1:0", "--uplink-output", os.devnull])
        assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "workers: 2 workers cannot run here" in err and "SO_ATTACH_REUSEPORT_CBPF" in err
        assert "use --workers 1" in err


def test_workers_refused_elsewhere_than_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steering.sys, "platform", "darwin")
    with pytest.raises(steering.SteeringUnavailable, match="needs Linux"):
        steering.check_supported()


def test_restart_backoff_grows_and_is_capped() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert restart_delay(50) == 30.0


def test_exit_descriptions() -> None:
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(2) == "exit code 2"
