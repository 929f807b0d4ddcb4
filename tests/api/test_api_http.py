"""The HTTP API over a real socket with aiohttp's client (and curl for the documented command)."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import orjson
import pytest
from conftest import EUI1, Env, now_ns, sample_stats

from gatewayserver.events.definitions import GS_GATEWAY_CONNECT, GS_STATUS_RECEIVE, GS_UP_RECEIVE
from gatewayserver.ttnpb import messages_pb2

G1 = (("gtw1", EUI1),)


async def get(env: Env, path: str, key: str | None = "admin") -> tuple[int, object]:
    headers = env.auth(key) if key else {}
    async with aiohttp.ClientSession() as s, s.get(env.http + path, headers=headers) as r:
        return r.status, orjson.loads(await r.read())


async def post(env: Env, path: str, body: object, key: str | None = "admin") -> tuple[int, object]:
    headers = env.auth(key) if key else {}
    async with aiohttp.ClientSession() as s, s.post(env.http + path, headers=headers, data=orjson.dumps(body)) as r:
        return r.status, orjson.loads(await r.read())


# --- Gs ------------------------------------------------------------------------------------------------------


async def test_connection_stats_json(env: Env) -> None:
    status, body = await get(env, "/api/v3/gs/gateways/gtw1/connection/stats", "status")
    assert status == 200
    assert body == {
        "connected_at": "2023-11-14T22:13:20.120Z",
        "protocol": "udp",
        "last_uplink_received_at": "2023-11-14T22:15:00.000000001Z",
        "uplink_count": "42",
        "downlink_count": "3",
        "round_trip_times": {"min": "0.040s", "max": "0.090s", "median": "0.055500s", "count": 7},
        "sub_bands": [
            {"min_frequency": "863000000", "max_frequency": "865000000", "downlink_utilization_limit": 0.001}
        ],
        "gateway_remote_address": {"ip": "192.0.2.1"},
    }


async def test_stats_errors_have_the_reference_shape(env: Env) -> None:
    status, body = await get(env, "/api/v3/gs/gateways/gtw-unknown/connection/stats")
    assert status == 404
    assert body["code"] == 5
    assert body["message"] == "error:pkg/gatewayserver:not_connected (gateway `gtw-unknown` not connected)"
    (details,) = body["details"]
    assert details["@type"] == "type.googleapis.com/ttn.lorawan.v3.ErrorDetails"
    assert details["namespace"] == "pkg/gatewayserver"
    assert details["name"] == "not_connected"
    assert details["message_format"] == "gateway `{gateway_uid}` not connected"
    assert details["attributes"] == {"gateway_uid": "gtw-unknown"}
    assert details["code"] == 5
    assert len(details["correlation_id"]) == 32
    assert list(details) == ["@type", "namespace", "name", "message_format", "attributes", "correlation_id", "code"]


@pytest.mark.parametrize(
    ("key", "status", "name"),
    [
        (None, 401, "pkg/auth:unauthenticated"),
        ("bogus", 401, "pkg/auth:invalid_authorization"),
        ("wrong-secret", 401, "pkg/auth:api_key_not_found"),
        ("traffic", 403, "pkg/auth/rights:insufficient_gateway_rights"),
        ("user", 403, "pkg/auth/rights:no_gateway_rights"),
        ("gtw1_only-other", 403, "pkg/auth/rights:no_gateway_rights"),
    ],
)
async def test_stats_auth_failures(env: Env, key: str | None, status: int, name: str) -> None:
    path = "/api/v3/gs/gateways/gtw1/connection/stats"
    headers: dict[str, str] = {}
    if key == "bogus":
        headers = {"Authorization": "Bearer NNSXS.nope"}
    elif key == "wrong-secret":
        good = env.keys["admin"]
        headers = {"Authorization": "Bearer " + good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")}
    elif key == "gtw1_only-other":
        headers = env.auth("gtw1_only")
        path = "/api/v3/gs/gateways/gtw2/connection/stats"
    elif key is not None:
        headers = env.auth(key)
    async with aiohttp.ClientSession() as s, s.get(env.http + path, headers=headers) as r:
        body = orjson.loads(await r.read())
        assert r.status == status
    assert body["message"].startswith(f"error:{name} ")
    assert body["code"] == {401: 16, 403: 7}[status]


async def test_bad_gateway_id_and_unknown_path(env: Env) -> None:
    status, body = await get(env, "/api/v3/gs/gateways/GTW_1/connection/stats")
    assert status == 400 and body["code"] == 3
    status, body = await get(env, "/api/v3/gs/nothing-here")
    assert status == 404 and body == {"code": 5, "message": "Not Found", "details": []}


async def test_batch_connection_stats_with_field_mask(env: Env) -> None:
    status, body = await post(
        env,
        "/api/v3/gs/gateways/connection/stats",
        {
            "gateway_ids": [{"gateway_id": "gtw1"}, {"gateway_id": "gtw2"}],
            "field_mask": {"paths": ["protocol", "uplink_count"]},
        },
    )
    assert status == 200
    assert body == {"entries": {"gtw1": {"protocol": "udp", "uplink_count": "42"}}}
    status, body = await post(env, "/api/v3/gs/gateways/connection/stats", {"gatewayIds": [{"gatewayId": "gtw1"}]})
    assert status == 200 and body["entries"]["gtw1"]["uplink_count"] == "42"
    for ids in ([], [{"gateway_id": f"gw-{i:03d}"} for i in range(101)]):
        status, body = await post(env, "/api/v3/gs/gateways/connection/stats", {"gateway_ids": ids})
        assert status == 400 and body["code"] == 3
    status, body = await post(
        env, "/api/v3/gs/gateways/connection/stats", {"gateway_ids": [{"gateway_id": "gtw1"}]}, key="traffic"
    )
    assert status == 403
    status, body = await post(
        env, "/api/v3/gs/gateways/connection/stats", {"gateway_ids": [{"gateway_id": "gtw1"}], "field_mask": "nope"}
    )
    assert status == 400


async def test_list_connections_shows_only_gateways_the_key_may_read(env: Env) -> None:
    env.gs.stats["gtw2"] = sample_stats()
    status, body = await get(env, "/api/v3/gs/gateways/connections", "admin")
    assert status == 200
    assert [g["gateway_id"] for g in body["gateways"]] == ["gtw1", "gtw2"]
    status, body = await get(env, "/api/v3/gs/gateways/connections", "gtw1_only")
    assert status == 200 and [g["gateway_id"] for g in body["gateways"]] == ["gtw1"]
    status, body = await get(env, "/api/v3/gs/gateways/connections", "traffic")
    assert status == 200 and body == {"gateways": []}
    status, body = await get(env, "/api/v3/gs/gateways/connections", None)
    assert status == 401 and body["code"] == 16


# --- Events ----------------------------------------------------------------------------------------------------


class Stream:
    """An open events stream read with the JS SDK's framing rule (split on the separator)."""

    def __init__(self, response: aiohttp.ClientResponse, separator: bytes) -> None:
        self.response = response
        self.separator = separator
        self.buffer = b""

    async def next(self, timeout: float = 5.0) -> dict:
        while self.separator not in self.buffer:
            chunk = await asyncio.wait_for(self.response.content.readany(), timeout)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        message, self.buffer = self.buffer.split(self.separator, 1)
        return orjson.loads(message)


async def open_stream(env: Env, session: aiohttp.ClientSession, body: dict, key: str = "admin", sse: bool = True):
    headers = env.auth(key)
    if sse:
        headers["Accept"] = "text/event-stream"
    response = await session.post(env.http + "/api/v3/events", headers=headers, data=orjson.dumps(body))
    return response, Stream(response, b"\n\n" if sse else b"\n")


GTW1_REQUEST = {"identifiers": [{"gateway_ids": {"gateway_id": "gtw1"}}]}


async def test_stream_starts_with_events_stream_start_then_live_events(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        response, stream = await open_stream(env, session, GTW1_REQUEST)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        start = (await stream.next())["result"]
        assert start["name"] == "events.stream.start"
        assert start["identifiers"] == [{"gateway_ids": {"gateway_id": "gtw1"}}]
        assert start["correlation_ids"][0].startswith("rpc:/ttn.lorawan.v3.Events/Stream:")

        up = messages_pb2.GatewayUplinkMessage(band_id="EU_863_870")
        up.message.raw_payload = b"\x40\x01"
        up.message.settings.frequency = 868100000
        t = 1_700_000_000_987_556_027
        event = GS_UP_RECEIVE.new(t, G1, up, ["gs:conn:01G76RS17HGZZXV740X0N2XDV8"])
        env.bus.publish(event)
        env.bus.publish(GS_UP_RECEIVE.new(t, (("gtw2", None),)))  # other gateway: not delivered
        got = (await stream.next())["result"]
        assert got == {
            "name": "gs.up.receive",
            "time": "2023-11-14T22:13:20.987556027Z",
            "identifiers": [{"gateway_ids": {"gateway_id": "gtw1", "eui": "B827EBFFFE8DB887"}}],
            "data": {
                "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayUplinkMessage",
                "message": {"raw_payload": "QAE=", "settings": {"frequency": "868100000"}},
                "band_id": "EU_863_870",
            },
            "correlation_ids": ["gs:conn:01G76RS17HGZZXV740X0N2XDV8"],
            "origin": event.origin,
            "visibility": {"rights": ["RIGHT_GATEWAY_TRAFFIC_READ"]},
            "unique_id": event.unique_id,
        }
        response.close()


async def test_stream_without_sse_is_newline_delimited(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        response, stream = await open_stream(env, session, GTW1_REQUEST, sse=False)
        assert response.headers["Content-Type"].startswith("application/json")
        assert (await stream.next())["result"]["name"] == "events.stream.start"
        env.bus.publish(GS_STATUS_RECEIVE.new(now_ns(), G1))
        assert (await stream.next())["result"]["name"] == "gs.status.receive"
        assert b"\n\n" not in stream.buffer
        response.close()


async def test_stream_names_regex_tail_after_and_visibility(env: Env) -> None:
    t0 = now_ns() - 10_000_000_000
    history = [GS_UP_RECEIVE.new(t0 + i * 1_000_000_000, G1) for i in range(5)]
    for e in history:
        env.bus.publish(e)
    env.bus.publish(GS_STATUS_RECEIVE.new(t0 + 6_000_000_000, G1))
    async with aiohttp.ClientSession() as session:
        # tail: the last 2 matching events, then live ones.
        response, stream = await open_stream(env, session, {**GTW1_REQUEST, "tail": 2, "names": ["gs.up.receive"]})
        start = (await stream.next())["result"]
        assert start["data"] == {"@type": "type.googleapis.com/google.protobuf.Value", "value": ["gs.up.receive"]}
        assert [(await stream.next())["result"]["unique_id"] for _ in range(2)] == [e.unique_id for e in history[3:]]
        response.close()

        # after: strictly later events; regex selects both kinds.
        after = "2000-01-01T00:00:00Z"
        body = {**GTW1_REQUEST, "after": after, "names": ["/^gs\\.(up|status)\\.receive$/"]}
        response, stream = await open_stream(env, session, body)
        await stream.next()
        names = [(await stream.next())["result"]["name"] for _ in range(6)]
        assert names == ["gs.up.receive"] * 5 + ["gs.status.receive"]
        response.close()

        # visibility: a traffic-only key does not see status or connect events.
        response, stream = await open_stream(env, session, {**GTW1_REQUEST, "tail": 10}, key="traffic")
        await stream.next()
        names = [(await stream.next())["result"]["name"] for _ in range(5)]
        env.bus.publish(GS_GATEWAY_CONNECT.new(now_ns(), G1))
        env.bus.publish(GS_UP_RECEIVE.new(now_ns(), G1))
        assert names == ["gs.up.receive"] * 5
        assert (await stream.next())["result"]["name"] == "gs.up.receive"
        response.close()


@pytest.mark.parametrize(
    ("body", "key", "status", "name"),
    [
        ({**GTW1_REQUEST, "names": ["gs.up.nope"]}, "admin", 400, "pkg/events:unknown_event_name"),
        ({**GTW1_REQUEST, "names": ["/gs.up.(/"]}, "admin", 400, "pkg/events:invalid_regexp"),
        ({**GTW1_REQUEST, "names": ["/^js\\./"]}, "admin", 400, "pkg/events:no_matching_events"),
        ({"identifiers": []}, "admin", 400, "pkg/events/grpc:no_identifiers"),
        (
            {"identifiers": [{"gateway_ids": {"gateway_id": "gtw2"}}]},
            "gtw1_only",
            403,
            "pkg/auth/rights:no_gateway_rights",
        ),
        (GTW1_REQUEST, "user", 403, "pkg/auth/rights:no_gateway_rights"),
    ],
)
async def test_stream_request_errors(env: Env, body: dict, key: str, status: int, name: str) -> None:
    got_status, got = await post(env, "/api/v3/events", body, key=key)
    assert got_status == status
    assert got["message"].startswith(f"error:{name} ")


async def test_stream_unauthenticated(env: Env) -> None:
    status, body = await post(env, "/api/v3/events", GTW1_REQUEST, key=None)
    assert status == 401 and body["code"] == 16


async def test_slow_subscriber_gets_a_notice_and_the_publisher_is_not_slowed(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        response, stream = await open_stream(env, session, GTW1_REQUEST)
        await stream.next()
        # The client does not read; the server-side buffer (64) overflows within one publish burst. `publish` is
        # synchronous and returns for every event: the publisher never waits for the slow reader.
        subscribers_before = env.bus.subscriber_count()
        for _ in range(1000):
            env.bus.publish(GS_UP_RECEIVE.new(now_ns(), G1))
        assert env.bus.subscriber_count() == subscribers_before - 1  # dropped at once, not kept behind
        messages = []
        while True:
            try:
                messages.append(await stream.next())
            except EOFError:
                break
        assert "error" in messages[-1]
        assert messages[-1]["error"]["message"].startswith("error:pkg/events:buffer_full ")
        assert messages[-1]["error"]["code"] == 8
        assert all("result" in m for m in messages[:-1])
        assert len(messages) - 1 <= 64 + 1
        # The daemon keeps serving others.
        response2, stream2 = await open_stream(env, session, GTW1_REQUEST)
        assert (await stream2.next())["result"]["name"] == "events.stream.start"
        response2.close()


async def test_documented_curl_command(env: Env) -> None:
    key = env.keys["admin"]

    async def publish_later() -> None:
        await asyncio.sleep(0.5)
        env.bus.publish(GS_UP_RECEIVE.new(now_ns(), G1))

    publisher = asyncio.create_task(publish_later())
    proc = await asyncio.create_subprocess_exec(
        "curl", f"http://127.0.0.1:{env.api.http.port}/api/v3/events",  # type: ignore[union-attr]
        "-X", "POST",
        "-H", f"Authorization: Bearer {key}",
        "-H", "Accept: text/event-stream",
        "--data", '{"identifiers":[{"gateway_ids":{"gateway_id":"gtw1"}}]}',
        "--max-time", "2", "-s",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    await publisher
    assert proc.returncode == 28  # stopped by --max-time: the stream stays open
    messages = [orjson.loads(m) for m in out.split(b"\n\n") if m]
    assert [m["result"]["name"] for m in messages] == ["events.stream.start", "gs.up.receive"]
    assert messages[1]["result"]["identifiers"][0]["gateway_ids"]["eui"] == "B827EBFFFE8DB887"


# --- Gateway configuration -----------------------------------------------------------------------------------


async def test_global_conf_json_eu(env: Env) -> None:
    status, conf = await get(env, "/api/v3/gcs/gateways/gtw1/semtechudp/global_conf.json", "info")
    assert status == 200
    sx = conf["SX1301_conf"]
    multi = [(sx[f"chan_multiSF_{i}"]["radio"], sx[f"chan_multiSF_{i}"]["if"]) for i in range(8)]
    centres = [sx["radio_0"]["freq"], sx["radio_1"]["freq"]]
    assert sorted(centres[r] + f for r, f in multi) == [
        867100000, 867300000, 867500000, 867700000, 867900000, 868100000, 868300000, 868500000,
    ]
    assert sx["chan_Lora_std"] == {"enable": True, "radio": 1, "if": -200000, "bandwidth": 250000, "spread_factor": 7}
    assert sx["chan_FSK"] == {"enable": True, "radio": 1, "if": 300000, "bandwidth": 125000, "datarate": 50000}
    assert sx["radio_0"] == {
        "enable": True, "type": "SX1257", "freq": 867500000, "rssi_offset": -166, "tx_enable": True,
        "tx_freq_min": 863000000, "tx_freq_max": 870000000,
    }
    assert "lbt_cfg" not in sx
    assert len([k for k in sx if k.startswith("tx_lut_")]) == 16
    assert conf["gateway_conf"]["gateway_ID"] == "B827EBFFFE8DB887"
    assert conf["gateway_conf"]["server_address"] == "gs.example.com"
    assert conf["gateway_conf"]["serv_port_up"] == conf["gateway_conf"]["serv_port_down"] == 1700


async def test_global_conf_json_us_fsb2_and_reference_binding(env: Env) -> None:
    status, body = await get(env, "/api/v3/gcs/gateways/configuration/gtw-us/semtechudp/global_conf.json", "info")
    assert status == 200 and list(body) == ["contents"]
    conf = orjson.loads(base64.b64decode(body["contents"]))
    sx = conf["SX1301_conf"]
    centres = [sx["radio_0"]["freq"], sx["radio_1"]["freq"]]
    freqs = [centres[sx[f"chan_multiSF_{i}"]["radio"]] + sx[f"chan_multiSF_{i}"]["if"] for i in range(8)]
    assert freqs == [903900000 + 200000 * i for i in range(8)]
    assert sx["chan_Lora_std"]["if"] + centres[sx["chan_Lora_std"]["radio"]] == 904600000
    assert sx["chan_FSK"] == {"enable": False}
    assert not any(k.startswith("chan_multiSF_8") for k in sx)


async def test_gcs_errors(env: Env) -> None:
    status, body = await get(env, "/api/v3/gcs/gateways/gtw1/semtechudp/global_conf.json", "traffic")
    assert status == 403
    status, body = await get(env, "/api/v3/gcs/gateways/gtw-none/semtechudp/global_conf.json", "info")
    assert status == 404 and body["message"].startswith("error:pkg/gatewayserver:gateway_not_registered ")
    status, body = await get(env, "/api/v3/gcs/gateways/configuration/gtw1/kerlink-cpf/lorad.json", "info")
    assert status == 404
    status, body = await get(env, "/api/v3/gcs/gateways/gtw1/semtechudp/global_conf.json", None)
    assert status == 401


# --- operations ------------------------------------------------------------------------------------------------


async def test_metrics_health_ready(env: Env) -> None:
    await get(env, "/api/v3/gs/gateways/gtw1/connection/stats", None)  # one auth failure
    async with aiohttp.ClientSession() as s:
        async with s.get(env.http + "/metrics") as r:
            text = await r.text()
            assert r.status == 200
        assert 'gs_api_auth_failures_total{api="http"}' in text
        assert "gs_event_stream_subscribers" in text
        assert "gs_events_published_total" in text
        async with s.get(env.http + "/healthz") as r:
            assert r.status == 200
        async with s.get(env.http + "/readyz") as r:
            assert r.status == 200


async def test_keys_file_is_reloaded_on_change(env: Env) -> None:
    from gatewayserver.api.keys import create_key, revoke_key

    new_key, record = create_key(env.keys_file, "late", ["RIGHT_GATEWAY_STATUS_READ"])
    url = env.http + "/api/v3/gs/gateways/gtw1/connection/stats"
    auth = {"Authorization": f"Bearer {new_key}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers=auth) as r:
            assert r.status == 200
        revoke_key(env.keys_file, record.id)
        async with s.get(url, headers=auth) as r:
            assert r.status == 401


async def test_find_related_events_by_correlation_id_with_visibility(env: Env) -> None:
    from gatewayserver.events.definitions import GS_STATUS_RECEIVE, GS_UP_FORWARD

    cid = "gs:uplink:01HZZZZZZZZZZZZZZZZZZZZZZZ"
    env.bus.publish(GS_UP_RECEIVE.new(now_ns(), G1, messages_pb2.GatewayUplinkMessage(), ("gs:conn:1", cid)))
    env.bus.publish(GS_UP_FORWARD.new(now_ns(), G1, None, (cid,)))
    env.bus.publish(GS_STATUS_RECEIVE.new(now_ns(), G1, None, ("gs:conn:1",)))

    status, body = await get(env, f"/api/v3/events/related?correlation_id={cid}", key="traffic")
    assert status == 200
    assert [e["name"] for e in body["events"]] == ["gs.up.receive", "gs.up.forward"]
    assert all(cid in e["correlation_ids"] for e in body["events"])
    # Status-read does not show traffic events.
    status, body = await get(env, f"/api/v3/events/related?correlation_id={cid}", key="status")
    assert status == 200 and body == {}
    status, body = await get(env, "/api/v3/events/related?correlation_id=gs:conn:1", key="status")
    assert [e["name"] for e in body["events"]] == ["gs.status.receive"]
    status, body = await get(env, "/api/v3/events/related", key="traffic")
    assert status == 400 and body["details"][0]["name"] == "validation"
    status, _ = await get(env, f"/api/v3/events/related?correlation_id={cid}", key=None)
    assert status == 401
