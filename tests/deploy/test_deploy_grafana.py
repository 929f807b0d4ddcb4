"""The Grafana dashboard and its provisioning: well-formed, complete, and wired to the provisioned data source."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from deploy_support import DEPLOY

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "gatewayserver.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "gatewayserver.yml"


def _panels(dashboard: dict) -> list[dict]:
    out: list[dict] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def test_dashboard_identity_and_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "gatewayserver"
    assert "id" not in dashboard or dashboard["id"] is None, "a fixed id collides when imported elsewhere"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["includeAll"] is True


def test_panels_are_complete_and_do_not_overlap() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = _panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel.get("description"), panel
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert 'instance=~"$instance"' in target["expr"], f"{panel['title']}: ignores the instance selector"


def test_dashboard_has_the_panels_the_operators_need() -> None:
    titles = {panel["title"] for panel in _panels(json.loads(DASHBOARD.read_text()))}
    for title in ("Gateways connected", "Uplinks/s", "Uplink drops by reason", "Upstream latency",
                  "Gateway round-trip time", "TX ack results", "Sub-band duty-cycle utilisation",
                  "Event stream subscribers"):
        assert title in titles, title


def test_upstream_latency_shows_p50_and_p99_from_the_histogram() -> None:
    panel = next(p for p in _panels(json.loads(DASHBOARD.read_text())) if p["title"] == "Upstream latency")
    exprs = " ".join(t["expr"] for t in panel["targets"])
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    assert "gs_upstream_latency_seconds_bucket" in exprs and "by (le, call)" in exprs


def test_provisioned_datasource_is_the_dashboard_default() -> None:
    provisioning = yaml.safe_load(DATASOURCES.read_text())
    assert provisioning["apiVersion"] == 1
    (source,) = provisioning["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the compose service name
    dashboard = json.loads(DASHBOARD.read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == source["uid"]


def test_dashboard_provider_path_matches_the_compose_mount() -> None:
    provisioning = yaml.safe_load(PROVIDERS.read_text())
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "container" / "compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    targets = {Path(str(m).split(":")[1]).as_posix(): str(m).split(":")[0] for m in mounts}
    assert path in targets, f"{path} is not mounted into the grafana container: {mounts}"
