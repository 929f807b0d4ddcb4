"""Operator plan directories: overrides, extends, and errors that name the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from frequency_plans import FrequencyPlanError, FrequencyPlanStore

GOOD = """
id: TEST_PLAN
name: "Test plan"
band_id: EU_863_870
uplink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5, radio: 0}
  - {frequency: 868300000, min_data_rate: 0, max_data_rate: 5, radio: 0}
  - {frequency: 868500000, min_data_rate: 0, max_data_rate: 5, radio: 0}
  - {frequency: 867100000, min_data_rate: 0, max_data_rate: 5, radio: 0}
radios:
  - {chip_type: SX1257, frequency: 868000000, rssi_offset: -166}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def load_error(directory: Path) -> str:
    with pytest.raises(FrequencyPlanError) as info:
        FrequencyPlanStore([directory])
    return str(info.value)


def test_operator_plan_added(tmp_path: Path) -> None:
    write(tmp_path, "test.yml", GOOD)
    store = FrequencyPlanStore([tmp_path])
    plan = store.get("TEST_PLAN")
    assert plan.band_id == "EU_863_870"
    assert len(plan.uplink_channels) == 4
    assert plan.source == str(tmp_path / "test.yml")
    assert "EU_863_870" in store.ids()


def test_operator_plan_overrides_builtin(tmp_path: Path) -> None:
    text = GOOD.replace("TEST_PLAN", "EU_863_870").replace('"Test plan"', "Mine")
    path = write(tmp_path, "mine.yaml", text)
    # Built-in extensions (EU_868_1, the roaming draft) put channels on radio 1, which this override lacks:
    # the mistake is reported against the built-in file that refers to the missing radio.
    message = load_error(tmp_path)
    assert re.match(r"plans/EU_8\S+\.yml: uplink_channels\[0\]\.radio: radio 1 does not exist", message), message
    path.write_text(text + "  - {chip_type: SX1257, frequency: 867500000, rssi_offset: -166}\n")
    store = FrequencyPlanStore([tmp_path])
    assert store.get("EU_863_870").name == "Mine"
    # Built-in plans that extend it now extend the operator's version.
    assert len(store.get("EU_863_870_TTN").uplink_channels) == 4
    assert store.get("EU_863_870_TTN").rx2.data_rate == 3


def test_later_directory_wins(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write(a, "p.yml", GOOD)
    write(b, "p.yml", GOOD.replace('"Test plan"', '"Second"'))
    assert FrequencyPlanStore([a, b]).get("TEST_PLAN").name == "Second"


def test_extends_override_and_remove(tmp_path: Path) -> None:
    write(tmp_path, "base.yml", GOOD)
    write(
        tmp_path,
        "child.yml",
        """
id: CHILD
extends: TEST_PLAN
uplink_channels:
  - {frequency: 868100000, min_data_rate: 0, max_data_rate: 5, radio: 0}
sub_bands:
  - {min_frequency: 868000000, max_frequency: 868600000, duty_cycle: 0.01, max_eirp: 14}
max_eirp: 20
time_off_air: {fraction: 0.1, duration: 50ms}
""",
    )
    write(
        tmp_path,
        "grandchild.yml",
        """
id: GRANDCHILD
extends: CHILD
name: Grandchild
sub_bands: null
max_eirp: null
dwell_time: {uplinks: false, downlinks: true, duration: 400ms}
""",
    )
    store = FrequencyPlanStore([tmp_path])
    child = store.get("CHILD")
    assert child.band_id == "EU_863_870"
    assert child.name == "CHILD"  # the base is "Test plan": names are not inherited, the id shows instead
    assert [c.frequency for c in child.uplink_channels] == [868100000]
    assert len(child.radios) == 1
    assert [(s.min_frequency, s.max_frequency, s.duty_cycle) for s in child.sub_bands] == [
        (868000000, 868600000, 0.01)
    ]
    assert (child.time_off_air.fraction, child.time_off_air.duration) == (0.1, 50_000_000)
    # EIRP: band sub-band 16.15, replaced by plan 20, replaced by plan sub-band 14 where it applies.
    assert child.eirp_for(868100000) == 14
    assert child.eirp_for(869525000) == 20
    assert child.find_sub_band(869525000) is None

    grandchild = store.get("GRANDCHILD")
    assert [c.frequency for c in grandchild.uplink_channels] == [868100000]
    assert grandchild.sub_bands == grandchild.band.sub_bands
    assert grandchild.max_eirp is None
    assert grandchild.eirp_for(869525000) == 29.15
    assert grandchild.dwell_time.downlinks is True
    assert grandchild.time_off_air.fraction == 0.1


def test_zero_duty_cycle_means_unlimited(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yml",
        GOOD + "sub_bands:\n  - {min_frequency: 863000000, max_frequency: 870000000, duty_cycle: 0}\n",
    )
    plan = FrequencyPlanStore([tmp_path]).get("TEST_PLAN")
    assert plan.sub_bands[0].duty_cycle == 1
    assert plan.sub_bands[0].max_eirp is None


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BROKEN = [
    # (transform of GOOD, expected "key: message" part)
    (
        lambda t: t.replace("867100000, min_data_rate: 0", "867.1e6, min_data_rate: 0"),
        "uplink_channels[3].frequency: must be an integer number of Hz",
    ),
    (
        lambda t: _replace(t, "frequency: 868300000", 'frequency: "868300000"'),
        "uplink_channels[1].frequency: must be an integer number of Hz",
    ),
    (
        lambda t: _replace(
            t,
            "max_data_rate: 5, radio: 0}\n  - {frequency: 868300000",
            "max_data_rate: 12, radio: 0}\n  - {frequency: 868300000",
        ),
        "uplink_channels[0].max_data_rate: data rate 12 is not defined in band EU_863_870",
    ),
    (
        lambda t: _replace(
            t,
            "min_data_rate: 0, max_data_rate: 5, radio: 0}\n  - {frequency: 868500000",
            "min_data_rate: 5, max_data_rate: 0, radio: 0}\n  - {frequency: 868500000",
        ),
        "uplink_channels[1].max_data_rate: must not be below min_data_rate (5)",
    ),
    (
        lambda t: _replace(
            t,
            "max_data_rate: 5, radio: 0}\n  - {frequency: 867100000",
            "max_data_rate: 5, radio: 3}\n  - {frequency: 867100000",
        ),
        "uplink_channels[2].radio: radio 3 does not exist (the plan has 1 radios)",
    ),
    (lambda t: _replace(t, "band_id: EU_863_870", "band_id: EU_999"), "band_id: unknown band 'EU_999'"),
    (lambda t: _replace(t, "band_id: EU_863_870\n", ""), "band_id: is required"),
    (lambda t: _replace(t, 'name: "Test plan"', 'nmae: "Test plan"'), "nmae: unknown key"),
    (lambda t: t + "uplink_channels: []\n", None),  # duplicate key: YAML keeps the last -> no channels
    (lambda t: t + "dwell_time: {uplinks: true}\n", "dwell_time.duration: is required when dwell time is on"),
    (lambda t: t + "dwell_time: {downlinks: yes please}\n", "dwell_time.downlinks: must be true or false"),
    (lambda t: t + "dwell_time: {downlinks: true, duration: 400 parsecs}\n", "dwell_time.duration: must be a duration"),
    (
        lambda t: t + "sub_bands:\n  - {min_frequency: 868000000, max_frequency: 867000000}\n",
        "sub_bands[0].max_frequency: must not be below min_frequency (868000000)",
    ),
    (
        lambda t: t + "sub_bands:\n  - {min_frequency: 863000000, max_frequency: 870000000, duty_cycle: 1.5}\n",
        "sub_bands[0].duty_cycle: must be a fraction between 0 and 1",
    ),
    (
        lambda t: (
            t + "sub_bands:\n  - {min_frequency: 863000000, max_frequency: 866000000}\n"
            "  - {min_frequency: 865000000, max_frequency: 870000000}\n"
        ),
        "sub_bands[1]: overlaps sub_bands[0] (863000000-866000000)",
    ),
    (
        lambda t: t + "sub_bands:\n  - {min_frequency: 863000000, max_frequency: 870000000, max_eirp: high}\n",
        "sub_bands[0].max_eirp: must be a number",
    ),
    (lambda t: t + "max_eirp: true\n", "max_eirp: must be a number"),
    (
        lambda t: t + "fsk_channel: {frequency: 868800000, data_rate: 5, radio: 0}\n",
        "fsk_channel.data_rate: data rate 5 is not a FSK rate",
    ),
    (
        lambda t: t + "lora_standard_channel: {frequency: 868300000, data_rate: 7, radio: 0}\n",
        "lora_standard_channel.data_rate: data rate 7 is not a LoRa rate",
    ),
    (
        lambda t: t + "lora_standard_channel: {frequency: 868300000, data_rate: 6}\n",
        "lora_standard_channel.radio: is required",
    ),
    (lambda t: t + "rx2_default_data_rate: 15\n", "rx2_default_data_rate: data rate 15 is not defined"),
    (lambda t: t + "rx2_channel: {frequency: -1, data_rate: 0}\n", "rx2_channel.frequency: must be an integer"),
    (
        lambda t: t + "listen_before_talk: {rssi_target: -80, scan_time: 0}\n",
        "listen_before_talk.scan_time: must be positive",
    ),
    (lambda t: t + "time_off_air: {fraction: 2}\n", "time_off_air.fraction: must be a fraction between 0 and 1"),
    (
        lambda t: _replace(
            t, "rssi_offset: -166}", "rssi_offset: -166, tx: {min_frequency: 870000000, max_frequency: 863000000}}"
        ),
        "radios[0].tx.max_frequency: must not be below min_frequency (870000000)",
    ),
    (lambda t: _replace(t, "chip_type: SX1257, ", ""), "radios[0].chip_type: is required"),
    (lambda t: _replace(t, "id: TEST_PLAN", "id: TEST PLAN"), "id: must contain only letters"),
    (lambda t: t + "extends: NOT_THERE\n", "extends: unknown plan 'NOT_THERE'"),
    (lambda t: "just a string\n", "must be a mapping"),
    (lambda t: t + "  - {frequency: [oops\n", "invalid YAML at line"),
    (lambda t: t + "clock_source: 5\n", "clock_source: radio 5 does not exist"),
]


@pytest.mark.parametrize("case", range(len(BROKEN)))
def test_broken_plan_names_file_and_key(tmp_path: Path, case: int) -> None:
    transform, expected = BROKEN[case]
    path = write(tmp_path, "broken.yml", transform(GOOD))
    if expected is None:
        message = load_error(tmp_path)
        assert message.startswith(f"{path}: uplink_channels: ")
        return
    message = load_error(tmp_path)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_error_message_format(tmp_path: Path) -> None:
    path = write(tmp_path, "foo.yml", GOOD.replace("867100000, min", "867100000.5, min"))
    assert load_error(tmp_path) == f"{path}: uplink_channels[3].frequency: must be an integer number of Hz"


def test_error_in_extended_key_names_the_file_that_set_it(tmp_path: Path) -> None:
    write(tmp_path, "base.yml", GOOD)
    child = write(
        tmp_path,
        "child.yml",
        "id: CHILD\nextends: TEST_PLAN\nlora_standard_channel: {frequency: 868300000, data_rate: 9, radio: 0}\n",
    )
    message = load_error(tmp_path)
    assert message.startswith(f"{child}: lora_standard_channel.data_rate: data rate 9 is not a LoRa rate")
    # A child that removes radios makes the base's channel radio references dangling: blamed on the base.
    child.write_text("id: CHILD\nextends: TEST_PLAN\nradios: null\n")
    message = load_error(tmp_path)
    assert message.startswith(f"{tmp_path / 'base.yml'}: uplink_channels[0].radio: radio 0 does not exist")


def test_channel_dwell_time(tmp_path: Path) -> None:
    text = GOOD.replace(
        "{frequency: 867100000, min_data_rate: 0, max_data_rate: 5, radio: 0}",
        "{frequency: 867100000, min_data_rate: 0, max_data_rate: 5, radio: 0, dwell_time: {enabled: true}}",
    )
    path = write(tmp_path, "p.yml", text)
    assert load_error(tmp_path) == (
        f"{path}: uplink_channels[3].dwell_time.duration: "
        "is required when the channel's dwell time is enabled and the plan sets no duration"
    )
    path.write_text(text + "dwell_time: {uplinks: false, downlinks: false, duration: 400ms}\n")
    plan = FrequencyPlanStore([tmp_path]).get("TEST_PLAN")
    assert plan.uplink_channels[3].dwell_time.enabled is True
    assert plan.uplink_channels[3].dwell_time.duration is None
    assert plan.uplink_channels[0].dwell_time is None
    path.write_text(text.replace("{enabled: true}", "{enabled: true, duration: 200ms}"))
    assert FrequencyPlanStore([tmp_path]).get("TEST_PLAN").uplink_channels[3].dwell_time.duration == 200_000_000


def test_clock_source_follows_radios(tmp_path: Path) -> None:
    write(tmp_path, "base.yml", GOOD + "clock_source: 0\n")
    write(tmp_path, "a.yml", "id: A\nextends: TEST_PLAN\nclock_source: 1\n")
    write(
        tmp_path,
        "b.yml",
        "id: B\nextends: TEST_PLAN\nclock_source: 1\nradios:\n"
        "  - {chip_type: SX1257, frequency: 868000000}\n  - {chip_type: SX1257, frequency: 867000000}\n",
    )
    store = FrequencyPlanStore([tmp_path])
    assert store.get("TEST_PLAN").clock_source == 0
    assert store.get("A").clock_source == 0  # ignored: A does not define radios
    assert store.get("B").clock_source == 1


def test_off_grid_channel_in_grid_band(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "us.yml",
        "id: MY_US\nextends: US_902_928_FSB_2\nuplink_channels:\n"
        "  - {frequency: 903900000, min_data_rate: 0, max_data_rate: 3, radio: 0}\n"
        "  - {frequency: 904000000, min_data_rate: 0, max_data_rate: 3, radio: 0}\n",
    )
    assert load_error(tmp_path) == (
        f"{path}: uplink_channels[1].frequency: 904000000 Hz is not on the US_902_928 uplink channel grid"
    )


def test_package_does_not_read_shared_reference() -> None:
    """Plans and tables ship with the package; nothing may depend on the reference notes at run time."""
    package = Path(__file__).resolve().parents[2] / "frequency_plans"
    for path in package.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".yml"):
            assert "/work/shared" not in path.read_text(), path


def test_extends_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "id: A\nextends: B\n")
    write(tmp_path, "b.yml", "id: B\nextends: C\n")
    write(tmp_path, "c.yml", "id: C\nextends: A\n")
    message = load_error(tmp_path)
    assert re.search(r"extends: cycle: (A -> B -> C -> A|B -> C -> A -> B|C -> A -> B -> C)", message), message


def test_self_extends(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "id: A\nextends: A\n")
    assert "extends: cycle: A -> A" in load_error(tmp_path)


def test_duplicate_id_in_one_directory(tmp_path: Path) -> None:
    write(tmp_path, "one.yml", GOOD)
    write(tmp_path, "two.yml", GOOD)
    message = load_error(tmp_path)
    assert message.startswith(f"{tmp_path / 'two.yml'}: id: plan 'TEST_PLAN' is also defined in")


def test_missing_directory(tmp_path: Path) -> None:
    assert "not a directory" in load_error(tmp_path / "nope")


def test_builtin_error_paths_are_relative() -> None:
    """Built-in plans report `plans/<file>` so messages match the repository layout."""
    store = FrequencyPlanStore()
    assert store.get("EU_863_870").source == "plans/EU_863_870.yml"
