"""Prometheus configuration and alert rules, judged by promtool, and the alerts shown to fire by its unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_support import DEPLOY, require_tool

PROMETHEUS = DEPLOY / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))

# What the issue asks the rules to page on, by alert name.
REQUIRED_ALERTS = {
    "GatewayServerGatewaysDisconnected",
    "GatewayServerUplinkDropRateHigh",
    "GatewayServerNetworkServerUnreachable",
    "GatewayServerUplinksLostUpstream",
    "GatewayServerUpstreamQueueFilling",
    "GatewayServerDownlinkTxFailures",
    "GatewayServerSubBandNearDutyCycleLimit",
    "GatewayServerGatewayRTTRising",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=DEPLOY.parent)


def _alerts() -> list[dict]:
    alerts = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            alerts += [rule for rule in group["rules"] if "alert" in rule]
    return alerts


def test_rule_files_exist() -> None:
    assert RULES and RULE_TESTS


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-local.yml"])
def test_promtool_check_config(config: str) -> None:
    # Also loads rule_files relative to the config, so the glob must match the rules directory.
    result = _promtool("check", "config", str(PROMETHEUS / config))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{len(RULES)} rule files found" in output, output


def test_promtool_unit_tests_fire_every_alert() -> None:
    result = _promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_exercised_by_a_unit_test() -> None:
    tested: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert names <= tested, f"alerts never shown firing: {sorted(names - tested)}"


def test_required_alerts_are_present_and_annotated() -> None:
    alerts = {alert["alert"]: alert for alert in _alerts()}
    assert REQUIRED_ALERTS <= set(alerts), sorted(REQUIRED_ALERTS - set(alerts))
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        assert alert["annotations"].get("summary"), name
        assert alert["annotations"].get("description"), name


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_runbooks_point_at_existing_sections(alert: dict) -> None:
    runbook = alert["annotations"].get("runbook")
    if runbook is None:
        return
    path, _, anchor = runbook.partition("#")
    doc = DEPLOY.parent / path
    assert doc.is_file(), f"{alert['alert']}: {path} does not exist"
    anchors = {_anchor(line) for line in doc.read_text().splitlines() if line.startswith("#")}
    assert anchor in anchors, f"{alert['alert']}: no heading for #{anchor} in {path}"


def _anchor(heading: str) -> str:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    import re

    text = heading.lstrip("#").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-local.yml"])
def test_scrape_config_targets_the_daemon_http_port(config: str) -> None:
    parsed = yaml.safe_load((PROMETHEUS / config).read_text())
    jobs = {job["job_name"]: job for job in parsed["scrape_configs"]}
    job = jobs["gatewayserver"]  # the rules select job="gatewayserver"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets and all(t.endswith(":1885") for t in targets), targets


def test_rules_reference_the_scrape_job_name() -> None:
    text = "".join(path.read_text() for path in RULES)
    assert 'job="gatewayserver"' in text
    assert Path(PROMETHEUS / "prometheus.yml").read_text().count("rules/*.yml") == 1
