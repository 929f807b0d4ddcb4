"""The alert rules and the dashboard may only query metrics the daemon exports.

Three views of "exports", from the contract to the real thing:
- the Metrics table in docs/design.md (what rules and dashboard are written against);
- the metrics declared by the package's `metrics.py` modules, rendered in a fresh interpreter;
- the live `/metrics` of a running `gatewayserver run`.
A histogram's `_bucket`, `_sum` and `_count` count as its name; a labelled metric without series yet still shows
its HELP/TYPE lines.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import yaml
from deploy_support import (  # noqa: F401
    DEPLOY,
    REPO,
    daemon,
    exported_metric_names,
    promql_metric_names,
    start_daemon,
)

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "gatewayserver.json"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
FROM_PROMETHEUS = {"up"}  # written by Prometheus itself, not the daemon


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            text = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", text)
            exprs.append(match.group(1) if match else text)
    return exprs


def rule_exprs() -> list[str]:
    return [rule["expr"] for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def used_names() -> dict[str, set[str]]:
    """metric name -> where it is used."""
    used: dict[str, set[str]] = {}
    for source, exprs in (("dashboard", dashboard_exprs()), ("rules", rule_exprs())):
        for expr in exprs:
            for name in promql_metric_names(expr):
                used.setdefault(name, set()).add(source)
    return used


def contract_names() -> set[str]:
    """Metric names in the Metrics table of docs/design.md, expanded by type."""
    text = (REPO / "docs" / "design.md").read_text()
    section = text.split("## Metrics", 1)[1]
    names: set[str] = set()
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        kind = cells[1]
        for name in re.findall(r"`(gs_\w+)`", cells[0]):
            names.add(name)
            if kind == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count"})
    return names


def test_extraction_sees_through_promql() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, call) (rate(gs_upstream_latency_seconds_bucket'
            '{instance=~"$instance", call!="x"}[$__rate_interval]))) > 2 * max_over_time(gs_a[1h] offset 1d) '
            'and on (job) (up == 0) unless ignoring (le) group_left(reason) gs_b{reason="and"}')
    assert promql_metric_names(expr) == {"gs_upstream_latency_seconds_bucket", "gs_a", "up", "gs_b"}


def test_dashboard_and_rules_use_metrics() -> None:
    used = used_names()
    assert len(used) >= 15, sorted(used)
    # The panels the issue asks for.
    for name in ("gs_gateways_connected", "gs_uplinks_received_total", "gs_uplinks_dropped_total",
                 "gs_upstream_latency_seconds_bucket", "gs_gateway_rtt_seconds_bucket", "gs_tx_acks_received_total",
                 "gs_sub_band_utilization_ratio", "gs_event_stream_subscribers"):
        assert "dashboard" in used.get(name, set()), name


def test_every_metric_used_is_in_the_design_contract() -> None:
    unknown = {name: sorted(where) for name, where in used_names().items()
               if name not in contract_names() | FROM_PROMETHEUS}
    assert not unknown, f"not in docs/design.md's Metrics table: {unknown}"


def _declared_exposition() -> str:
    """What the package's metrics modules render, in a fresh interpreter (no test's side effects)."""
    code = (
        "import importlib, pkgutil, prometheus_client\n"
        "import gatewayserver\n"
        "for info in pkgutil.walk_packages(gatewayserver.__path__, 'gatewayserver.'):\n"
        "    if info.name.rsplit('.', 1)[-1] == 'metrics':\n"
        "        importlib.import_module(info.name)\n"
        "print(prometheus_client.generate_latest().decode())\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                          timeout=60).stdout


def test_every_metric_used_is_declared_by_the_package() -> None:
    declared = exported_metric_names(_declared_exposition())
    # The API package (auth failures) is being written; allowed to be missing only while it does not exist.
    pending = set() if importlib.util.find_spec("gatewayserver.api.metrics") else {"gs_api_auth_failures_total"}
    missing = {name: sorted(where) for name, where in used_names().items()
               if name not in declared | FROM_PROMETHEUS | pending}
    assert not missing, f"used but not declared in any gatewayserver metrics module: {missing}"


def _only_with_redis(name: str) -> bool:
    """Metrics of the Redis link: exported only by an instance with `redis_url` (docs/design.md)."""
    return name.startswith("gs_redis_")


def test_every_metric_used_is_in_live_metrics(daemon) -> None:  # noqa: F811
    exposition = daemon.metrics_text()
    exported = exported_metric_names(exposition)
    missing = {name: sorted(where) for name, where in used_names().items()
               if name not in exported | FROM_PROMETHEUS and not _only_with_redis(name)}
    assert not missing, f"queried but absent from the daemon's /metrics: {missing}"


def test_redis_metrics_used_are_in_live_metrics_of_an_instance_with_redis(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The rules and the dashboard's Redis queries against a real `run --redis-url` and a real redis-server."""
    from redis_support import RedisServer

    used = {name: sorted(where) for name, where in used_names().items() if _only_with_redis(name)}
    assert {"gs_redis_up"} <= set(used), "GatewayServerRedisDown and the Redis panel query gs_redis_up"
    with RedisServer() as redis:
        instance = start_daemon(tmp_path, extra=["--redis-url", redis.url, "--cluster-key", "ab" * 16,
                                                 "--uplink-token-key", "cd" * 16, "--instance-id", "metrics"])
        try:
            exported = exported_metric_names(instance.metrics_text())
        finally:
            instance.stop()
    missing = {name: where for name, where in used.items() if name not in exported}
    assert not missing, f"queried but absent from /metrics of an instance with redis_url: {missing}"
