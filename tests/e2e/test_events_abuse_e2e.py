"""Hostile event API callers against the real daemon: gateways keep their acks, history and the configured bounds.

The daemon runs on its own loop thread (harness.py); the tests are plain blocking clients (urllib for HTTP, grpc's
synchronous stubs), so a stalled daemon shows as a missing ack or a request that never returns.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from harness import Forwarder, Harness, data_frame, next_uplink, rxpk, wait_for

from gatewayserver.api.keys import create_key
from gatewayserver.events import metrics as event_metrics
from gatewayserver.ttnpb import events_pb2, events_pb2_grpc

EUI_GOOD = bytes.fromhex("AA555A00000000B1")
EUI_FLOOD = bytes.fromhex("AA555A00000000A1")
CATASTROPHIC = "/(.|.|.)*X/"
#: Generous: a loaded 2-core machine answers in milliseconds; a stalled loop (Python's `re` on the pattern above)
#: would not answer for hours.
TIMEOUT = 60.0
PER_GATEWAY = 20


def events_published() -> float:
    return event_metrics.published.value()


def _key(tmp_path: Path, rights: list[str]) -> tuple[str, str]:
    keys_file = str(tmp_path / "keys.json")
    token, _ = create_key(keys_file, "ops", rights)
    return keys_file, token


def _post(harness: Harness, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST /api/v3/events; returns (status, the error body or the open response for a 200)."""
    assert harness.daemon is not None and harness.daemon.api is not None
    request = urllib.request.Request(
        f"http://127.0.0.1:{harness.daemon.api.http.port}/api/v3/events",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    return response.status, response


def _grpc_stream(harness: Harness, token: str, gateway_id: str, names: list[str]) -> Any:
    assert harness.daemon is not None and harness.daemon.api is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{harness.daemon.api.grpc.port}")
    request = events_pb2.StreamEventsRequest(names=names)
    request.identifiers.add().gateway_ids.gateway_id = gateway_id
    stream = events_pb2_grpc.EventsStub(channel).Stream(
        request, metadata=(("authorization", f"Bearer {token}"),), timeout=TIMEOUT
    )
    return channel, stream


class Pusher(threading.Thread):
    """A gateway pushing uplinks back to back, counting the PUSH_ACKs it gets."""

    def __init__(self, harness: Harness) -> None:
        super().__init__(daemon=True)
        self.forwarder = Forwarder(harness.udp_address, EUI_GOOD)
        self.forwarder.up.settimeout(TIMEOUT)
        self.stop = threading.Event()
        self.sent = 0
        self.acked = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.sent += 1
                self.forwarder.push({"rxpk": [rxpk(data_frame(fcnt=self.sent))]})
                self.acked += 1
        except BaseException as exc:
            self.error = exc
        finally:
            self.forwarder.close()


def test_hostile_name_patterns_do_not_stall_the_gateways(tmp_path: Path) -> None:
    keys_file, token = _key(tmp_path, ["RIGHT_GATEWAY_ALL"])
    with Harness(keys_file=keys_file, flood_datagrams=0) as harness:
        pusher = Pusher(harness)
        pusher.start()
        try:
            wait_for(lambda: pusher.acked >= 5, timeout=TIMEOUT)
            answered = 0
            for _ in range(10):
                status, body = _post(
                    harness, token, {"identifiers": [{"gateway_ids": {"gateway_id": "gtw1"}}], "names": [CATASTROPHIC]}
                )
                assert status == 400, body
                assert body["details"][0]["name"] == "no_matching_events"
                channel, stream = _grpc_stream(harness, token, "gtw1", [CATASTROPHIC])
                try:
                    next(stream)
                    raise AssertionError("stream accepted a pattern that matches no event")
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
                finally:
                    channel.close()
                answered += 2
            acked_during = pusher.acked
        finally:
            pusher.stop.set()
            pusher.join(TIMEOUT)
    print(f"hostile requests answered: {answered}; gateway acks: {pusher.acked} of {pusher.sent} sent")
    assert pusher.error is None, pusher.error
    assert answered == 20
    assert acked_during > 5
    assert pusher.acked == pusher.sent


def test_a_flooding_gateway_leaves_the_others_history(tmp_path: Path) -> None:
    keys_file, token = _key(tmp_path, ["RIGHT_GATEWAY_ALL"])
    options = {"keys_file": keys_file, "flood_datagrams": 0, "events_history_size": 100,
               "events_history_per_gateway": PER_GATEWAY}
    with Harness(**options) as harness:
        good = Forwarder(harness.udp_address, EUI_GOOD)
        flood = Forwarder(harness.udp_address, EUI_FLOOD)
        try:
            for fcnt in range(1, 4):
                good.push({"rxpk": [rxpk(data_frame(fcnt=fcnt))]})
                next_uplink(harness.ns)
            published_before = harness.run_in_loop(events_published)
            for _ in range(300):  # each datagram's invalid rxpk entry becomes a gs.up.drop event of the flooder
                flood.push(b'{"rxpk":[0]}')
            # The ack goes out before the datagram is handled; one loop round trip later all 300 are handled.
            flooded = harness.run_in_loop(events_published) - published_before
            history = harness.run_in_loop(lambda: harness.daemon.bus.event_history)
            print(f"flooder published {flooded} events; history keeps {len(history)}, of them "
                  f"{history.gateway_count('eui-' + EUI_FLOOD.hex())} of the flooder")
            assert flooded >= 300
            assert history.gateway_count("eui-" + EUI_FLOOD.hex()) == PER_GATEWAY

            good_id = "eui-" + EUI_GOOD.hex()
            status, response = _post(
                harness, token, {"identifiers": [{"gateway_ids": {"gateway_id": good_id}}], "tail": 50}
            )
            assert status == 200
            names = []
            with response:
                assert json.loads(response.readline())["result"]["name"] == "events.stream.start"
                while names.count("gs.up.receive") < 3:
                    line = response.readline()
                    if line.strip():
                        names.append(json.loads(line)["result"]["name"])
            assert names[0] == "gs.gateway.connect"
            assert names.count("gs.up.receive") == 3
        finally:
            good.close()
            flood.close()


def test_stream_bounds_come_from_the_configuration(tmp_path: Path) -> None:
    keys_file, token = _key(tmp_path, ["RIGHT_GATEWAY_ALL"])
    options = {"keys_file": keys_file, "events_max_streams_per_key": 1, "events_max_gateway_ids": 3}
    with Harness(**options) as harness:
        ids = [{"gateway_ids": {"gateway_id": f"gtw-{i}"}} for i in range(4)]
        status, body = _post(harness, token, {"identifiers": ids})
        assert status == 400 and body["details"][0]["name"] == "too_many_identifiers"
        status, first = _post(harness, token, {"identifiers": ids[:3]})
        assert status == 200
        with first:
            assert json.loads(first.readline())["result"]["name"] == "events.stream.start"
            status, body = _post(harness, token, {"identifiers": ids[:1]})
            assert status == 429 and body["details"][0]["name"] == "too_many_streams_per_key"
        # The closed stream's slot comes back.
        wait_for(lambda: harness.run_in_loop(lambda: harness.daemon.api.core.stream_slots.total) == 0, timeout=TIMEOUT)
        status, again = _post(harness, token, {"identifiers": ids[:1]})
        assert status == 200
        again.close()
