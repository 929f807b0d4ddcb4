"""An instance running `--workers 2` among instances: the owner record names the worker the kernel steers the
gateway to, a downlink requested at another instance reaches that worker through the instance's own routing, and
any of its workers forwards a downlink for another instance's gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayserver.workers.spec import owner_of_eui

from cluster_support import Cluster, in_a_window, pull_resp, redis_get
from downlink.downlink_support import class_a, token_of
from e2e.harness import Forwarder, data_frame, rxpk, wait_for
from redis_support import RedisServer
from workers.workers_support import NetworkServerThread

GATEWAYS = [(f"gw-workers-{i}", bytes.fromhex(f"00800000d000000{i}")) for i in range(1, 5)]


@pytest.fixture
def ns() -> Iterator[NetworkServerThread]:
    thread = NetworkServerThread().start()
    yield thread
    thread.stop()


def test_an_instance_with_workers_among_instances(
    tmp_path: Path, redis_server: RedisServer, ns: NetworkServerThread
) -> None:
    cluster = Cluster(tmp_path, redis_server, ns.port, ["gs-w", "gs-b"], GATEWAYS,
                      extra={"gs-w": ["--workers", "2"]}).start()
    w, b = cluster["gs-w"], cluster["gs-b"]
    gws: list[Forwarder] = []
    try:
        for _, eui in GATEWAYS:  # on both workers of gs-w (EUI steering)
            gw = Forwarder(w.udp_address, eui)
            gw.down.settimeout(15.0)
            gw.pull()
            gws.append(gw)
        for gateway_id, eui in GATEWAYS:
            raw = wait_for(lambda g=gateway_id: redis_get(redis_server, f"gs:gw:{g}:owner"), timeout=30)
            record = json.loads(raw)
            assert (record["instance"], record["worker"]) == ("gs-w", owner_of_eui(eui, 2))
        assert {owner_of_eui(eui, 2) for _, eui in GATEWAYS} == {0, 1}
        for fcnt, ((gateway_id, _), gw) in enumerate(zip(GATEWAYS, gws, strict=True)):
            gw.push({"rxpk": [rxpk(data_frame(fcnt=fcnt), tmst=1_000_000 * (fcnt + 1))]})
            up = ns.ns.uplinks.get(timeout=15)[0]
            assert up.rx_metadata[0].gateway_ids.gateway_id == gateway_id
            assert b.schedule(class_a(token_of(up)))
            assert in_a_window(pull_resp(gw)[1], up.rx_metadata[0].timestamp)

        # A gateway on gs-b, its downlink requested at gs-w (whichever worker takes the call forwards it).
        other = Forwarder(b.udp_address, bytes.fromhex("00800000d00000ff"))
        other.down.settimeout(15.0)
        gws.append(other)
        other.pull()
        wait_for(lambda: redis_get(redis_server, "gs:gw:eui-00800000d00000ff:owner"), timeout=30)
        for attempt in range(4):  # each call on a new connection: the kernel hands it to either worker
            other.push({"rxpk": [rxpk(data_frame(fcnt=10 + attempt), tmst=20_000_000 * (attempt + 1))]})
            up = ns.ns.uplinks.get(timeout=15)[0]
            assert w.schedule(class_a(token_of(up)))
            assert in_a_window(pull_resp(other)[1], up.rx_metadata[0].timestamp)
    finally:
        for gw in gws:
            gw.close()
        codes = cluster.stop()
    assert codes == {"gs-w": 0, "gs-b": 0}
