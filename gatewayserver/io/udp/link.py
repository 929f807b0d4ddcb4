"""What the core sees of a Semtech UDP gateway (`core.connection.Link`), and how its downlinks are written; sans-I/O.

A forwarder is reachable only through the address of its latest PULL_DATA, within the downlink path expiry. A
forwarder without a just-in-time queue (no TX_ACK seen yet, or `schedule_downlink_late` in the registry) gets its
PULL_RESP `schedule_late` before the transmission; an `imme` one goes out `IMME_LATENCY_NS` before its booked time,
because the forwarder puts it on air that long after receiving it. The core holds each downlink until then.

Each PULL_RESP gets a fresh token, which the forwarder echoes in its TX_ACK; the link keeps token → the core's
downlink id (bounded like the core's own pending list) so the acknowledgment is matched by correlation id as on
any other frontend.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from ...downlink import errors as err
from ...downlink.planner import IMME_LATENCY_NS, Planned
from ...errors import GsError
from .packets import encode_pull_resp
from .translate import txpk_from_scheduled

if TYPE_CHECKING:
    from ...core.connection import Connection as CoreConnection
    from .connection import Connection

MAX_TOKENS = 64


class UdpLink:
    """The core's `Link` for one UDP connection."""

    protocol = "udp"

    __slots__ = ("udp", "downlink_path_expires_ns", "schedule_late_ns", "tokens", "on_disconnect")

    def __init__(self, udp: Connection, downlink_path_expires_ns: int, schedule_late_ns: int) -> None:
        self.udp = udp
        self.downlink_path_expires_ns = downlink_path_expires_ns
        self.schedule_late_ns = schedule_late_ns
        # PULL_RESP token -> the core's downlink id, oldest first; made at the first downlink.
        self.tokens: OrderedDict[int, str] | None = None
        self.on_disconnect: object = None

    @property
    def core(self) -> CoreConnection:
        core = self.udp.core
        assert core is not None
        return core

    def remote_ip(self) -> str:
        return str(self.udp.host)

    def downlink_path_error(self, now: int) -> GsError | None:
        udp = self.udp
        if udp.closed or udp.transmit is None or udp.downlink_path(now, self.downlink_path_expires_ns) is None:
            return err.downlink_path_expired()
        return None

    def release_at(self, planned: Planned, now: int) -> int:
        if planned.immediate:
            # `imme` carries no time: the only way to honour a booking later than the forwarder's own delay (slid
            # past other emissions or the duty cycle) is to send it that much later.
            return planned.tx_server_time - IMME_LATENCY_NS
        if not self.udp.has_jit_queue or self.udp.entry.schedule_downlink_late:
            return planned.tx_server_time - self.schedule_late_ns
        return now

    def wake(self) -> None:
        """Write every released downlink as a PULL_RESP to the gateway's downlink address."""
        udp = self.udp
        core = self.core
        transmit = udp.transmit
        addr = udp.down_addr
        for tx in core.drain():
            if transmit is None or addr is None:  # the core checked the path a moment ago; nothing to send with
                core.forget(tx.downlink_id)
                continue
            token = udp.take_pull_resp_token()
            body = txpk_from_scheduled(tx.message, tx.tx_power, immediate=tx.immediate, gps_time_ms=tx.gps_time_ms)
            transmit(encode_pull_resp(udp.version, token.to_bytes(2, "big"), body), addr)
            if udp.version >= 2:  # protocol v1 forwarders never acknowledge
                tokens = self.tokens
                if tokens is None:
                    tokens = self.tokens = OrderedDict()
                tokens[token] = tx.downlink_id
                while len(tokens) > MAX_TOKENS:
                    tokens.popitem(last=False)
            else:
                core.forget(tx.downlink_id)

    def downlink_id(self, token: int) -> str | None:
        """The core's downlink id for a TX_ACK's token (once: a repeated TX_ACK matches nothing)."""
        return self.tokens.pop(token, None) if self.tokens is not None else None

    def disconnected(self, reason: str) -> None:
        callback = self.on_disconnect
        if callable(callback):
            callback(self.udp, reason)
