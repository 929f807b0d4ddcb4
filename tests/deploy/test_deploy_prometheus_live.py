"""A real Prometheus server scrapes a real daemon, and the series come back through Prometheus' HTTP API.

This is the path an operator's monitoring takes: forwarder datagram -> daemon -> /metrics -> Prometheus -> query.
Loopback only, ephemeral ports, storage in a temporary directory, bounded waits; both processes are stopped.
Prometheus also loads our alert rules here, so a rule that only breaks at evaluation time shows up as unhealthy.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deploy_support import (
    DEPLOY,
    Daemon,
    exchange,
    free_port,
    http_get,
    pull_data,
    push_stat,
    require_tool,
    start_daemon,
    wait_until,
)

EUI = bytes.fromhex("B827EBFFFE000001")


@pytest.fixture(scope="module")
def daemon_with_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path_factory.mktemp("daemon"))
    try:
        # A gateway connects with its first accepted datagram: a keepalive and a status message. Retried, since
        # /metrics answering does not promise the UDP listener is bound yet.
        ack = wait_until(lambda: exchange(daemon.udp_port, pull_data(EUI), timeout=0.5), 10,
                         what="a PULL_ACK")
        assert ack[3] == 0x04, ack  # PULL_ACK
        assert exchange(daemon.udp_port, push_stat(EUI))[3] == 0x01  # PUSH_ACK
        wait_until(lambda: 'gs_gateways_connected{protocol="udp"} 1.0' in daemon.metrics_text(), 10,
                   what="the daemon to count the gateway as connected")
        yield daemon
    finally:
        assert daemon.stop() == 0, daemon.log_text()


@pytest.fixture(scope="module")
def prometheus(daemon_with_gateway: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_tool("prometheus")
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))],
        "scrape_configs": [{
            "job_name": "gatewayserver",
            "scrape_interval": "1s",
            "static_configs": [{"targets": [f"127.0.0.1:{daemon_with_gateway.http_port}"]}],
        }],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError("prometheus exited:\n" + (workdir / "prometheus.log").read_text()[-3000:])
            return http_get(url + "/-/ready", timeout=1)[0] == 200

        wait_until(ready, 30, interval=0.2, what="prometheus to be ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def api(url: str, path: str, **params: str) -> dict:
    status, body = http_get(f"{url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=5)
    assert status == 200, body[:500]
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]


def query(url: str, promql: str) -> list[dict]:
    return api(url, "query", query=promql)["result"]


def test_prometheus_scrapes_the_daemon(prometheus: str) -> None:
    def target_up() -> dict | None:
        targets = api(prometheus, "targets")["activeTargets"]
        return next((t for t in targets if t["labels"]["job"] == "gatewayserver" and t["health"] == "up"), None)

    target = wait_until(target_up, 30, interval=0.5, what="the gatewayserver target to be up")
    assert target["lastError"] == ""


def test_connected_gateway_is_readable_through_the_query_api(prometheus: str) -> None:
    result = wait_until(lambda: query(prometheus, 'gs_gateways_connected{job="gatewayserver"}'), 30, interval=0.5,
                        what="gs_gateways_connected in Prometheus")
    assert len(result) == 1, result
    assert result[0]["metric"]["protocol"] == "udp"
    assert float(result[0]["value"][1]) == 1.0


def test_datagram_counters_are_readable_through_the_query_api(prometheus: str) -> None:
    result = wait_until(
        lambda: query(prometheus, 'gs_udp_datagrams_received_total{job="gatewayserver", type="pull_data"}'),
        30, interval=0.5, what="gs_udp_datagrams_received_total in Prometheus")
    assert float(result[0]["value"][1]) >= 1.0
    status = wait_until(lambda: query(prometheus, 'sum(gs_status_received_total{job="gatewayserver"})'), 30,
                        interval=0.5, what="gs_status_received_total in Prometheus")
    assert float(status[0]["value"][1]) >= 1.0


def test_alert_rules_load_and_evaluate_against_live_data(prometheus: str) -> None:
    def evaluated() -> list[dict] | None:
        groups = api(prometheus, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules) else None

    rules = wait_until(evaluated, 30, interval=0.5, what="every rule to be evaluated once")
    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not unhealthy, unhealthy
    # A healthy daemon with one gateway pages nobody.
    firing = [rule["name"] for rule in rules if rule.get("state") == "firing"]
    assert not firing, firing
