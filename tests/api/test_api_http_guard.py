"""Requests refused before any handler runs: oversized bodies (413 on every route), oversized or malformed
headers (431/400), each counted by reason and logged without the request's content or a traceback."""

from __future__ import annotations

import logging

import aiohttp
import orjson
import pytest
from prometheus_client import REGISTRY

from gatewayserver.api.http_server import MAX_BODY_SIZE
from gatewayserver.logs import TextFormatter

from conftest import Env

ROUTES = [
    ("GET", "/api/v3/gs/gateways/gtw1/connection/stats"),
    ("POST", "/api/v3/gs/gateways/connection/stats"),
    ("GET", "/api/v3/gs/gateways/connections"),
    ("POST", "/api/v3/events"),
    ("GET", "/api/v3/events/related?correlation_id=x"),
    ("GET", "/api/v3/gcs/gateways/gtw1/semtechudp/global_conf.json"),
    ("GET", "/api/v3/gcs/gateways/configuration/gtw1/semtechudp/global_conf.json"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/no/such/path"),
]


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("gs_api_http_rejected_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_declared_oversized_body_gets_413_on_every_route(env: Env, method: str, path: str, caplog) -> None:
    before = rejected("body_too_large")
    body = b"{" + b" " * MAX_BODY_SIZE + b"}"
    with caplog.at_level(logging.DEBUG):
        async with aiohttp.ClientSession() as s, s.request(method, env.http + path, data=body,
                                                           headers=env.auth("admin")) as r:
            assert r.status == 413
            document = orjson.loads(await r.read())
    assert document == {"code": 8, "message": f"request body larger than {MAX_BODY_SIZE} bytes", "details": []}
    assert rejected("body_too_large") == before + 1
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client's mistake"


@pytest.mark.parametrize("path", ["/api/v3/gs/gateways/connection/stats", "/api/v3/events"])
async def test_chunked_body_growing_past_the_bound_gets_413(env: Env, path: str) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(MAX_BODY_SIZE // 65536 + 2):
            yield b" " * 65536

    before = rejected("body_too_large")
    async with aiohttp.ClientSession() as s, s.post(env.http + path, data=chunks(), headers=env.auth("admin")) as r:
        assert r.status == 413
        assert orjson.loads(await r.read())["code"] == 8
    assert rejected("body_too_large") == before + 1


async def test_bodies_within_the_bound_still_work(env: Env) -> None:
    body = orjson.dumps({"gateway_ids": [{"gateway_id": "gtw1"}]}) + b" " * 1000
    async with aiohttp.ClientSession() as s, s.post(env.http + "/api/v3/gs/gateways/connection/stats", data=body,
                                                    headers=env.auth("admin")) as r:
        assert r.status == 200


async def test_oversized_authorization_with_a_valid_key_gets_431_and_is_not_logged(env: Env, caplog) -> None:
    key = env.keys["admin"]
    secret = key.rsplit(".", 1)[1]
    before = rejected("header_too_large")
    with caplog.at_level(logging.DEBUG):
        async with aiohttp.ClientSession() as s, s.get(
            env.http + "/api/v3/gs/gateways/connections", headers={"Authorization": f"Bearer {key} " + "A" * 9000}
        ) as r:
            assert r.status == 431
            body = await r.read()
    assert secret[:8].encode() not in body
    assert orjson.loads(body)["message"] == "request line or header field larger than 8190 bytes"
    assert rejected("header_too_large") == before + 1
    text = "\n".join(TextFormatter().format(record) for record in caplog.records)
    assert "refused HTTP request" in text and "reason=header_too_large" in text
    assert not any(secret[i : i + 8] in text for i in range(len(secret) - 7))
    assert not [r for r in caplog.records if r.exc_info]
