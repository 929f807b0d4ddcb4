"""Ownership records in a real Redis, written by an in-process daemon: renewed while the gateway is connected,
deleted only by the connection holding them, and a record taken by another instance (a missed move notice) makes
this instance let go of the gateway. Also: a gateway unknown to one instance's registry gets its configuration
from the instance it is connected to."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gatewayserver.api.keys import create_key
from gatewayserver.cluster.records import Owner
from gatewayserver.ttnpb import gateway_pb2

from e2e.harness import Forwarder, Harness, metric, wait_for
from redis_support import RedisServer

EUI = bytes.fromhex("00800000c0000001")
GATEWAY_ID = "gw-owned"


def get(redis: RedisServer, key: str) -> bytes | None:
    """GET over a plain socket (after the AUTH's +OK): the bulk string, or None."""
    reply = redis.command("GET", key).removeprefix(b"+OK\r\n")
    if not reply.startswith(b"$") or reply.startswith(b"$-1"):
        return None
    header, _, rest = reply.partition(b"\r\n")
    return rest[: int(header[1:])]


def pttl(redis: RedisServer, key: str) -> int:
    return int(redis.command("PTTL", key).removeprefix(b"+OK\r\n").strip().lstrip(b":"))


def instance(
    tmp_path: Path, redis: RedisServer, name: str, gateways: list[dict[str, str]], **options: object
) -> Harness:
    registry = tmp_path / f"{name}-gateways.yml"
    registry.write_text(yaml.safe_dump({"gateways": gateways}))
    return Harness(
        redis_url=redis.url, cluster_key="ab" * 16, uplink_token_key="cd" * 16, instance_id=name,
        gateways=str(registry), keys_file=str(tmp_path / "keys.json"), **options,
    ).start()


@pytest.fixture
def harness(tmp_path: Path, redis_server: RedisServer) -> Iterator[Harness]:
    h = instance(tmp_path, redis_server, "gs-a", [{"gateway_id": GATEWAY_ID, "eui": EUI.hex(),
                                                  "frequency_plan_id": "EU_863_870"}], connection_expires=3.0)
    try:
        yield h
    finally:
        h.stop()


def test_the_record_lives_while_connected_and_is_released_with_the_final_stats(
    harness: Harness, redis_server: RedisServer
) -> None:
    gw = Forwarder(harness.udp_address, EUI)
    try:
        gw.pull()
        record = wait_for(lambda: get(redis_server, f"gs:gw:{GATEWAY_ID}:owner"), timeout=10)
        owner = Owner.decode(record)
        assert owner is not None and (owner.instance, owner.worker) == ("gs-a", 0)
        assert 0 < pttl(redis_server, f"gs:gw:{GATEWAY_ID}:owner") <= 3000  # the connection expiry
        assert get(redis_server, "gs:instance:gs-a") == f"127.0.0.1:{harness.daemon.api.grpc.port}".encode()
        for _ in range(8):  # 4 s of keepalives: longer than the expiry, so only renewals keep the record
            gw.pull()
            time.sleep(0.5)
        assert get(redis_server, f"gs:gw:{GATEWAY_ID}:owner") == record
        # Silence: the connection expires and its holder deletes the record, leaving the final stats.
        wait_for(lambda: get(redis_server, f"gs:gw:{GATEWAY_ID}:owner") is None, timeout=15)
        stats = gateway_pb2.GatewayConnectionStats.FromString(get(redis_server, f"gs:gw:{GATEWAY_ID}:stats") or b"")
        assert stats.HasField("disconnected_at") and stats.HasField("connected_at")
    finally:
        gw.close()


def test_a_record_taken_by_another_instance_is_let_go_and_never_deleted_by_the_old_holder(
    harness: Harness, redis_server: RedisServer
) -> None:
    gw = Forwarder(harness.udp_address, EUI)
    try:
        gw.pull()
        wait_for(lambda: get(redis_server, f"gs:gw:{GATEWAY_ID}:owner"), timeout=10)
        moves = metric("gs_cluster_gateway_moves_total", direction="out")
        # Another instance's claim whose notice was missed: only the renewal (every second here) can tell.
        theirs = Owner("gs-z", 0, 1).encode()
        redis_server.command("SET", f"gs:gw:{GATEWAY_ID}:owner", theirs.decode(), "PX", "60000")
        wait_for(lambda: metric("gs_cluster_gateway_moves_total", direction="out") == moves + 1, timeout=15)
        assert harness.run_in_loop(lambda: harness.daemon.server.core.get(GATEWAY_ID)) is None
        assert get(redis_server, f"gs:gw:{GATEWAY_ID}:owner") == theirs
        assert metric("gs_gateway_disconnects_total", reason="moved") >= 1
    finally:
        gw.close()


def test_a_reload_renaming_a_connected_gateway_moves_its_record_to_the_new_id(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The record follows the id: the old one is given back, the new one claimed at once (not at the next
    connect), over another instance's record of that id, as a connect's claim is (which tells that one to let
    go)."""
    h = instance(tmp_path, redis_server, "gs-a", [{"gateway_id": GATEWAY_ID, "eui": EUI.hex(),
                                                  "frequency_plan_id": "EU_863_870"}])
    gw = Forwarder(h.udp_address, EUI)
    try:
        gw.pull()
        record = wait_for(lambda: get(redis_server, f"gs:gw:{GATEWAY_ID}:owner"), timeout=10)
        redis_server.command("SET", "gs:gw:gw-new-name:owner", Owner("gs-z", 0, 1).encode().decode(), "PX", "60000")
        (tmp_path / "gs-a-gateways.yml").write_text(yaml.safe_dump({"gateways": [
            {"gateway_id": "gw-new-name", "eui": EUI.hex(), "frequency_plan_id": "EU_863_870"}]}))
        h.run_in_loop(h.daemon.reload)
        wait_for(lambda: get(redis_server, f"gs:gw:{GATEWAY_ID}:owner") is None, timeout=10)
        assert wait_for(lambda: get(redis_server, "gs:gw:gw-new-name:owner") == record, timeout=10)
        assert h.run_in_loop(lambda: h.daemon.server.core.get("gw-new-name")) is not None
    finally:
        gw.close()
        h.stop()


def test_configuration_of_a_gateway_only_its_owner_knows(tmp_path: Path, redis_server: RedisServer) -> None:
    """C's registry does not know the gateway; A's does (an AU plan). C asks A for the plans."""
    admin, _ = create_key(str(tmp_path / "keys.json"), "admin", ["RIGHT_ALL"])
    a = instance(tmp_path, redis_server, "gs-a", [{"gateway_id": GATEWAY_ID, "eui": EUI.hex(),
                                                  "frequency_plan_id": "AU_915_928_FSB_2"}])
    c = instance(tmp_path, redis_server, "gs-c", [{"gateway_id": "gw-other", "eui": "00800000c00000ff",
                                                  "frequency_plan_id": "EU_863_870"}])
    gw = Forwarder(a.udp_address, EUI)
    try:
        gw.pull()
        wait_for(lambda: get(redis_server, f"gs:gw:{GATEWAY_ID}:owner"), timeout=10)
        http = c.daemon.config.http_listen
        request = urllib.request.Request(
            f"http://{http}/api/v3/gcs/gateways/{GATEWAY_ID}/semtechudp/global_conf.json",
            headers={"Authorization": f"Bearer {admin}"},
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            conf = json.loads(response.read())
        radio = conf["SX1301_conf"]["radio_0"]
        assert 915_000_000 <= radio["freq"] <= 928_000_000  # A's AU plan, not an EU one
    finally:
        gw.close()
        c.stop()
        a.stop()


def test_two_instances_with_one_instance_id_are_reported(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.command("SET", "gs:instance:gs-a", "192.0.2.7:1884", "PX", "60000")
    h = instance(tmp_path, redis_server, "gs-a", [{"gateway_id": GATEWAY_ID, "eui": EUI.hex(),
                                                  "frequency_plan_id": "EU_863_870"}])
    try:
        wait_for(lambda: any("same instance ID" in r.getMessage() for r in caplog.records), timeout=10)
        record = next(r for r in caplog.records if "same instance ID" in r.getMessage())
        assert record.__dict__["other_address"] == "192.0.2.7:1884"
        assert get(redis_server, "gs:instance:gs-a") == f"127.0.0.1:{h.daemon.api.grpc.port}".encode()
    finally:
        h.stop()


def test_a_short_outage_between_two_flushes_still_rewrites_the_registration(
    harness: Harness, redis_server: RedisServer
) -> None:
    """Redis restarted empty while the flusher happened not to run (down for less than its one-second tick): the
    next flush must still rewrite the instance's registration with the records, not wait for the heartbeat (10 s),
    or forwards to this instance fail as 'registration expired' meanwhile (seen in the three-instance test)."""
    gw = Forwarder(harness.udp_address, EUI)
    try:
        gw.pull()
        wait_for(lambda: get(redis_server, f"gs:gw:{GATEWAY_ID}:owner"), timeout=10)
        wait_for(lambda: get(redis_server, "gs:instance:gs-a"), timeout=10)
        redis_server.command("FLUSHALL")  # what a restart without persistence leaves

        def blip() -> None:  # an outage the flusher never saw: down and up again within one loop turn
            link = harness.daemon.redis  # type: ignore[union-attr]
            link.failed("ping", ConnectionError("simulated restart"))
            link.succeeded()

        harness.run_in_loop(blip)
        # Within a few flusher ticks; the heartbeat alone would take 10 s.
        assert wait_for(lambda: get(redis_server, "gs:instance:gs-a"), timeout=6) is not None
        assert get(redis_server, f"gs:gw:{GATEWAY_ID}:owner") is not None
    finally:
        gw.close()
