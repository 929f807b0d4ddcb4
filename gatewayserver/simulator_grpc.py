"""A simulated gateway linked through `ttn.lorawan.v3.GtwGs.LinkGateway`, the gRPC twin of `SimulatedGateway`.

It speaks the Gateway Server's public gRPC API with the generated stubs, as a gateway holding an API key with
`RIGHT_GATEWAY_LINK` would: metadata `id` = its gateway ID and `authorization: Bearer <key>`. Uplinks carry the
same LoRaWAN frames as the UDP simulator's (real MIC, increasing FCnt, send-time stamp), so the stand-in Network
Server measures both frontends alike. Downlinks arrive as `GatewayDown.downlink_message` and are answered with a
`TxAcknowledgment` carrying their correlation ids, by the same policy as the UDP simulator (`None`: success, or
an error name such as `"TOO_LATE"`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import grpc

from .ttnpb import gateway_pb2, gatewayserver_pb2, gatewayserver_pb2_grpc, messages_pb2

_COUNTER_WRAP = 1 << 32
_RESULTS = messages_pb2.TxAcknowledgment.Result


class LinkedGateway:
    """One gateway on a `LinkGateway` stream. Create with `await LinkedGateway.connect(...)`; `close()` when done.

    `received_downlinks` holds every `DownlinkMessage` received; `error` the status the stream ended with, if the
    server ended it. Writes go through a queue, so `send_*` never waits for the server.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        gateway_id: str,
        api_key: str,
        *,
        tx_ack: str | None = None,
        auto_tx_ack: bool = True,
        frequencies: Sequence[float] = (868.1, 868.3, 868.5),
        spreading_factors: Sequence[int] = (7,),
        bandwidth_khz: int = 125,
        coding_rate: str = "4/5",
        payload_size: int = 12,
        devices: Sequence[Any] | None = None,
        seed: int | None = None,
        own_channel: bool = False,
    ) -> None:
        from .simulator import GatewayCounters, SimulatedDevice

        self.gateway_id = gateway_id
        self.tx_ack = tx_ack
        self.auto_tx_ack = auto_tx_ack
        self.frequencies = tuple(frequencies)
        self.spreading_factors = tuple(spreading_factors)
        self.bandwidth_khz = bandwidth_khz
        self.coding_rate = coding_rate
        self.payload_size = payload_size
        # The UDP simulator's counters, of which a link uses the uplink, status, downlink and TX ack ones.
        self.counters = GatewayCounters()
        self.push_ack_latencies: list[int] = []  # a link has no per-uplink ack: always empty
        self.pull_ack_latencies: list[int] = []
        self.outstanding_acks = 0
        self.received_downlinks: asyncio.Queue[messages_pb2.DownlinkMessage] = asyncio.Queue()
        self.error: grpc.aio.AioRpcError | None = None
        self._random = random.Random(seed if seed is not None else hash(gateway_id))
        self._tmst_start = self._random.getrandbits(32)
        self._t0 = time.monotonic_ns()
        self._index = 0
        self.devices = list(devices) if devices else [SimulatedDevice(0x26000000 | self._random.getrandbits(24))]
        self._next_device = 0
        self._outbox: asyncio.Queue[gatewayserver_pb2.GatewayUp | None] = asyncio.Queue()
        self._channel = channel
        self._own_channel = own_channel
        stub = gatewayserver_pb2_grpc.GtwGsStub(channel)
        metadata = (("id", gateway_id), ("authorization", f"Bearer {api_key}"))
        self.call = stub.LinkGateway(self._requests(), metadata=metadata)
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, target: str, gateway_id: str, api_key: str, **kwargs: Any) -> LinkedGateway:
        """Open a channel to `target` (HOST:PORT) and link; the link is up once the server saw the metadata."""
        channel = grpc.aio.insecure_channel(target)
        return cls(channel, gateway_id, api_key, own_channel=True, **kwargs)

    # -- the stream --

    async def _requests(self) -> AsyncIterator[gatewayserver_pb2.GatewayUp]:
        while True:
            up = await self._outbox.get()
            if up is None:
                return
            yield up

    async def _read(self) -> None:
        try:
            async for down in self.call:
                if not down.HasField("downlink_message"):
                    continue
                message = down.downlink_message
                self.counters.pull_resp_received += 1
                await self.received_downlinks.put(message)
                if self.auto_tx_ack:
                    self.acknowledge(message, self.tx_ack)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.error = exc
        finally:
            self.closed.set()

    def send(self, up: gatewayserver_pb2.GatewayUp) -> None:
        self._outbox.put_nowait(up)

    # -- traffic --

    def tmst(self) -> int:
        """The simulated concentrator counter: 32-bit microseconds, free-running from a random start."""
        return (self._tmst_start + (time.monotonic_ns() - self._t0) // 1000) % _COUNTER_WRAP

    def make_uplink(
        self,
        payload: bytes | None = None,
        *,
        freq: float | None = None,
        sf: int | None = None,
        rssi: float | None = None,
        snr: float | None = None,
        tmst: int | None = None,
    ) -> messages_pb2.UplinkMessage:
        i = self._index
        self._index += 1
        if payload is None:
            device = self.devices[self._next_device]
            self._next_device = (self._next_device + 1) % len(self.devices)
            payload = device.next_frame(self.payload_size)
        channel = i % len(self.frequencies)
        frequency_mhz = self.frequencies[channel] if freq is None else freq
        up = messages_pb2.UplinkMessage(raw_payload=payload)
        up.settings.frequency = round(frequency_mhz * 1_000_000)
        lora = up.settings.data_rate.lora
        lora.spreading_factor = sf or self.spreading_factors[i % len(self.spreading_factors)]
        lora.bandwidth = self.bandwidth_khz * 1000
        lora.coding_rate = self.coding_rate
        md = up.rx_metadata.add()
        md.gateway_ids.gateway_id = self.gateway_id
        md.timestamp = self.tmst() if tmst is None else tmst
        md.rssi = md.channel_rssi = self._random.randint(-120, -40) if rssi is None else rssi
        md.snr = round(self._random.uniform(-10.0, 12.0), 1) if snr is None else snr
        md.channel_index = channel
        up.settings.timestamp = md.timestamp
        return up

    async def send_uplink(self, payload: bytes | None = None, **fields: Any) -> None:
        """Send one uplink in its own `GatewayUp` (`fields` as for `make_uplink`)."""
        self.send(gatewayserver_pb2.GatewayUp(uplink_messages=[self.make_uplink(payload, **fields)]))
        self.counters.uplinks_sent += 1

    async def send_status(self, **versions: str) -> None:
        status = gateway_pb2.GatewayStatus()
        status.time.GetCurrentTime()
        status.versions.update(versions or {"simulator": "grpc"})
        self.send(gatewayserver_pb2.GatewayUp(gateway_status=status))
        self.counters.status_sent += 1

    def acknowledge(self, message: messages_pb2.DownlinkMessage, error: str | None = None) -> None:
        """Answer a downlink: success, or the named `TxAcknowledgment.Result`."""
        ack = messages_pb2.TxAcknowledgment(correlation_ids=message.correlation_ids)
        if error:
            ack.result = cast(messages_pb2.TxAcknowledgment.Result, _RESULTS.Value(error))
            self.counters.tx_ack_errors_sent += 1
        self.send(gatewayserver_pb2.GatewayUp(tx_acknowledgment=ack))
        self.counters.tx_acks_sent += 1

    async def wait_for_acks(self, timeout: float | None = None) -> bool:
        return True  # nothing to wait for: a link acknowledges no uplink

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was handed to the stream; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while not self._outbox.empty() and not self.closed.is_set():
                    await asyncio.sleep(0.005)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self._outbox.put_nowait(None)  # half-close: the server sees the end of the stream
        try:
            await asyncio.wait_for(self.closed.wait(), 5.0)
        except TimeoutError:
            self.call.cancel()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        if self._own_channel:
            await self._channel.close()

    async def __aenter__(self) -> LinkedGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
