"""Hostile event stream requests over real HTTP and gRPC: rights before patterns, RE2, and the stream bounds.

This module's `stream_limits` fixture overrides conftest's, so the bounds are small enough to reach.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import grpc
import orjson
import pytest
from conftest import EUI1, Env, now_ns
from prometheus_client import REGISTRY
from test_api_grpc import bearer, error_details

from gatewayserver.api import core
from gatewayserver.api.streams import StreamLimits
from gatewayserver.events import definitions
from gatewayserver.events.definitions import (
    GS_UP_RECEIVE,
    MAX_NAME_LENGTH,
    MAX_NAMES,
    MAX_PATTERNS,
)
from gatewayserver.ttnpb import events_pb2, events_pb2_grpc

MAX_IDS = 50
PER_KEY = 2
TOTAL = 3
#: Backtracks exponentially in Python's `re` on any event name (no name contains an upper-case X); linear in RE2.
CATASTROPHIC = "/(.|.|.)*X/"
#: Valid syntax, but its program is far larger than the memory RE2 is allowed for one pattern.
HUGE_PROGRAM = "/" + ".{1000}" * 28 + "/"


@pytest.fixture
def stream_limits() -> StreamLimits:
    return StreamLimits(max_gateway_ids=MAX_IDS, max_streams_per_key=PER_KEY, max_streams=TOTAL)


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("gs_event_streams_refused_total", {"reason": reason}) or 0.0


def gateways_body(count: int, names: list[str] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"identifiers": [{"gateway_ids": {"gateway_id": f"gtw-{i}"}} for i in range(count)]}
    if names is not None:
        body["names"] = names
    return body


GTW1 = {"identifiers": [{"gateway_ids": {"gateway_id": "gtw1"}}]}


async def http_post(env: Env, body: object, key: str = "admin") -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(
        env.http + "/api/v3/events", headers=env.auth(key), data=orjson.dumps(body)
    ) as r:
        return r.status, orjson.loads(await r.read())


def grpc_request(gateway_ids: list[str], names: list[str] = ()) -> events_pb2.StreamEventsRequest:  # type: ignore[assignment]
    request = events_pb2.StreamEventsRequest(names=list(names))
    for gateway_id in gateway_ids:
        request.identifiers.add().gateway_ids.gateway_id = gateway_id
    return request


async def grpc_error(env: Env, request: events_pb2.StreamEventsRequest, key: str = "admin") -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        call = events_pb2_grpc.EventsStub(channel).Stream(request, metadata=bearer(env, key))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(call.read(), 30)
        return info.value


async def eventually(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --- names: RE2, rights first, bounds -------------------------------------------------------------------------


async def test_catastrophic_pattern_is_answered_over_http_and_grpc(env: Env) -> None:
    before = refused("invalid_regexp")
    for _ in range(3):
        status, body = await http_post(env, {**GTW1, "names": [CATASTROPHIC]})
        assert status == 400
        assert body["message"] == "error:pkg/events:no_matching_events (no matching events for regexp `(.|.|.)*X`)"
        err = await grpc_error(env, grpc_request(["gtw1"], [CATASTROPHIC]))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(err).name == "no_matching_events"
    # The same shape of pattern that does match streams normally: RE2 searches like Go's MatchString.
    async with aiohttp.ClientSession() as s, s.post(
        env.http + "/api/v3/events", headers=env.auth("admin"), data=orjson.dumps({**GTW1, "names": ["/(.|.|.)*k/"]})
    ) as r:
        assert r.status == 200
        start = orjson.loads(await r.content.readline())["result"]
        assert set(start["data"]["value"]) >= {"gs.txack.receive", "gs.txack.forward", "gs.txack.drop"}
    # A pattern whose program would be too large is refused as invalid, not built.
    status, body = await http_post(env, {**GTW1, "names": [HUGE_PROGRAM]})
    assert (status, body["details"][0]["name"]) == (400, "invalid_regexp")
    assert refused("invalid_regexp") == before + 1


async def test_re2_syntax_is_gos_not_pythons(env: Env) -> None:
    # Backreferences and lookarounds need backtracking; neither Go's regexp nor RE2 has them.
    for pattern in ("/(gs)\\1/", "/gs(?=\\.up)/"):
        status, body = await http_post(env, {**GTW1, "names": [pattern]})
        assert (status, body["details"][0]["name"]) == (400, "invalid_regexp"), pattern
    # Named groups and Unicode classes are RE2 (and Go) syntax.
    async with aiohttp.ClientSession() as s, s.post(
        env.http + "/api/v3/events",
        headers=env.auth("admin"),
        data=orjson.dumps({**GTW1, "names": ["/^gs\\.(?P<kind>up|down)\\.\\pL+$/"]}),
    ) as r:
        assert r.status == 200
        start = orjson.loads(await r.content.readline())["result"]
        assert sorted(start["data"]["value"]) == ["gs.down.send", "gs.up.drop", "gs.up.forward", "gs.up.receive"]


@pytest.mark.parametrize(
    ("key", "gateway_id"),
    [("user", "gtw1"), ("gtw1_only", "gtw2")],
)
async def test_rights_are_checked_before_any_pattern_is_compiled(
    env: Env, monkeypatch: pytest.MonkeyPatch, key: str, gateway_id: str
) -> None:
    compiled: list[str] = []
    real_compile = definitions.compile_pattern

    def spy(pattern: str):  # type: ignore[no-untyped-def]
        compiled.append(pattern)
        return real_compile(pattern)

    monkeypatch.setattr(definitions, "compile_pattern", spy)
    hostile = [
        ["/(/"],  # invalid: with rights this is invalid_regexp
        [CATASTROPHIC],
        ["x" * (MAX_NAME_LENGTH + 1)],  # too long: with rights this is name_too_long
        ["/a/"] * (MAX_NAMES + 1),  # too many: with rights this is too_many_names
    ]
    body_ids = {"identifiers": [{"gateway_ids": {"gateway_id": gateway_id}}]}
    for names in hostile:
        status, body = await http_post(env, {**body_ids, "names": names}, key=key)
        assert status == 403, (names[0][:10], body)
        assert body["message"] == f"error:pkg/auth/rights:no_gateway_rights (no rights for gateway `{gateway_id}`)"
        err = await grpc_error(env, grpc_request([gateway_id], names), key=key)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_details(err).name == "no_gateway_rights"
    assert compiled == []
    # The spy does see patterns once the caller has rights.
    status, body = await http_post(env, {**GTW1, "names": ["/(/"]}, key="admin")
    assert (status, body["details"][0]["name"]) == (400, "invalid_regexp")
    assert compiled == ["("]


@pytest.mark.parametrize(
    ("names", "reason", "message"),
    [
        (["gs.up.receive"] * (MAX_NAMES + 1), "too_many_names",
         f"too many event names: {MAX_NAMES + 1} given, at most {MAX_NAMES} allowed"),
        (["/^gs\\.up/"] * (MAX_PATTERNS + 1), "too_many_patterns",
         f"too many regular expressions in event names: {MAX_PATTERNS + 1} given, at most {MAX_PATTERNS} allowed"),
        (["gs.up.receive", "/" + "a" * MAX_NAME_LENGTH + "/"], "name_too_long",
         f"event name 1 is {MAX_NAME_LENGTH + 2} characters long, at most {MAX_NAME_LENGTH} allowed"),
    ],
)
async def test_names_over_the_bounds_are_refused(env: Env, names: list[str], reason: str, message: str) -> None:
    before = refused(reason)
    status, body = await http_post(env, {**GTW1, "names": names})
    assert status == 400
    assert body["code"] == 3
    assert body["message"] == f"error:pkg/events:{reason} ({message})"
    (details,) = body["details"]
    assert details["@type"] == "type.googleapis.com/ttn.lorawan.v3.ErrorDetails"
    assert (details["namespace"], details["name"]) == ("pkg/events", reason)
    err = await grpc_error(env, grpc_request(["gtw1"], names))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err).name == reason
    assert refused(reason) == before + 2
    # At the bounds the request is fine.
    at_bound = {
        "too_many_names": ["gs.up.receive"] * MAX_NAMES,
        "too_many_patterns": ["/^gs\\.up/"] * MAX_PATTERNS,
        "name_too_long": ["/" + "|".join(["gs"] * ((MAX_NAME_LENGTH - 1) // 3)) + "/"],
    }[reason]
    assert all(len(n) <= MAX_NAME_LENGTH for n in at_bound)
    async with aiohttp.ClientSession() as s, s.post(
        env.http + "/api/v3/events", headers=env.auth("admin"), data=orjson.dumps({**GTW1, "names": at_bound})
    ) as r:
        assert r.status == 200, await r.read()


# --- gateway ids per request ------------------------------------------------------------------------------------


async def test_too_many_gateway_ids_are_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    before = refused("too_many_identifiers")
    # Over HTTP the count is checked on the decoded JSON, before the costly build of the request message.
    built: list[object] = []
    real_parse_dict = core.jsonpb.parse_dict

    def spy(value, message_type):  # type: ignore[no-untyped-def]
        built.append(message_type)
        return real_parse_dict(value, message_type)

    monkeypatch.setattr(core.jsonpb, "parse_dict", spy)
    status, body = await http_post(env, gateways_body(MAX_IDS + 1))
    assert built == []
    assert status == 400
    assert body["message"] == (
        f"error:pkg/events/grpc:too_many_identifiers (too many identifiers: {MAX_IDS + 1} given, "
        f"at most {MAX_IDS} per stream)"
    )
    assert body["details"][0]["attributes"] == {"count": MAX_IDS + 1, "limit": MAX_IDS}
    err = await grpc_error(env, grpc_request([f"gtw-{i}" for i in range(24_000)]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err).name == "too_many_identifiers"
    assert refused("too_many_identifiers") == before + 2
    assert env.bus.subscriber_count() == 0
    status, _ = await http_post(env, {**GTW1, "names": ["/(/"]})
    assert status == 400 and len(built) == 1  # the spy sees bodies within the bound
    assert env.api.core.stream_slots.total == 0


# --- streams per key and in total -------------------------------------------------------------------------------


async def _open_http(env: Env, session: aiohttp.ClientSession, key: str) -> aiohttp.ClientResponse:
    response = await session.post(env.http + "/api/v3/events", headers=env.auth(key), data=orjson.dumps(GTW1))
    if response.status == 200:
        assert orjson.loads(await response.content.readline())["result"]["name"] == "events.stream.start"
    return response


async def test_streams_per_key_and_in_total_over_http(env: Env) -> None:
    slots = env.api.core.stream_slots
    per_key_before, total_before = refused("streams_per_key"), refused("streams_total")
    async with aiohttp.ClientSession() as session:
        first = [await _open_http(env, session, "admin") for _ in range(PER_KEY)]
        assert [r.status for r in first] == [200] * PER_KEY
        over = await _open_http(env, session, "admin")
        assert over.status == 429
        body = orjson.loads(await over.read())
        assert body["code"] == 8
        assert body["message"] == (
            f"error:pkg/events/grpc:too_many_streams_per_key (this API key already has {PER_KEY} event streams "
            "open, the most allowed per key; close one first)"
        )
        other = await _open_http(env, session, "gateway_all")
        assert other.status == 200
        assert slots.total == TOTAL
        full = await _open_http(env, session, "status")
        assert full.status == 429
        body = orjson.loads(await full.read())
        assert body["details"][0]["name"] == "too_many_streams"
        assert refused("streams_per_key") == per_key_before + 1
        assert refused("streams_total") == total_before + 1

        # A client that goes away gives its slot back, and the key may open another stream.
        first[0].close()
        await eventually(lambda: slots.total == TOTAL - 1)
        assert slots.open_for(env.api.core.authenticate(env.auth("admin")["Authorization"], "http").key_id) == 1
        again = await _open_http(env, session, "admin")
        assert again.status == 200
        for response in (first[1], other, again):
            response.close()
        await eventually(lambda: slots.total == 0)
    assert env.bus.subscriber_count() == 0


async def test_streams_per_key_over_grpc(env: Env) -> None:
    slots = env.api.core.stream_slots
    async with grpc.aio.insecure_channel(env.grpc_target) as channel:
        stub = events_pb2_grpc.EventsStub(channel)
        calls = []
        for _ in range(PER_KEY):
            call = stub.Stream(grpc_request(["gtw1"]), metadata=bearer(env, "traffic"))
            assert (await asyncio.wait_for(call.read(), 30)).name == "events.stream.start"
            calls.append(call)
        over = stub.Stream(grpc_request(["gtw1"]), metadata=bearer(env, "traffic"))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(over.read(), 30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(info.value).name == "too_many_streams_per_key"

        calls[0].cancel()
        await eventually(lambda: slots.total == PER_KEY - 1)
        again = stub.Stream(grpc_request(["gtw1"]), metadata=bearer(env, "traffic"))
        assert (await asyncio.wait_for(again.read(), 30)).name == "events.stream.start"
        calls[1].cancel()
        again.cancel()
        await eventually(lambda: slots.total == 0)


# --- what one stream holds ----------------------------------------------------------------------------------


async def test_one_streams_memory_is_bounded_and_given_back(env: Env) -> None:
    """Structural bounds: index entries = gateways named (at most MAX_IDS), one shared rights set, a queue of at
    most the history (prefill) plus the buffer, and nothing left once the stream ends."""
    history = [GS_UP_RECEIVE.new(now_ns(), (("gtw-7", EUI1),)) for _ in range(300)]
    for event in history:
        env.bus.publish(event)
    body = {**gateways_body(MAX_IDS), "tail": 4_294_967_295}
    async with aiohttp.ClientSession() as session:
        response = await session.post(env.http + "/api/v3/events", headers=env.auth("admin"), data=orjson.dumps(body))
        assert response.status == 200
        await eventually(lambda: env.bus.subscriber_count() == 1)
        by_gateway = env.bus._by_gateway
        (sub,) = {id(s): s for subs in by_gateway.values() for s in subs}.values()
        assert len(by_gateway) == MAX_IDS and sum(len(s) for s in by_gateway.values()) == MAX_IDS
        assert len(sub.gateway_ids) == MAX_IDS
        assert len({id(r) for r in sub._rights.values()}) == 1  # one rights set shared by every gateway
        buffer = sub.buffer
        # Publish far more than the client reads: the queue never holds more than prefill + buffer, then the
        # subscriber is dropped.
        high_water = 0
        for _ in range(20 * buffer):
            env.bus.publish(GS_UP_RECEIVE.new(now_ns(), (("gtw-3", EUI1),)))
            high_water = max(high_water, sub.pending())
        assert high_water <= len(history) + buffer
        assert sub.closed
        response.close()
    await eventually(lambda: env.api.core.stream_slots.total == 0)
    assert env.bus.subscriber_count() == 0
    assert env.bus._by_gateway == {}
