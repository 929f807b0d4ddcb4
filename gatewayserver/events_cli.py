"""`gatewayserver events subscribe`: follow a running daemon's events from a terminal.

The operator's counterpart of the reference CLI's `events subscribe`. It is an ordinary client of the daemon's
`POST /api/v3/events` stream (the reference JSON shape, one `{"result": <event>}` per line), so it works against a
daemon on another host and needs an API key with the gateways' read rights, like any other client.

A stream does not survive a daemon restart or a network cut, so the command reconnects with a growing backoff and
resumes where it left off: the next request asks for events `after` the last one printed (minus one nanosecond,
since several events can share a timestamp) and the unique IDs already printed are skipped, so nothing is printed
twice and, within the daemon's history, nothing is missed. Ctrl-C ends it with exit status 0.

The parts that do not touch the network (`StreamState`, `summary`, `format_line`, `parse_time`) are plain
functions of their input so they can be tested without a daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

EVENTS_PATH = "/api/v3/events"
CONNECTIONS_PATH = "/api/v3/gs/gateways/connections"
DEFAULT_ADDRESS = "http://127.0.0.1:1885"
#: Backoff between reconnection attempts: first, factor, ceiling (seconds).
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
#: Unique IDs remembered to skip events a resumed stream sends again.
SEEN_IDS = 4096
#: The daemon's own per-connection marker; not an event of any gateway, so it is not printed.
STREAM_START = "events.stream.start"

_TIME = re.compile(r"\A(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z")


class FatalError(Exception):
    """A failure that retrying cannot fix (bad key, refused request); `exit_code` is the command's status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- pure parts ------------------------------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """RFC 3339 (`2026-12-02T10:00:00Z`, `...T10:00:00.123456789+01:00`) → Unix nanoseconds."""
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r} (example: 2026-12-02T10:00:00Z)")
    whole, fraction, zone = match.groups()
    base = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    nanos = int((fraction or "").ljust(9, "0"))
    return int(base.timestamp()) * 1_000_000_000 + nanos


def format_time(time_ns: int) -> str:
    """Unix nanoseconds → RFC 3339 with nanoseconds, as the daemon writes event times."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def _short_time(text: str) -> str:
    """`2026-12-02T10:00:00.123456789Z` → `2026-12-02T10:00:00.123Z` (milliseconds read best in a terminal)."""
    match = _TIME.match(text)
    if match is None:
        return text
    whole, fraction, zone = match.groups()
    return f"{whole}.{(fraction or '').ljust(3, '0')[:3]}{zone}"


def _gateways(event: dict[str, Any]) -> str:
    ids = [
        str(entry.get("gateway_ids", {}).get("gateway_id", ""))
        for entry in event.get("identifiers", []) or []
        if isinstance(entry, dict) and isinstance(entry.get("gateway_ids"), dict)
    ]
    return ",".join(i for i in ids if i) or "-"


def _mhz(hz: Any) -> str:
    try:
        return f"{int(hz) / 1e6:g}MHz"
    except (TypeError, ValueError):
        return "?"


def _payload_length(b64: Any) -> int | None:
    if not isinstance(b64, str):
        return None
    import base64
    import binascii

    try:
        return len(base64.b64decode(b64))
    except (binascii.Error, ValueError):
        return None


def _data_rate(dr: Any) -> str:
    if not isinstance(dr, dict):
        return ""
    lora = dr.get("lora")
    if isinstance(lora, dict):
        bw = int(lora.get("bandwidth", 0) or 0) // 1000
        return f"SF{lora.get('spreading_factor', '?')}BW{bw}"
    fsk = dr.get("fsk")
    if isinstance(fsk, dict):
        return f"FSK{fsk.get('bit_rate', '?')}"
    if "lrfhss" in dr:
        return "LR-FHSS"
    return ""


def summary(event: dict[str, Any]) -> str:
    """A few words about the event's data: what an operator looks at first."""
    data = event.get("data")
    if not isinstance(data, dict):
        return ""
    type_url = str(data.get("@type", ""))
    kind = type_url.rsplit(".", 1)[-1]
    if kind == "GatewayUplinkMessage":
        message = data.get("message", {}) or {}
        settings = message.get("settings", {}) or {}
        parts = [_mhz(settings.get("frequency")), _data_rate(settings.get("data_rate"))]
        metadata = message.get("rx_metadata") or []
        if metadata and isinstance(metadata[0], dict):
            first = metadata[0]
            parts.append(f"rssi={first.get('rssi', first.get('channel_rssi', '?'))}")
            if "snr" in first:
                parts.append(f"snr={first['snr']}")
        length = _payload_length(message.get("raw_payload"))
        if length is not None:
            parts.append(f"{length} bytes")
        return " ".join(p for p in parts if p)
    if kind == "ErrorDetails":
        text = str(data.get("message_format", ""))
        attributes = data.get("attributes") or {}
        if isinstance(attributes, dict):
            for key, value in attributes.items():
                text = text.replace("{" + str(key) + "}", str(value))
        return f"{data.get('namespace', '')}:{data.get('name', '')} ({text})"
    if kind == "GatewayStatus":
        versions = data.get("versions") or {}
        parts = ["status"]
        if isinstance(versions, dict) and versions:
            parts.append(" ".join(f"{k}={v}" for k, v in sorted(versions.items())))
        return " ".join(parts)
    if kind == "DownlinkMessage":
        scheduled = data.get("scheduled", {}) or {}
        length = _payload_length(data.get("raw_payload"))
        parts = [_mhz(scheduled.get("frequency")), _data_rate(scheduled.get("data_rate"))]
        if length is not None:
            parts.append(f"{length} bytes")
        return " ".join(p for p in parts if p and p != "?")
    if kind == "GatewayConnectionStats":
        return f"uplinks={data.get('uplink_count', 0)} downlinks={data.get('downlink_count', 0)}"
    if kind == "Value":
        value = data.get("value")
        return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value
    return kind


def format_line(event: dict[str, Any]) -> str:
    """`<time>  <name>  <gateway>  <summary>`: one event, one line."""
    parts = [_short_time(str(event.get("time", "-"))), str(event.get("name", "?")), _gateways(event)]
    text = summary(event)
    if text:
        parts.append(text)
    return "  ".join(parts)


@dataclass
class StreamState:
    """What survives a reconnection: where to resume and which events were printed already."""

    after_ns: int | None = None
    tail: int = 0
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def request(self, gateway_ids: Iterable[str], names: Iterable[str]) -> dict[str, Any]:
        """The body of the next `POST /api/v3/events`."""
        body: dict[str, Any] = {"identifiers": [{"gateway_ids": {"gateway_id": g}} for g in gateway_ids]}
        names = list(names)
        if names:
            body["names"] = names
        if self.tail:
            body["tail"] = self.tail
        if self.after_ns is not None:
            body["after"] = format_time(self.after_ns)
        return body

    def connected(self, start_time_ns: int | None) -> None:
        """The stream is open: `tail` is spent, and from now on a resumed stream starts at least here."""
        self.tail = 0
        if self.after_ns is None and start_time_ns is not None:
            self.after_ns = start_time_ns - 1

    def accept(self, event: dict[str, Any]) -> bool:
        """True when the event is to be printed (not seen before); moves the resume point past it."""
        unique_id = event.get("unique_id")
        if isinstance(unique_id, str):
            if unique_id in self.seen:
                return False
            self.seen[unique_id] = None
            if len(self.seen) > SEEN_IDS:
                self.seen.popitem(last=False)
        try:
            time_ns = parse_time(str(event.get("time", "")))
        except ValueError:
            return True
        # Minus one: another event may share this nanosecond and the daemon sends only events strictly after.
        if self.after_ns is None or time_ns - 1 > self.after_ns:
            self.after_ns = time_ns - 1
        return True


# --- the command -----------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    events = subparsers.add_parser("events", help="follow the events of a running daemon")
    sub = events.add_subparsers(dest="events_command", metavar="COMMAND")
    sub.required = True
    parser = sub.add_parser(
        "subscribe",
        help="stream events from a running daemon (Ctrl-C to stop)",
        description="Stream events from a running daemon over POST /api/v3/events, one line per event; "
        "reconnects when the daemon goes away and resumes without duplicates.",
    )
    parser.add_argument(
        "--gateway-id", action="extend", nargs="+", default=[], metavar="ID",
        help="gateways to follow (one or more, flag repeatable; default: every gateway connected when the stream "
        "opens)",
    )
    parser.add_argument(
        "--names", action="extend", nargs="+", default=[], metavar="REGEX",
        help="only events whose name matches one of these regular expressions, e.g. 'gs\\.up\\.' (flag "
        "repeatable)",
    )
    parser.add_argument("--tail", type=_non_negative, default=0, metavar="N", help="first print the last N events")
    parser.add_argument(
        "--after", type=_time_flag, default=None, metavar="TIME",
        help="first print the events since TIME (RFC 3339, e.g. 2026-12-02T10:00:00Z)",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("GS_API_KEY", ""), metavar="KEY",
        help="API key with the gateways' read rights (default: GS_API_KEY)",
    )
    parser.add_argument(
        "--address", default=os.environ.get("GS_HTTP_ADDRESS", DEFAULT_ADDRESS), metavar="URL",
        help=f"daemon HTTP base URL (default {DEFAULT_ADDRESS}, or GS_HTTP_ADDRESS)",
    )
    parser.add_argument("--json", action="store_true", help="print each event as one JSON object a line")
    parser.set_defaults(func=_subscribe, parser=parser)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"negative: {text!r}")
    return value


def _time_flag(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _subscribe(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    address = str(args.address).rstrip("/")
    if not re.match(r"\Ahttps?://[^/\s]+\Z", address):
        parser.error(f"--address: expected http://HOST:PORT or https://HOST:PORT, got {args.address!r}")
    if not args.api_key:
        parser.error("no API key: pass --api-key KEY or set GS_API_KEY")
    for name in args.names:
        if not name:
            parser.error("--names: empty expression")
    subscriber = Subscriber(
        address=address,
        api_key=args.api_key,
        gateway_ids=list(dict.fromkeys(args.gateway_id)),
        names=[n if len(n) >= 2 and n.startswith("/") and n.endswith("/") else f"/{n}/" for n in args.names],
        state=StreamState(after_ns=args.after, tail=args.tail),
        as_json=args.json,
    )
    try:
        return asyncio.run(subscriber.run())
    except KeyboardInterrupt:  # Ctrl-C is how this command is meant to end
        return 0
    except FatalError as exc:
        sys.stderr.write(f"gatewayserver events subscribe: {exc}\n")
        return exc.exit_code


@dataclass
class Subscriber:
    address: str
    api_key: str
    gateway_ids: list[str]
    names: list[str]
    state: StreamState
    as_json: bool = False
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr

    def _note(self, text: str) -> None:
        self.err.write(f"gatewayserver events subscribe: {text}\n")
        self.err.flush()

    async def run(self) -> int:
        """Stream until Ctrl-C (SIGINT or SIGTERM), reconnecting with backoff; 0 when interrupted.

        The interrupt is handled here, not left to asyncio.run: a cancellation that aiohttp turns into a timeout
        (when its timer races the cancel) would otherwise look like a dropped connection and be retried forever.
        """
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        stopping = False

        def interrupt() -> None:
            nonlocal stopping
            stopping = True
            if main is not None:
                main.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, interrupt)
        try:
            return await self._follow(lambda: stopping)
        except asyncio.CancelledError:
            if stopping:
                return 0
            raise

    async def _follow(self, stopping: Callable[[], bool]) -> int:
        import aiohttp

        delay = BACKOFF_FIRST
        timeout = aiohttp.ClientTimeout(total=None, connect=10.0, sock_connect=10.0)
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        async with aiohttp.ClientSession(timeout=timeout, headers=headers, read_bufsize=1 << 20) as session:
            while True:
                try:
                    printed = await self._stream_once(session)
                    if printed is None:
                        reason = "no gateway is connected yet (pass --gateway-id to follow specific ones)"
                    else:
                        delay = BACKOFF_FIRST  # it was connected: start the backoff over
                        reason = "stream closed by the daemon"
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    if stopping():
                        return 0
                    reason = _connection_reason(exc, self.address)
                if stopping():
                    return 0
                self._note(f"{reason}; reconnecting in {delay:g}s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _gateway_ids(self, session: Any) -> list[str]:
        if self.gateway_ids:
            return self.gateway_ids
        async with session.get(self.address + CONNECTIONS_PATH) as response:
            await _check(response)
            document = await response.json(content_type=None)
        ids = [str(g.get("gateway_id")) for g in document.get("gateways", []) if g.get("gateway_id")]
        if not ids:
            raise _NothingToFollow
        return ids

    async def _stream_once(self, session: Any) -> int | None:
        """One stream, until it ends; None when it never opened (no gateways to follow yet)."""
        try:
            gateway_ids = await self._gateway_ids(session)
        except _NothingToFollow:
            return None
        body = self.state.request(gateway_ids, self.names)
        async with session.post(self.address + EVENTS_PATH, json=body) as response:
            try:
                await _check(response)
            except FatalError as exc:
                if not self.gateway_ids and "too many" in str(exc):
                    # Following every connected gateway hit the daemon's bound on ids per stream.
                    raise FatalError(
                        f"{len(gateway_ids)} gateways are connected, more than one stream may follow "
                        "(the daemon's events_max_gateway_ids); name the ones to follow with --gateway-id",
                        exit_code=2,
                    ) from None
                raise
            shown = ", ".join(gateway_ids[:5]) + (f" and {len(gateway_ids) - 5} more" if len(gateway_ids) > 5 else "")
            self._note(f"connected to {self.address}, following {shown}")
            printed = 0
            async for raw in response.content:
                line = raw.strip()
                if not line:
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    self._note("ignored a line that is not JSON")
                    continue
                if "error" in message:
                    error = message.get("error") or {}
                    self._note(f"the daemon ended the stream: {error.get('message', error)}")
                    break
                event = message.get("result")
                if not isinstance(event, dict):
                    continue
                if event.get("name") == STREAM_START:
                    try:
                        self.state.connected(parse_time(str(event.get("time", ""))))
                    except ValueError:
                        self.state.connected(None)
                    continue
                if not self.state.accept(event):
                    continue
                if self.as_json:
                    self.out.write(json.dumps(event, separators=(",", ":")) + "\n")
                else:
                    self.out.write(format_line(event) + "\n")
                self.out.flush()
                printed += 1
            return printed


class _NothingToFollow(Exception):
    pass


async def _check(response: Any) -> None:
    """Raise `FatalError` for answers retrying cannot change; let 5xx through to be retried."""
    if response.status < 400:
        return
    try:
        body = await response.json(content_type=None)
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except Exception:
        message = ""
    detail = f": {message}" if message else ""
    if response.status in (401, 403):
        raise FatalError(
            f"the daemon refused the API key (HTTP {response.status}{detail}); check --api-key / GS_API_KEY and "
            "that the key has the gateways' read rights"
        )
    if response.status in (400, 404):
        raise FatalError(f"the daemon refused the request (HTTP {response.status}{detail})", exit_code=2)
    if response.status < 500 and response.status != 429:
        raise FatalError(f"unexpected answer HTTP {response.status}{detail}")
    import aiohttp

    raise aiohttp.ClientConnectionError(f"HTTP {response.status}{detail}")


def _connection_reason(exc: BaseException, address: str) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"cannot reach {address}: timed out"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in text or "refused" in text.lower():
        return f"cannot reach {address}: connection refused (is the daemon running?)"
    if "HTTP " in text:
        return f"the daemon answered {text}"
    return f"lost the connection to {address} ({type(exc).__name__})"
