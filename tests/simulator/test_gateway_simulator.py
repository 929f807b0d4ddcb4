"""The simulator against a tiny in-test Gateway Server stand-in, over real UDP sockets on loopback."""

from __future__ import annotations

import argparse
import asyncio
import base64
import struct

import asyncio_dgram
import orjson
import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from gatewayserver import simulator
from gatewayserver.simulator import SimulatedDevice, SimulatedGateway, SimulationConfig, run_simulation


class AckServer:
    """Records every datagram with its source address; acks PUSH_DATA/PULL_DATA unless told not to."""

    def __init__(self, sock: asyncio_dgram.DatagramServer, *, ack: bool = True, ack_version: int | None = None):
        self.sock = sock
        self.ack = ack
        self.ack_version = ack_version
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.pull_addr: tuple[str, int] | None = None
        self._task = asyncio.create_task(self._loop())

    @classmethod
    async def start(cls, **kwargs: object) -> AckServer:
        return cls(await asyncio_dgram.bind(("127.0.0.1", 0)), **kwargs)

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.sockname[:2]

    async def _loop(self) -> None:
        while True:
            data, addr = await self.sock.recv()
            self.received.append((data, addr))
            kind = data[3]
            if kind == simulator.PULL_DATA:
                self.pull_addr = addr
            if self.ack and kind in (simulator.PUSH_DATA, simulator.PULL_DATA):
                version = data[0] if self.ack_version is None else self.ack_version
                reply = simulator.PUSH_ACK if kind == simulator.PUSH_DATA else simulator.PULL_ACK
                await self.sock.send(bytes((version,)) + data[1:3] + bytes((reply,)), addr)

    async def pull_resp(self, token: bytes, txpk: dict, version: int = 2) -> None:
        assert self.pull_addr is not None
        await self.sock.send(bytes((version,)) + token + bytes((simulator.PULL_RESP,)) + orjson.dumps({"txpk": txpk}),
                             self.pull_addr)

    def of_kind(self, kind: int) -> list[tuple[bytes, tuple[str, int]]]:
        return [(d, a) for d, a in self.received if d[3] == kind]

    async def wait_for(self, kind: int, count: int = 1, timeout: float = 2.0) -> list[tuple[bytes, tuple[str, int]]]:
        async with asyncio.timeout(timeout):
            while len(self.of_kind(kind)) < count:
                await asyncio.sleep(0.005)
        return self.of_kind(kind)

    async def close(self) -> None:
        self._task.cancel()
        self.sock.close()


@pytest.fixture
async def server():
    s = await AckServer.start()
    yield s
    await s.close()


EUI = bytes.fromhex("0016c001ff000001")


async def test_push_data_and_pull_data_leave_from_different_ports(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI) as gw:
        await gw.send_uplink()
        await gw.pull_data()
        (push, push_addr), = await server.wait_for(simulator.PUSH_DATA)
        (pull, pull_addr), = await server.wait_for(simulator.PULL_DATA)
        assert push_addr != pull_addr
        assert push_addr == gw.up_address and pull_addr == gw.down_address
        assert push[4:12] == EUI and pull[4:12] == EUI and len(pull) == 12


async def test_single_socket_mode_uses_one_port(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI, separate_down_socket=False) as gw:
        await gw.send_uplink()
        await gw.pull_data()
        (_, push_addr), = await server.wait_for(simulator.PUSH_DATA)
        (_, pull_addr), = await server.wait_for(simulator.PULL_DATA)
        assert push_addr == pull_addr


async def test_acks_are_counted_with_latency(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI) as gw:
        for _ in range(5):
            await gw.send_uplink()
        await gw.send_status()
        await gw.pull_data()
        assert await gw.wait_for_acks(2.0)
        c = gw.counters
        assert (c.push_data_sent, c.uplinks_sent, c.status_sent, c.push_acks) == (6, 5, 1, 6)
        assert (c.pull_data_sent, c.pull_acks) == (1, 1)
        assert c.push_acks_lost == c.pull_acks_lost == c.unexpected_acks == 0
        assert len(gw.push_ack_latencies) == 6 and all(v > 0 for v in gw.push_ack_latencies)
        assert len(gw.pull_ack_latencies) == 1


async def test_missing_acks_count_as_lost() -> None:
    server = await AckServer.start(ack=False)
    try:
        gw = await SimulatedGateway.connect(server.address, EUI, ack_timeout=0.05)
        await gw.send_uplink()
        await gw.pull_data()
        assert not await gw.wait_for_acks(0.1)
        await asyncio.sleep(0.06)
        await gw.send_uplink()  # sending expires the overdue ones
        assert gw.counters.push_acks_lost == 1 and gw.counters.pull_acks_lost == 1
        await gw.close()  # whatever is still outstanding is lost too
        assert gw.counters.push_acks_lost == 2
    finally:
        await server.close()


async def test_acks_with_another_version_are_ignored_like_the_reference_forwarder() -> None:
    server = await AckServer.start(ack_version=1)
    try:
        async with await SimulatedGateway.connect(server.address, EUI, protocol_version=2) as gw:
            await gw.send_uplink()
            assert not await gw.wait_for_acks(0.2)
            assert gw.counters.version_mismatches == 1 and gw.counters.push_acks == 0
    finally:
        await server.close()


@pytest.mark.parametrize("version", [1, 2])
async def test_protocol_version_byte(server: AckServer, version: int) -> None:
    async with await SimulatedGateway.connect(server.address, EUI, protocol_version=version) as gw:
        await gw.send_uplink()
        await gw.send_status()
        await gw.pull_data()
        assert await gw.wait_for_acks(2.0)
        assert {d[0] for d, _ in server.received} == {version}
        assert gw.counters.push_acks == 2 and gw.counters.pull_acks == 1


async def test_pull_resp_is_answered_with_tx_ack_carrying_its_token(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI) as gw:
        await gw.pull_data()
        await server.wait_for(simulator.PULL_DATA)
        txpk = {"imme": True, "freq": 869.525, "rfch": 0, "powe": 14, "modu": "LORA", "datr": "SF9BW125",
                "codr": "4/5", "ipol": True, "size": 3, "data": "AQID", "ncrc": True}
        await server.pull_resp(b"\xbe\xef", txpk)
        downlink = await asyncio.wait_for(gw.received_downlinks.get(), 2.0)
        assert downlink.token == b"\xbe\xef" and downlink.txpk == txpk and downlink.answered
        (ack, addr), = await server.wait_for(simulator.TX_ACK)
        assert ack == b"\x02\xbe\xef\x05" + EUI  # success: the bare header, no JSON
        assert addr == gw.down_address
        assert gw.counters.pull_resp_received == 1 and gw.counters.tx_acks_sent == 1


async def test_tx_ack_error_policy(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI, tx_ack="TX_FREQ") as gw:
        await gw.pull_data()
        await server.wait_for(simulator.PULL_DATA)
        await server.pull_resp(b"\x00\x07", {"imme": True, "freq": 100.0})
        (ack, _), = await server.wait_for(simulator.TX_ACK)
        assert ack[:4] == b"\x02\x00\x07\x05"
        assert orjson.loads(ack[12:]) == {"txpk_ack": {"error": "TX_FREQ"}}


async def test_tx_ack_check_policy_judges_timing_like_the_jit_queue(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI, tx_ack="check", tmst_start=2**32 - 100_000) as gw:
        await gw.pull_data()
        await server.wait_for(simulator.PULL_DATA)
        now = gw.tmst()
        cases = [
            ({"imme": True}, None),
            ({"tmst": (now + 1_000_000) % 2**32}, None),  # 1 s ahead, across the counter wrap
            ({"tmst": (now + 1_000_000) % 2**32}, "COLLISION_PACKET"),
            ({"tmst": (now + 5_000) % 2**32}, "TOO_LATE"),
            ({"tmst": (now - 1_000_000) % 2**32}, "TOO_EARLY"),  # in the past
            ({"tmst": (now + 600_000_000) % 2**32}, "TOO_EARLY"),
        ]
        for i, (txpk, expected) in enumerate(cases):
            await server.pull_resp(i.to_bytes(2, "big"), txpk)
            downlink = await asyncio.wait_for(gw.received_downlinks.get(), 2.0)
            assert downlink.tx_ack_error == expected, txpk


async def test_protocol_v1_does_not_send_tx_ack(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI, protocol_version=1) as gw:
        await gw.pull_data()
        await server.wait_for(simulator.PULL_DATA)
        await server.pull_resp(b"\x00\x00", {"imme": True}, version=1)
        downlink = await asyncio.wait_for(gw.received_downlinks.get(), 2.0)
        assert not downlink.answered
        await asyncio.sleep(0.05)
        assert server.of_kind(simulator.TX_ACK) == []


def _mic(key: bytes, dev_addr: int, fcnt: int, msg: bytes) -> bytes:
    b0 = bytes([0x49, 0, 0, 0, 0, 0]) + dev_addr.to_bytes(4, "little") + fcnt.to_bytes(4, "little") + bytes(
        [0, len(msg)])
    c = cmac.CMAC(algorithms.AES(key))
    c.update(b0 + msg)
    return c.finalize()[:4]


async def test_rxpk_carries_a_valid_unconfirmed_uplink_with_increasing_fcnt(server: AckServer) -> None:
    device = SimulatedDevice(0x260B1234, fcnt=0xFFFF)
    async with await SimulatedGateway.connect(server.address, EUI, devices=[device], payload_size=10,
                                              spreading_factors=(9,), frequencies=(867.1,)) as gw:
        t0 = gw.tmst()
        await gw.send_uplink()
        await gw.send_uplink()
        datagrams = await server.wait_for(simulator.PUSH_DATA, 2)
    fcnts = []
    for data, _ in datagrams:
        (rxpk,) = orjson.loads(data[12:])["rxpk"]
        assert rxpk["freq"] == 867.1 and rxpk["chan"] == 0 and rxpk["datr"] == "SF9BW125"
        assert rxpk["modu"] == "LORA" and rxpk["codr"] == "4/5" and rxpk["stat"] == 1
        assert isinstance(rxpk["rssi"], int) and isinstance(rxpk["lsnr"], float)
        assert 0 <= (rxpk["tmst"] - t0) % 2**32 < 2_000_000
        frame = base64.b64decode(rxpk["data"])
        assert rxpk["size"] == len(frame) == 1 + 7 + 1 + 10 + 4
        assert frame[0] == 0x40  # unconfirmed data up, LoRaWAN R1
        dev_addr, fctrl, fcnt16 = struct.unpack("<IBH", frame[1:8])
        assert dev_addr == 0x260B1234 and fctrl == 0 and frame[8] == 1
        fcnts.append(fcnt16)
        full_fcnt = 0xFFFF if fcnt16 == 0xFFFF else 0x10000 + fcnt16
        assert frame[-4:] == _mic(simulator._DEFAULT_KEY, dev_addr, full_fcnt, frame[:-4])
    assert fcnts == [0xFFFF, 0x0000]


async def test_status_fields(server: AckServer) -> None:
    async with await SimulatedGateway.connect(server.address, EUI, location=(52.1, 4.3, 10)) as gw:
        await gw.send_uplink()
        await gw.wait_for_acks(1.0)
        await gw.send_status()
        (_, (data, _)) = await server.wait_for(simulator.PUSH_DATA, 2)
    stat = orjson.loads(data[12:])["stat"]
    assert stat["time"].endswith(" GMT") and len(stat["time"]) == len("2026-11-22 03:09:23 GMT")
    assert (stat["rxnb"], stat["rxok"], stat["rxfw"], stat["ackr"]) == (1, 1, 1, 100.0)
    assert (stat["lati"], stat["long"], stat["alti"]) == (52.1, 4.3, 10)


async def test_run_simulation_paces_many_gateways_and_summarizes(server: AckServer) -> None:
    config = SimulationConfig(address=server.address, gateways=4, rate=200, duration=0.5, stat_interval=10,
                              keepalive_interval=10, start_spread=0.05, drain=1.0, payload_size=16)
    summary = await run_simulation(config)
    assert summary["uplinks_sent"] == 100
    assert summary["push_acks"] == summary["push_data_sent"] == 104  # 100 uplinks + 4 stat
    assert summary["pull_acks"] == summary["pull_data_sent"] == 4
    assert summary["push_acks_lost"] == summary["pull_acks_lost"] == 0
    assert summary["push_ack_latency_ms"]["p99"] is not None
    euis = {d[4:12] for d, _ in server.received}
    assert euis == {simulator.gateway_eui(config.eui_base, i) for i in range(4)}
    assert len({a for _, a in server.received}) == 8  # two sockets per gateway
    orjson.dumps(summary)  # JSON-able for --json
    assert "PUSH_ACK" in simulator.format_summary(summary)


def test_register_adds_the_simulate_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="gatewayserver")
    simulator.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", "--address", "10.0.0.1:1701", "--gateways", "3", "--rate", "50",
                              "--spreading-factor", "7,9", "--frequencies", "868.1,868.3", "--protocol-version", "1",
                              "--eui-base", "0102030405060708", "--tx-ack", "TOO_LATE", "--json"])
    assert callable(args.func)
    config = simulator.config_from_args(args)
    assert config.address == ("10.0.0.1", 1701) and config.gateways == 3 and config.rate == 50
    assert config.spreading_factors == (7, 9) and config.frequencies == (868.1, 868.3)
    assert config.protocol_version == 1 and config.tx_ack == "TOO_LATE"
    assert simulator.gateway_eui(config.eui_base, 2) == bytes.fromhex("010203040506070a")


def test_eui_and_address_helpers() -> None:
    assert simulator.gateway_eui("ffffffffffffffff", 1) == bytes(8)
    assert simulator.parse_address("[::1]:1700") == ("::1", 1700)
    assert simulator.parse_address("localhost") == ("localhost", 1700)


async def test_idle_gateways_all_connect_even_when_the_traffic_is_shorter_than_the_start_spread(
    server: AckServer,
) -> None:
    config = SimulationConfig(address=server.address, gateways=5, rate=0, duration=0, start_spread=0.3,
                              keepalive_interval=0, stat_interval=3600, drain=1.0)
    summary = await run_simulation(config)
    assert summary["pull_data_sent"] == summary["pull_acks"] == 5
    assert summary["status_sent"] == summary["push_acks"] == 5
