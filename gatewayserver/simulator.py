"""Simulated gateways, for trying, testing and benchmarking the daemon: Semtech UDP packet forwarders, or
gateways linked through `GtwGs.LinkGateway` (`--protocol grpc`, see `simulator_grpc`), driven the same way.

Each simulated gateway behaves like Semtech's reference forwarder: an "up" socket for PUSH_DATA (rxpk and
stat) and a separate "down" socket for PULL_DATA keepalives and TX_ACK, so the daemon sees two source ports per
gateway exactly as in the field. The gateway side of the framing is written here on purpose instead of reusing
the daemon's codec: a test that drives the daemon with its own encoder would not catch a symmetric mistake.

Two layers:
- ``SimulatedGateway``: one gateway, an async API the integration tests drive the daemon with.
- ``run_simulation``/``gatewayserver simulate``: N gateways paced to a total uplink rate, with a summary of
  acks, ack latency, downlinks and losses at the end (text, or ``--json`` for the benchmarks).

Uplinks are valid LoRaWAN 1.0 unconfirmed-up frames (real MIC, increasing FCnt, one DevAddr per device). When
the FRMPayload is at least 8 bytes long its first 8 bytes carry the send time (``time.time_ns()``, big-endian):
the payload is opaque to a Gateway Server, and the stamp lets a stand-in Network Server measure send-to-receipt
latency without having to match uplinks to a log.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime as _dt
import math
import os
import random
import resource
import struct
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncio_dgram
import orjson

from cryptography.hazmat.primitives import cmac as _cmac  # MIC computation
from cryptography.hazmat.primitives.ciphers import algorithms as _algorithms

PUSH_DATA = 0x00
PUSH_ACK = 0x01
PULL_DATA = 0x02
PULL_RESP = 0x03
PULL_ACK = 0x04
TX_ACK = 0x05

TX_ACK_ERRORS = (
    "TOO_LATE",
    "TOO_EARLY",
    "COLLISION_PACKET",
    "COLLISION_BEACON",
    "TX_FREQ",
    "TX_POWER",
    "GPS_UNLOCKED",
)

_COUNTER_WRAP = 1 << 32
_GPS_EPOCH_UNIX_MS = 315_964_800_000
_GPS_LEAP_SECONDS = 18  # GPS - UTC since 2017-01-01
_DEFAULT_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")

# Uplink channels (MHz) of EU_863_870, the default; `--frequency-plan ID` takes any plan of the store instead.
FREQUENCY_PLANS: dict[str, tuple[float, ...]] = {
    "EU_863_870": (868.1, 868.3, 868.5, 867.1, 867.3, 867.5, 867.7, 867.9),
}


def plan_uplink_frequencies(plan_id: str) -> tuple[float, ...]:
    """The uplink channels (MHz) of a plan in the daemon's own store; `argparse` type for `--frequency-plan`.

    Read from the same plans the daemon uses, so every id `gatewayserver frequency-plans list` shows works here
    and no id is offered that the daemon does not know.
    """
    from frequency_plans.loader import FrequencyPlanError, FrequencyPlanStore

    try:
        store = FrequencyPlanStore()
    except FrequencyPlanError as exc:  # pragma: no cover - the built-in plans are checked by their own tests
        raise argparse.ArgumentTypeError(str(exc)) from None
    if plan_id not in store:
        raise argparse.ArgumentTypeError(
            f"unknown frequency plan {plan_id!r}; one of: {', '.join(store.ids())}"
        )
    channels = tuple(c.frequency / 1e6 for c in store.get(plan_id).uplink_channels)
    if not channels:
        raise argparse.ArgumentTypeError(f"frequency plan {plan_id!r} has no uplink channels; use --frequencies")
    return channels


def parse_address(text: str, default_port: int = 1700) -> tuple[str, int]:
    """Parse HOST:PORT (``[v6]:port`` too); a bare host gets the default port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host or "127.0.0.1", int(port)


def _eui_int(text: str) -> int:
    """An EUI written as hex, with or without ``-``/``:`` separators."""
    return int(text.replace("-", "").replace(":", ""), 16)


def gateway_eui(base: bytes | int | str, index: int) -> bytes:
    """EUI of gateway ``index``: the base EUI plus the index, as a 64-bit big-endian number."""
    if isinstance(base, str):
        base = _eui_int(base)
    elif isinstance(base, bytes):
        base = int.from_bytes(base, "big")
    return ((base + index) % (1 << 64)).to_bytes(8, "big")


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- LoRaWAN frames -------------------------------------------------------------------------------------------


class SimulatedDevice:
    """An end device that only sends unconfirmed uplinks: DevAddr, frame counter and session key."""

    __slots__ = ("dev_addr", "fcnt", "nwk_s_key", "f_port", "_cmac_cipher")

    def __init__(self, dev_addr: int, nwk_s_key: bytes = _DEFAULT_KEY, fcnt: int = 0, f_port: int = 1):
        self.dev_addr = dev_addr & 0xFFFFFFFF
        self.fcnt = fcnt
        self.nwk_s_key = nwk_s_key
        self.f_port = f_port
        self._cmac_cipher = _algorithms.AES(nwk_s_key)

    def next_frame(self, payload_size: int, *, stamp_ns: int | None = None) -> bytes:
        """The next unconfirmed-up PHYPayload with ``payload_size`` bytes of FRMPayload; FCnt advances."""
        fcnt = self.fcnt
        self.fcnt = (fcnt + 1) & 0xFFFFFFFF
        mhdr = b"\x40"  # unconfirmed data up, LoRaWAN R1
        fhdr = struct.pack("<IBH", self.dev_addr, 0x00, fcnt & 0xFFFF)
        if payload_size > 0:
            if payload_size >= 8:
                stamp = struct.pack(">Q", stamp_ns if stamp_ns is not None else time.time_ns())
                frm = stamp + bytes((fcnt + i) & 0xFF for i in range(payload_size - 8))
            else:
                frm = bytes((fcnt + i) & 0xFF for i in range(payload_size))
            msg = mhdr + fhdr + bytes((self.f_port,)) + frm
        else:
            msg = mhdr + fhdr
        return msg + self._mic(msg, fcnt)

    def _mic(self, msg: bytes, fcnt: int) -> bytes:
        """LoRaWAN 1.0 uplink MIC: AES-CMAC over B0 | msg with the network session key."""
        b0 = struct.pack("<B4xBIIBB", 0x49, 0, self.dev_addr, fcnt, 0, len(msg))
        c = _cmac.CMAC(self._cmac_cipher)
        c.update(b0 + msg)
        return c.finalize()[:4]


# --- one gateway ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Downlink:
    """A PULL_RESP as the gateway received it."""

    token: bytes
    txpk: dict[str, Any]
    received_ns: int  # time.time_ns() at read
    tx_ack_error: str | None  # what we answered (None = success or not answered)
    answered: bool


@dataclasses.dataclass
class GatewayCounters:
    push_data_sent: int = 0
    uplinks_sent: int = 0
    status_sent: int = 0
    push_acks: int = 0
    push_acks_lost: int = 0
    pull_data_sent: int = 0
    pull_acks: int = 0
    pull_acks_lost: int = 0
    pull_resp_received: int = 0
    tx_acks_sent: int = 0
    tx_ack_errors_sent: int = 0
    unexpected_acks: int = 0  # token we are not waiting for (late, duplicated or forged)
    version_mismatches: int = 0  # the reference forwarder drops these, so do we
    malformed: int = 0
    send_errors: int = 0  # e.g. ICMP port unreachable reported on a connected socket

    def add(self, other: GatewayCounters) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


TxAckPolicy = str | None | Callable[["SimulatedGateway", dict[str, Any]], str | None]


class SimulatedGateway:
    """One packet forwarder. Create with ``await SimulatedGateway.connect(...)``; ``close()`` when done.

    Acks are matched by token; an ack that has not arrived within ``ack_timeout`` seconds counts as lost (so
    does anything outstanding at ``close()``). Latencies are kept in nanoseconds in ``push_ack_latencies`` and
    ``pull_ack_latencies``. PULL_RESP datagrams land in ``received_downlinks`` and, with protocol version 2,
    are answered with a TX_ACK carrying the same token, according to ``tx_ack``: ``None`` (empty body, success),
    an error name such as ``"TOO_LATE"``, ``"check"`` (judge the txpk timing like the reference forwarder's jit
    queue) or a callable ``(gateway, txpk) -> error | None``.
    """

    def __init__(
        self,
        eui: bytes,
        up: asyncio_dgram.DatagramClient,
        down: asyncio_dgram.DatagramClient,
        *,
        protocol_version: int = 2,
        tx_ack: TxAckPolicy = None,
        auto_tx_ack: bool = True,
        ack_timeout: float = 2.0,
        tmst_start: int | None = None,
        frequencies: Sequence[float] = FREQUENCY_PLANS["EU_863_870"],
        spreading_factors: Sequence[int] = (7,),
        bandwidth_khz: int = 125,
        coding_rate: str = "4/5",
        payload_size: int = 12,
        devices: Sequence[SimulatedDevice] | None = None,
        gps: bool = False,
        location: tuple[float, float, int] | None = None,
        seed: int | None = None,
        keep_latencies: bool = True,
    ):
        if protocol_version not in (1, 2):
            raise ValueError("protocol_version must be 1 or 2")
        self.eui = eui
        self.protocol_version = protocol_version
        self.tx_ack = tx_ack
        self.auto_tx_ack = auto_tx_ack
        self.ack_timeout_ns = int(ack_timeout * 1e9)
        self.frequencies = tuple(frequencies)
        self.spreading_factors = tuple(spreading_factors)
        self.bandwidth_khz = bandwidth_khz
        self.coding_rate = coding_rate
        self.payload_size = payload_size
        self.gps = gps
        self.location = location
        self.counters = GatewayCounters()
        self.push_ack_latencies: list[int] = []
        self.pull_ack_latencies: list[int] = []
        self.keep_latencies = keep_latencies
        self.received_downlinks: asyncio.Queue[Downlink] = asyncio.Queue()
        self._up = up
        self._down = down
        self._random = random.Random(seed if seed is not None else int.from_bytes(eui, "big"))
        self._token = self._random.getrandbits(16)
        self._pending_push: dict[bytes, int] = {}
        self._pending_pull: dict[bytes, int] = {}
        self._pending_empty = asyncio.Event()
        self._pending_empty.set()
        self._t0 = time.monotonic_ns()
        self._tmst_start = self._random.getrandbits(32) if tmst_start is None else tmst_start % _COUNTER_WRAP
        self._scheduled_tmst: dict[int, int] = {}  # tmst -> monotonic ns of the slot, for the "check" policy
        if devices is None:
            devices = [SimulatedDevice(0x26000000 | (int.from_bytes(eui[-3:], "big") & 0x00FFFFFF))]
        self.devices = list(devices)
        self._next_device = 0
        self._uplink_index = 0
        # Per stat interval, like the reference forwarder's counters.
        self._stat_rx = 0
        self._stat_up_sent = 0
        self._stat_up_acked = 0
        self._stat_dwnb = 0
        self._stat_txnb = 0
        self._closed = False
        self._readers = [asyncio.create_task(self._read_loop(up, "up"))]
        if down is not up:
            self._readers.append(asyncio.create_task(self._read_loop(down, "down")))

    @classmethod
    async def connect(
        cls,
        address: tuple[str, int] | str,
        eui: bytes,
        *,
        separate_down_socket: bool = True,
        **kwargs: Any,
    ) -> SimulatedGateway:
        """Open the up and down sockets towards ``address`` (HOST:PORT or a tuple); each gets its own port."""
        if isinstance(address, str):
            address = parse_address(address)
        up = await asyncio_dgram.connect(address)
        try:
            down = await asyncio_dgram.connect(address) if separate_down_socket else up
        except BaseException:
            up.close()
            raise
        return cls(eui, up, down, **kwargs)

    # -- addresses and clock --

    @property
    def up_address(self) -> tuple[str, int]:
        return self._up.sockname[:2]

    @property
    def down_address(self) -> tuple[str, int]:
        return self._down.sockname[:2]

    def tmst(self, at_monotonic_ns: int | None = None) -> int:
        """The simulated concentrator counter: 32-bit microseconds, free-running from a random start."""
        now = time.monotonic_ns() if at_monotonic_ns is None else at_monotonic_ns
        return (self._tmst_start + (now - self._t0) // 1000) % _COUNTER_WRAP

    # -- sending --

    def _next_token(self) -> bytes:
        self._token = (self._token + 1) & 0xFFFF
        return self._token.to_bytes(2, "big")

    async def _send(self, sock: asyncio_dgram.DatagramClient, data: bytes) -> bool:
        try:
            await sock.send(data)
            return True
        except (OSError, asyncio_dgram.TransportClosed):
            self.counters.send_errors += 1
            return False

    async def send_push_data(self, body: Mapping[str, Any] | bytes, *, uplinks: int = 0, status: bool = False) -> bytes:
        """Send one PUSH_DATA with a JSON body (a mapping, or bytes sent verbatim). Returns the token."""
        token = self._next_token()
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        data = bytes((self.protocol_version,)) + token + bytes((PUSH_DATA,)) + self.eui + payload
        self._expect_ack(self._pending_push, token)
        c = self.counters
        c.push_data_sent += 1
        c.uplinks_sent += uplinks
        c.status_sent += int(status)
        self._stat_up_sent += 1
        await self._send(self._up, data)
        return token

    def make_rxpk(
        self,
        payload: bytes | None = None,
        *,
        freq: float | None = None,
        chan: int | None = None,
        rfch: int | None = None,
        datr: str | int | None = None,
        codr: str | None = None,
        modu: str = "LORA",
        rssi: int | None = None,
        lsnr: float | None = None,
        stat: int = 1,
        tmst: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One rxpk object; unspecified radio fields rotate through the gateway's channels and SFs."""
        i = self._uplink_index
        self._uplink_index += 1
        if payload is None:
            device = self.devices[self._next_device]
            self._next_device = (self._next_device + 1) % len(self.devices)
            payload = device.next_frame(self.payload_size)
        if chan is None:
            chan = i % len(self.frequencies) if freq is None else 0
        if freq is None:
            freq = self.frequencies[chan % len(self.frequencies)]
        if datr is None:
            datr = f"SF{self.spreading_factors[i % len(self.spreading_factors)]}BW{self.bandwidth_khz}"
        rnd = self._random
        rxpk: dict[str, Any] = {
            "tmst": self.tmst() if tmst is None else tmst,
            "chan": chan,
            "rfch": (chan // 4) % 2 if rfch is None else rfch,
            "freq": freq,
            "stat": stat,
            "modu": modu,
            "datr": datr,
            "codr": self.coding_rate if codr is None else codr,
            "lsnr": round(rnd.uniform(-10.0, 12.0), 1) if lsnr is None else lsnr,
            "rssi": rnd.randint(-120, -40) if rssi is None else rssi,
            "size": len(payload),
            "data": base64.b64encode(payload).decode("ascii"),
        }
        if modu == "FSK":
            del rxpk["codr"]
        if self.gps:
            now_ns = time.time_ns()
            rxpk["time"] = _iso_compact(now_ns)
            rxpk["tmms"] = now_ns // 1_000_000 - _GPS_EPOCH_UNIX_MS + _GPS_LEAP_SECONDS * 1000
        if extra:
            rxpk.update(extra)
        self._stat_rx += 1
        return rxpk

    async def send_uplink(self, payload: bytes | None = None, **fields: Any) -> bytes:
        """Send one uplink (one rxpk in a PUSH_DATA); ``fields`` as for ``make_rxpk``. Returns the token.

        Without ``payload`` the next frame of the next device is sent (FCnt increasing, send-time stamp)."""
        return await self.send_push_data({"rxpk": [self.make_rxpk(payload, **fields)]}, uplinks=1)

    async def send_rxpks(self, rxpks: Sequence[Mapping[str, Any]], stat: Mapping[str, Any] | None = None) -> bytes:
        """Send several rxpk (and optionally a stat) in one PUSH_DATA."""
        body: dict[str, Any] = {"rxpk": list(rxpks)}
        if stat is not None:
            body["stat"] = dict(stat)
        return await self.send_push_data(body, uplinks=len(rxpks), status=stat is not None)

    def make_status(self, **overrides: Any) -> dict[str, Any]:
        """A stat object with this interval's counters, like the reference forwarder; counters then restart."""
        sent, acked = self._stat_up_sent, self._stat_up_acked
        stat: dict[str, Any] = {
            "time": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S GMT"),
            "rxnb": self._stat_rx,
            "rxok": self._stat_rx,
            "rxfw": self._stat_rx,
            "ackr": round(100.0 * acked / sent, 1) if sent else 0.0,
            "dwnb": self._stat_dwnb,
            "txnb": self._stat_txnb,
        }
        if self.location is not None:
            stat["lati"], stat["long"], stat["alti"] = self.location
        stat.update(overrides)
        self._stat_rx = self._stat_up_sent = self._stat_up_acked = self._stat_dwnb = self._stat_txnb = 0
        return stat

    async def send_status(self, **overrides: Any) -> bytes:
        """Send a PUSH_DATA carrying only ``stat``. Returns the token."""
        return await self.send_push_data({"stat": self.make_status(**overrides)}, status=True)

    async def pull_data(self) -> bytes:
        """Send a PULL_DATA keepalive from the down socket. Returns the token."""
        token = self._next_token()
        data = bytes((self.protocol_version,)) + token + bytes((PULL_DATA,)) + self.eui
        self._expect_ack(self._pending_pull, token)
        self.counters.pull_data_sent += 1
        await self._send(self._down, data)
        return token

    async def send_tx_ack(
        self, token: bytes, error: str | None = None, *, warn: str | None = None, value: int | None = None
    ) -> None:
        """Send a TX_ACK from the down socket: empty body on success, else ``{"txpk_ack":{"error":...}}``."""
        body = b""
        if error is not None and error != "NONE":
            body = orjson.dumps({"txpk_ack": {"error": error}})
            self.counters.tx_ack_errors_sent += 1
        elif warn is not None:
            ack: dict[str, Any] = {"warn": warn}
            if value is not None:
                ack["value"] = value
            body = orjson.dumps({"txpk_ack": ack})
        data = bytes((self.protocol_version,)) + token + bytes((TX_ACK,)) + self.eui + body
        self.counters.tx_acks_sent += 1
        await self._send(self._down, data)

    # -- receiving --

    async def _read_loop(self, sock: asyncio_dgram.DatagramClient, name: str) -> None:
        while True:
            try:
                data, _ = await sock.recv()
            except asyncio_dgram.TransportClosed:
                return
            except OSError:
                # ICMP errors (nobody listening yet) surface on the next read of a connected socket.
                self.counters.send_errors += 1
                if self._closed:
                    return
                continue
            try:
                await self._handle(data)
            except Exception:  # a misbehaving server must not kill the simulated gateway
                self.counters.malformed += 1

    async def _handle(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        if len(data) < 4:
            self.counters.malformed += 1
            return
        if data[0] != self.protocol_version:
            self.counters.version_mismatches += 1
            return
        token, kind = data[1:3], data[3]
        if kind == PUSH_ACK:
            self._ack(self._pending_push, self.push_ack_latencies, token, now, push=True)
        elif kind == PULL_ACK:
            self._ack(self._pending_pull, self.pull_ack_latencies, token, now, push=False)
        elif kind == PULL_RESP:
            await self._handle_pull_resp(token, data[4:])
        else:
            self.counters.malformed += 1

    def _ack(self, pending: dict[bytes, int], latencies: list[int], token: bytes, now: int, *, push: bool) -> None:
        sent = pending.pop(token, None)
        if sent is None:
            self.counters.unexpected_acks += 1
            return
        if push:
            self.counters.push_acks += 1
            self._stat_up_acked += 1
        else:
            self.counters.pull_acks += 1
        if self.keep_latencies:
            latencies.append(now - sent)
        if not self._pending_push and not self._pending_pull:
            self._pending_empty.set()

    async def _handle_pull_resp(self, token: bytes, body: bytes) -> None:
        received = time.time_ns()
        self.counters.pull_resp_received += 1
        self._stat_dwnb += 1
        try:
            txpk = orjson.loads(body.rstrip(b"\x00 \r\n\t"))["txpk"]
            if not isinstance(txpk, dict):
                raise TypeError("txpk is not an object")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.counters.malformed += 1
            return
        error: str | None = None
        answered = False
        if self.auto_tx_ack and self.protocol_version == 2:  # protocol v1 has no TX_ACK
            policy = self.tx_ack
            if callable(policy):
                error = policy(self, txpk)
            elif policy == "check":
                error = self._check_timing(txpk)
            else:
                error = policy
            await self.send_tx_ack(token, error)
            answered = True
            if error is None:
                self._stat_txnb += 1
        await self.received_downlinks.put(Downlink(token, txpk, received, error, answered))

    def _check_timing(self, txpk: Mapping[str, Any]) -> str | None:
        """Judge a txpk like the reference forwarder's jit queue (see the protocol fact sheet)."""
        if txpk.get("imme"):
            return None
        if "tmst" not in txpk:
            return "GPS_UNLOCKED" if "tmms" in txpk else "TOO_LATE"
        now = time.monotonic_ns()
        for t, slot in list(self._scheduled_tmst.items()):
            if slot < now:
                del self._scheduled_tmst[t]
        tmst = int(txpk["tmst"]) % _COUNTER_WRAP
        ahead_us = (tmst - self.tmst(now)) % _COUNTER_WRAP
        if ahead_us > 512_000_000:
            return "TOO_EARLY"  # includes timestamps in the past, as the forwarder's unsigned arithmetic does
        if ahead_us < 30_000:
            return "TOO_LATE"
        if tmst in self._scheduled_tmst:
            return "COLLISION_PACKET"
        self._scheduled_tmst[tmst] = now + ahead_us * 1000
        return None

    # -- bookkeeping --

    def _expect_ack(self, pending: dict[bytes, int], token: bytes) -> None:
        """Remember when ``token`` was sent (after counting overdue acks as lost)."""
        now = time.perf_counter_ns()
        self._expire_pending(now)
        pending[token] = now
        self._pending_empty.clear()

    def _expire_pending(self, now: int) -> None:
        limit = now - self.ack_timeout_ns
        for pending, is_push in ((self._pending_push, True), (self._pending_pull, False)):
            while pending:
                token, sent = next(iter(pending.items()))  # insertion order = send order
                if sent > limit:
                    break
                del pending[token]
                if is_push:
                    self.counters.push_acks_lost += 1
                else:
                    self.counters.pull_acks_lost += 1
        if not self._pending_push and not self._pending_pull:
            self._pending_empty.set()

    @property
    def outstanding_acks(self) -> int:
        return len(self._pending_push) + len(self._pending_pull)

    async def wait_for_acks(self, timeout: float | None = None) -> bool:
        """Wait until every sent PUSH_DATA/PULL_DATA is acked (True) or the timeout passes (False)."""
        try:
            await asyncio.wait_for(self._pending_empty.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Close both sockets; acks still outstanding count as lost."""
        if self._closed:
            return
        self._closed = True
        self.counters.push_acks_lost += len(self._pending_push)
        self.counters.pull_acks_lost += len(self._pending_pull)
        self._pending_push.clear()
        self._pending_pull.clear()
        self._pending_empty.set()
        self._up.close()
        if self._down is not self._up:
            self._down.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    async def __aenter__(self) -> SimulatedGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _iso_compact(unix_ns: int) -> str:
    seconds, ns = divmod(unix_ns, 1_000_000_000)
    base = _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns // 1000:06d}Z"


# --- many gateways --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SimulationConfig:
    address: tuple[str, int] = ("127.0.0.1", 1700)
    gateways: int = 1
    rate: float = 1.0  # uplinks per second, all gateways together
    duration: float = 10.0  # seconds of uplink traffic
    spreading_factors: tuple[int, ...] = (7,)
    bandwidth_khz: int = 125
    coding_rate: str = "4/5"
    payload_size: int = 12  # FRMPayload bytes; >= 8 carries the send-time stamp
    frequencies: tuple[float, ...] = FREQUENCY_PLANS["EU_863_870"]
    protocol_version: int = 2
    stat_interval: float = 30.0  # 0: no stat
    keepalive_interval: float = 10.0  # 0: only the initial PULL_DATA
    eui_base: int = 0x0016C001FF000000
    devices_per_gateway: int = 1
    dev_addr_base: int = 0x26000000
    tx_ack: TxAckPolicy = None
    single_socket: bool = False
    ack_timeout: float = 2.0
    start_spread: float = 1.0  # gateways start within this many seconds, like forwarders that boot at random
    drain: float = 2.0  # seconds to wait for outstanding acks after the traffic
    gps: bool = False
    location: tuple[float, float, int] | None = None
    seed: int = 1
    hold: float = 0.0  # keep the idle gateways connected (keepalives only) this long after the uplinks
    protocol: str = "udp"  # "grpc": link through GtwGs.LinkGateway at `address` (the gRPC port) with `api_key`
    api_key: str = ""


def _summarize_latencies(values_ns: list[int]) -> dict[str, float | None]:
    values = sorted(values_ns)
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v / 1e6, 3)
    return {
        "p50": ms(percentile(values, 50)),
        "p99": ms(percentile(values, 99)),
        "max": ms(values[-1] if values else None),
    }


async def run_simulation(
    config: SimulationConfig, *, on_ready: Callable[[list[SimulatedGateway]], None] | None = None
) -> dict[str, Any]:
    """Run the configured gateways to completion and return the summary (plain JSON-able data)."""
    _raise_nofile_limit(config.gateways * (1 if config.single_socket else 2) + 64)
    gateways: list[Any] = []
    channel: Any = None
    try:
        if config.protocol == "grpc":
            import grpc

            channel = grpc.aio.insecure_channel(f"{config.address[0]}:{config.address[1]}")
            gateways.extend([_link_gateway(config, i, channel) for i in range(config.gateways)])
        for chunk_start in range(0, config.gateways if channel is None else 0, 1000):
            chunk = range(chunk_start, min(config.gateways, chunk_start + 1000))
            gateways.extend(await asyncio.gather(*(_make_gateway(config, i) for i in chunk)))
        if on_ready is not None:
            on_ready(gateways)
        stop = asyncio.Event()
        started = time.monotonic()
        keepers = [asyncio.create_task(_keepalive(config, gw, i, stop)) for i, gw in enumerate(gateways)]
        send_start_ns = time.time_ns()
        sent, elapsed = await _pace(gateways, config.rate, config.duration)
        if config.hold > 0:
            await asyncio.sleep(config.hold)
        stop.set()
        await asyncio.gather(*keepers, return_exceptions=True)
        waiting = [gw for gw in gateways if gw.outstanding_acks]
        if config.drain > 0 and waiting:
            await asyncio.gather(*(gw.wait_for_acks(config.drain) for gw in waiting))
        if channel is not None:  # a link has no acks: wait until everything queued was written
            await asyncio.gather(*(gw.drain(max(config.drain, 1.0)) for gw in gateways))
        wall = time.monotonic() - started
    finally:
        for gw in gateways:
            await gw.close()
        if channel is not None:
            await channel.close()
    link_errors = [gw.error for gw in gateways if getattr(gw, "error", None) is not None]
    downlinks: list[dict[str, Any]] = []
    totals = GatewayCounters()
    push_lat: list[int] = []
    pull_lat: list[int] = []
    pull_resp_count = 0
    for gw in gateways:
        totals.add(gw.counters)
        push_lat.extend(gw.push_ack_latencies)
        pull_lat.extend(gw.pull_ack_latencies)
        while not gw.received_downlinks.empty():
            d = gw.received_downlinks.get_nowait()
            pull_resp_count += 1
            if channel is not None:
                if len(downlinks) < 50:
                    downlinks.append({"gateway_id": gw.gateway_id, "correlation_ids": list(d.correlation_ids),
                                      "frequency": d.scheduled.frequency, "timestamp": d.scheduled.timestamp})
            elif len(downlinks) < 50:
                downlinks.append(
                    {"eui": gw.eui.hex(), "token": d.token.hex(), "txpk": d.txpk, "tx_ack_error": d.tx_ack_error,
                     "answered": d.answered}
                )
    summary: dict[str, Any] = {
        "address": f"{config.address[0]}:{config.address[1]}",
        "gateways": len(gateways),
        "protocol": config.protocol,
        "protocol_version": config.protocol_version,
        "link_errors": [f"{e.code().name}: {e.details()}" for e in link_errors[:10]],
        "target_rate": config.rate,
        "uplinks_sent": sent,
        "uplink_seconds": round(elapsed, 3),
        "achieved_rate": round(sent / elapsed, 1) if elapsed > 0 else 0.0,
        "send_start_unix_ns": send_start_ns,
        "wall_seconds": round(wall, 3),
        **dataclasses.asdict(totals),
        "push_ack_latency_ms": _summarize_latencies(push_lat),
        "pull_ack_latency_ms": _summarize_latencies(pull_lat),
        "downlinks": downlinks,
    }
    return summary


async def _make_gateway(config: SimulationConfig, index: int) -> SimulatedGateway:
    return await SimulatedGateway.connect(
        config.address,
        gateway_eui(config.eui_base, index),
        separate_down_socket=not config.single_socket,
        protocol_version=config.protocol_version,
        tx_ack=config.tx_ack,
        ack_timeout=config.ack_timeout,
        gps=config.gps,
        location=config.location,
        **_radio_settings(config, index),
    )


def _radio_settings(config: SimulationConfig, index: int) -> dict[str, Any]:
    """What gateway `index` transmits and for which devices, the same whichever protocol carries it."""
    dpg = max(1, config.devices_per_gateway)
    return {
        "frequencies": config.frequencies,
        "spreading_factors": config.spreading_factors,
        "bandwidth_khz": config.bandwidth_khz,
        "coding_rate": config.coding_rate,
        "payload_size": config.payload_size,
        "devices": [SimulatedDevice(config.dev_addr_base + index * dpg + j) for j in range(dpg)],
        "seed": config.seed * 1_000_003 + index,
    }


def _link_gateway(config: SimulationConfig, index: int, channel: Any) -> Any:
    """Gateway `index` on a `LinkGateway` stream of the shared channel, as `eui-<its EUI>`."""
    from .simulator_grpc import LinkedGateway

    return LinkedGateway(
        channel,
        "eui-" + gateway_eui(config.eui_base, index).hex(),
        config.api_key,
        tx_ack=config.tx_ack if isinstance(config.tx_ack, str) and config.tx_ack != "check" else None,
        **_radio_settings(config, index),
    )


async def _keepalive(config: SimulationConfig, gw: Any, index: int, stop: asyncio.Event) -> None:
    """PULL_DATA at start and every keepalive interval (UDP only); stat at start and every stat interval."""
    rnd = random.Random(config.seed * 7919 + index)
    if config.start_spread > 0 and config.gateways > 1:
        await asyncio.sleep(rnd.uniform(0, config.start_spread))  # the first PULL_DATA and stat always go out
    loop = asyncio.get_running_loop()
    next_pull = loop.time()
    next_stat = loop.time() if config.stat_interval > 0 else math.inf
    while True:
        now = loop.time()
        if now >= next_pull:
            if config.protocol == "udp":
                await gw.pull_data()
            next_pull = now + config.keepalive_interval if config.keepalive_interval > 0 else math.inf
        if now >= next_stat:
            await gw.send_status()
            next_stat = now + config.stat_interval
        wake = min(next_pull, next_stat)
        if await _wait(stop, None if wake == math.inf else max(0.0, wake - loop.time())):
            return


async def _wait(event: asyncio.Event, timeout: float | None) -> bool:
    """Sleep up to ``timeout`` seconds; True when the event fired."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
        return True
    except TimeoutError:
        return False


async def _pace(gateways: Sequence[Any], rate: float, duration: float) -> tuple[int, float]:
    """Send round(rate * duration) uplinks, round-robin over the gateways, evenly spaced in time."""
    total = round(rate * duration) if rate > 0 else 0
    if total == 0 or not gateways:
        if duration > 0:
            await asyncio.sleep(duration)
        return 0, duration
    n = len(gateways)
    start = time.monotonic()
    sent = 0
    index = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while sent < due:
            await gateways[index].send_uplink()
            index = index + 1 if index + 1 < n else 0
            sent += 1
        delay = start + sent / rate - time.monotonic()
        await asyncio.sleep(delay if delay > 0 else 0)
    return sent, time.monotonic() - start


def _raise_nofile_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(
            f"simulate: {needed} file descriptors needed but the limit is {hard}; use fewer gateways per process "
            "or --single-socket"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# --- command line ---------------------------------------------------------------------------------------------


def _float_list(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.replace(" ", "").split(",") if x)


def _sf_list(text: str) -> tuple[int, ...]:
    values = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    if not values or any(not 5 <= v <= 12 for v in values):
        raise argparse.ArgumentTypeError("spreading factors are 5..12")
    return values


def _location(text: str) -> tuple[float, float, int]:
    parts = [p for p in text.split(",") if p]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError("LAT,LON[,ALT]")
    return float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``simulate`` options; shared by the subcommand and ``python -m gatewayserver.simulator``."""
    parser.add_argument("--protocol", choices=("udp", "grpc"), default="udp",
                        help="udp: Semtech packet forwarders; grpc: gateways linked through GtwGs.LinkGateway")
    parser.add_argument("--address", default=None,
                        help="Gateway Server address (HOST:PORT); default 127.0.0.1:1700 (udp), 127.0.0.1:1884 (grpc)")
    parser.add_argument("--api-key", default=os.environ.get("GS_API_KEY", ""),
                        help="grpc: API key with RIGHT_GATEWAY_LINK for the simulated gateways (eui-<EUI>); "
                             "default $GS_API_KEY")
    parser.add_argument("--gateways", type=int, default=1, help="number of simulated gateways")
    parser.add_argument("--rate", type=float, default=1.0, help="uplinks per second, all gateways together")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of uplink traffic")
    parser.add_argument("--spreading-factor", type=_sf_list, default=(7,), metavar="SF[,SF...]",
                        help="spreading factor(s), used in turn")
    parser.add_argument("--bandwidth", type=int, default=125, help="LoRa bandwidth in kHz")
    parser.add_argument("--coding-rate", default="4/5")
    parser.add_argument("--payload-size", type=int, default=12,
                        help="FRMPayload bytes (>= 8 carries a send-time stamp; 0 sends no FPort)")
    parser.add_argument("--frequency-plan", type=plan_uplink_frequencies, default=FREQUENCY_PLANS["EU_863_870"],
                        metavar="PLAN_ID",
                        help="frequency plan whose uplink channels to rotate through (default EU_863_870; "
                             "`gatewayserver frequency-plans list` shows the ids)")
    parser.add_argument("--frequencies", type=_float_list, default=None, metavar="MHZ[,MHZ...]",
                        help="explicit uplink channels in MHz (overrides --frequency-plan)")
    parser.add_argument("--protocol-version", type=int, choices=(1, 2), default=2)
    parser.add_argument("--stat-interval", type=float, default=30.0, help="seconds between stat (0: never)")
    parser.add_argument("--keepalive-interval", type=float, default=10.0,
                        help="seconds between PULL_DATA (0: only the first)")
    parser.add_argument("--eui-base", default="0016c001ff000000", help="EUI of gateway 0; gateway i gets base + i")
    parser.add_argument("--devices-per-gateway", type=int, default=1)
    parser.add_argument("--dev-addr-base", default="26000000", help="DevAddr (hex) of the first device")
    parser.add_argument("--tx-ack", default="success", metavar="success|check|ERROR",
                        help="answer to PULL_RESP: empty TX_ACK, the reference forwarder's timing check, or an "
                             f"error ({', '.join(TX_ACK_ERRORS)})")
    parser.add_argument("--single-socket", action="store_true",
                        help="send PULL_DATA/TX_ACK from the up socket (some vendor forwarders)")
    parser.add_argument("--ack-timeout", type=float, default=2.0, help="seconds before an ack counts as lost")
    parser.add_argument("--start-spread", type=float, default=1.0, help="gateways start within this many seconds")
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait for acks after the traffic")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds to stay connected (keepalives only) after the uplinks")
    parser.add_argument("--gps", action="store_true", help="add time and tmms to rxpk")
    parser.add_argument("--location", type=_location, default=None, metavar="LAT,LON[,ALT]",
                        help="GPS position reported in stat")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    tx_ack: TxAckPolicy
    if args.tx_ack in ("success", "none", "NONE"):
        tx_ack = None
    elif args.tx_ack == "check" or args.tx_ack in TX_ACK_ERRORS:
        tx_ack = args.tx_ack
    else:
        raise SystemExit(f"simulate: unknown --tx-ack {args.tx_ack!r}")
    if args.gateways < 1:
        raise SystemExit("simulate: --gateways must be at least 1")
    if args.payload_size < 0 or args.payload_size > 222:
        raise SystemExit("simulate: --payload-size must be 0..222")
    if args.protocol == "grpc" and not args.api_key:
        raise SystemExit("simulate: --protocol grpc needs an API key with the gateway link right "
                         "(--api-key or GS_API_KEY; create one with `gatewayserver keys create`)")
    address = args.address or ("127.0.0.1:1884" if args.protocol == "grpc" else "127.0.0.1:1700")
    return SimulationConfig(
        protocol=args.protocol,
        api_key=args.api_key,
        address=parse_address(address, 1884 if args.protocol == "grpc" else 1700),
        gateways=args.gateways,
        rate=args.rate,
        duration=args.duration,
        spreading_factors=args.spreading_factor,
        bandwidth_khz=args.bandwidth,
        coding_rate=args.coding_rate,
        payload_size=args.payload_size,
        frequencies=args.frequencies or args.frequency_plan,
        protocol_version=args.protocol_version,
        stat_interval=args.stat_interval,
        keepalive_interval=args.keepalive_interval,
        eui_base=_eui_int(args.eui_base),
        devices_per_gateway=args.devices_per_gateway,
        dev_addr_base=int(args.dev_addr_base, 16),
        tx_ack=tx_ack,
        single_socket=args.single_socket,
        ack_timeout=args.ack_timeout,
        start_spread=args.start_spread,
        drain=args.drain,
        hold=args.hold,
        gps=args.gps,
        location=args.location,
        seed=args.seed,
    )


def format_summary(s: Mapping[str, Any]) -> str:
    def lat(d: Mapping[str, Any]) -> str:
        if d["p50"] is None:
            return "-"
        return f"p50 {d['p50']:.3f} ms, p99 {d['p99']:.3f} ms, max {d['max']:.3f} ms"

    lines = [
        f"simulated {s['gateways']} gateway(s) against {s['address']} "
        + (f"(protocol v{s['protocol_version']})" if s.get("protocol", "udp") == "udp" else "(gRPC LinkGateway)"),
        f"  uplinks sent      {s['uplinks_sent']} in {s['uplink_seconds']} s "
        f"({s['achieved_rate']}/s, target {s['target_rate']}/s)",
        f"  status sent       {s['status_sent']}",
    ]
    if s.get("protocol", "udp") == "udp":
        lines += [
            f"  PUSH_DATA         {s['push_data_sent']} sent, {s['push_acks']} PUSH_ACK, {s['push_acks_lost']} lost",
            f"  PUSH_ACK latency  {lat(s['push_ack_latency_ms'])}",
            f"  PULL_DATA         {s['pull_data_sent']} sent, {s['pull_acks']} PULL_ACK, {s['pull_acks_lost']} lost",
            f"  PULL_ACK latency  {lat(s['pull_ack_latency_ms'])}",
            f"  PULL_RESP         {s['pull_resp_received']} received, {s['tx_acks_sent']} TX_ACK sent "
            f"({s['tx_ack_errors_sent']} with an error)",
        ]
    else:
        lines.append(f"  downlinks         {s['pull_resp_received']} received, {s['tx_acks_sent']} TX acknowledgments "
                     f"sent ({s['tx_ack_errors_sent']} with an error)")
    problems = {k: s[k] for k in ("unexpected_acks", "version_mismatches", "malformed", "send_errors") if s[k]}
    if problems:
        lines.append("  problems          " + ", ".join(f"{k} {v}" for k, v in problems.items()))
    if s.get("link_errors"):
        lines.append("  link errors       " + "; ".join(s["link_errors"]))
    for d in s["downlinks"]:
        if "txpk" not in d:
            lines.append(f"  downlink {d['gateway_id']} {d['frequency']} Hz tmst {d['timestamp']}")
            continue
        answer = ("TX_ACK " + (d["tx_ack_error"] or "ok")) if d["answered"] else "no TX_ACK"
        lines.append(f"  downlink {d['eui']} token {d['token']}: {orjson.dumps(d['txpk']).decode()} -> {answer}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``gatewayserver simulate``: 0 when every ack arrived, 1 when some were lost."""
    config = config_from_args(args)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        summary = asyncio.run(run_simulation(config))
    else:
        summary = uvloop.run(run_simulation(config))
    if args.json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        sys.stdout.write(format_summary(summary) + "\n")
    sys.stdout.flush()
    lost = summary["push_acks_lost"] + summary["pull_acks_lost"] + len(summary["link_errors"])
    return 1 if lost else 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to the ``gatewayserver`` command."""
    parser = subparsers.add_parser(
        "simulate",
        help="run simulated gateways (Semtech UDP, or gRPC LinkGateway) against a Gateway Server",
        description="Run N simulated gateways: with --protocol grpc each links through GtwGs.LinkGateway with "
                    "--api-key; by default packet forwarders (PUSH_DATA rxpk/stat on one socket, PULL_DATA/TX_ACK on "
                    "another) against a Gateway Server and report the acks, latencies and downlinks seen.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gatewayserver.simulator")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
