"""`frequency-plans list|show` through `python -m frequency_plans` and through `register()`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from frequency_plans import FrequencyPlanStore
from frequency_plans.cli import register

REPO = Path(__file__).resolve().parents[2]
PLAN_IDS = FrequencyPlanStore().ids()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frequency_plans", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_list() -> None:
    result = run("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "BAND", "NAME"]
    rows = {line.split()[0]: line.split(None, 2) for line in lines[1:]}
    assert sorted(rows) == PLAN_IDS
    assert rows["EU_863_870_TTN"] == ["EU_863_870_TTN", "EU_863_870", "Europe 863-870 MHz (SF9 for RX2 - recommended)"]
    assert rows["KR_920_923_TTN"][1] == "KR_920_923"
    assert rows["AS_920_923"][1] == "AS_923"


# Expected summaries for the plans the issue names: (band, uplink count, first uplink, RX2, sub-band count).
EXPECTED = {
    "EU_863_870": ("EU_863_870", 8, 868100000, (869525000, 0), 6),
    "EU_863_870_TTN": ("EU_863_870", 8, 868100000, (869525000, 3), 6),
    **{
        f"US_902_928_FSB_{n}": ("US_902_928", 8, 902300000 + 1600000 * (n - 1), (923300000, 8), 2)
        for n in range(1, 9)
    },
    **{
        f"AU_915_928_FSB_{n}": ("AU_915_928", 8, 915200000 + 1600000 * (n - 1), (923300000, 8), 1)
        for n in range(1, 9)
    },
    "AS_923": ("AS_923", 2, 923200000, (923200000, 2), 1),
    "AS_923_2": ("AS_923_2", 2, 921400000, (921400000, 2), 1),
    "AS_923_3": ("AS_923_3", 2, 916600000, (916600000, 2), 1),
    "AS_923_4": ("AS_923_4", 2, 917300000, (917300000, 2), 1),
    "AS_920_923": ("AS_923", 8, 923200000, (923200000, 2), 1),
    "AS_923_925": ("AS_923", 8, 923200000, (923200000, 2), 1),
    "IN_865_867": ("IN_865_867", 8, 865062500, (866550000, 2), 1),
    "KR_920_923_TTN": ("KR_920_923", 7, 922100000, (921900000, 0), 1),
    "CN_470_510_FSB_11": ("CN_470_510", 8, 486300000, (505300000, 0), 1),
    "RU_864_870_TTN": ("RU_864_870", 7, 868900000, (869100000, 0), 1),
    "EU_433": ("EU_433", 8, 433175000, (434665000, 0), 1),
}

KEYS = {
    "id",
    "name",
    "band_id",
    "uplink_channels",
    "downlink_channels",
    "sub_bands",
    "rx2",
    "max_eirp",
    "dwell_time",
    "lora_standard_channel",
    "fsk_channel",
    "radios",
    "listen_before_talk",
}


@pytest.mark.parametrize("plan_id", PLAN_IDS)
def test_show_every_plan(plan_id: str) -> None:
    result = run("show", plan_id)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == KEYS
    assert data["id"] == plan_id
    for channel in data["uplink_channels"] + data["downlink_channels"]:
        assert set(channel) == {"frequency", "min_data_rate", "max_data_rate", "radio"}
        assert isinstance(channel["frequency"], int)
    for sub_band in data["sub_bands"]:
        assert set(sub_band) == {"min_frequency", "max_frequency", "duty_cycle", "max_eirp"}
        assert isinstance(sub_band["min_frequency"], int) and isinstance(sub_band["max_frequency"], int)
        assert 0 < sub_band["duty_cycle"] <= 1
    assert set(data["rx2"]) == {"frequency", "data_rate"}
    assert set(data["dwell_time"]) == {"uplinks", "downlinks", "duration"}
    if plan_id in EXPECTED:
        band, count, first, rx2, sub_bands = EXPECTED[plan_id]
        assert data["band_id"] == band
        assert len(data["uplink_channels"]) == count
        assert data["uplink_channels"][0]["frequency"] == first
        assert (data["rx2"]["frequency"], data["rx2"]["data_rate"]) == rx2
        assert len(data["sub_bands"]) == sub_bands


def test_show_eu_exact_json() -> None:
    data = json.loads(run("show", "EU_863_870").stdout)
    assert data["sub_bands"][4] == {
        "min_frequency": 869400000,
        "max_frequency": 869650000,
        "duty_cycle": 0.1,
        "max_eirp": 29.15,
    }
    assert data["lora_standard_channel"] == {"frequency": 868300000, "data_rate": 6, "radio": 1}
    assert data["fsk_channel"] == {"frequency": 868800000, "data_rate": 7, "radio": 1}
    assert data["downlink_channels"][0] == {
        "frequency": 868100000,
        "min_data_rate": 0,
        "max_data_rate": 5,
        "radio": None,
    }
    assert data["radios"][0] == {
        "enable": True,
        "chip_type": "SX1257",
        "frequency": 867500000,
        "rssi_offset": -166,
        "tx": {"min_frequency": 863000000, "max_frequency": 870000000, "notch_frequency": None},
    }
    assert data["max_eirp"] is None
    assert data["dwell_time"] == {"uplinks": None, "downlinks": None, "duration": None}
    assert data["listen_before_talk"] is None


def test_show_us_and_kr_json() -> None:
    us = json.loads(run("show", "US_902_928_FSB_2").stdout)
    assert us["dwell_time"] == {"uplinks": True, "downlinks": False, "duration": 400000000}
    assert us["downlink_channels"] == []
    kr = json.loads(run("show", "KR_920_923_TTN").stdout)
    assert kr["listen_before_talk"] == {"rssi_target": -80, "rssi_offset": -4, "scan_time": 128000}
    single = json.loads(run("show", "US_904_6").stdout)
    assert single["max_eirp"] == 24.15


def test_show_unknown_plan() -> None:
    result = run("show", "NOPE")
    assert result.returncode == 2
    assert "unknown frequency plan 'NOPE'" in result.stderr


def test_operator_dir_and_broken_file(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "x.yml").write_text("id: MY_EU\nname: Mine\nextends: EU_863_870\nrx2_default_data_rate: 2\n")
    result = run("--frequency-plans-dir", str(good), "show", "MY_EU")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rx2"] == {"frequency": 869525000, "data_rate": 2}
    result = run("list", "--frequency-plans-dir", str(good))
    assert "MY_EU" in result.stdout

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "y.yml").write_text("id: BAD\nextends: EU_863_870\nmax_eirp: lots\n")
    result = run("--frequency-plans-dir", str(bad), "list")
    assert result.returncode == 1
    assert f"{bad / 'y.yml'}: max_eirp: must be a number" in result.stderr


def test_register_into_a_parent_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.yml").write_text("id: MY_EU\nextends: EU_863_870\n")
    parser = argparse.ArgumentParser(prog="gatewayserver")
    commands = parser.add_subparsers(dest="command")
    register(commands)

    args = parser.parse_args(["frequency-plans", "list"])
    assert args.func(args) == 0
    assert "EU_863_870" in capsys.readouterr().out

    args = parser.parse_args(["frequency-plans", "--frequency-plans-dir", str(tmp_path), "show", "MY_EU"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "MY_EU"

    args = parser.parse_args(["frequency-plans", "show", "MY_EU", "--frequency-plans-dir", str(tmp_path)])
    assert args.func(args) == 0
    capsys.readouterr()

    args = parser.parse_args(["frequency-plans", "show", "MY_EU"])
    assert args.func(args) == 2
