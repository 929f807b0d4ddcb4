"""Semtech packet-forwarder `global_conf.json` generated from a gateway's frequency plan.

An operator copies this file onto a gateway as is, so it has to list exactly the plan's channels: one
`chan_multiSF_i` per uplink channel with its IF relative to its radio's centre, the LoRa standard and FSK
channels, radios with their TX ranges, LBT where the plan has it, the fixed TX gain table, and a
`gateway_conf` that points the forwarder at this server. Key order follows what the reference emits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from frequency_plans.bands import FSKModulation, LoRaModulation

if TYPE_CHECKING:  # pragma: no cover
    from frequency_plans.loader import FixedChannel, FrequencyPlan

MIN_MULTI_SF_CHANNELS = 8

#: (rf_power dBm, pa_gain, mix_gain): the reference's fixed SX1301 TX gain table.
TX_LUT: tuple[tuple[int, int, int], ...] = (
    (-6, 0, 8),
    (-3, 0, 10),
    (0, 0, 12),
    (3, 1, 8),
    (6, 1, 10),
    (10, 1, 12),
    (11, 1, 13),
    (12, 2, 9),
    (13, 1, 15),
    (14, 2, 10),
    (16, 2, 11),
    (20, 3, 9),
    (23, 3, 10),
    (25, 3, 11),
    (26, 3, 12),
    (27, 3, 14),
)


@dataclass(frozen=True)
class GcsSettings:
    #: Host the forwarder sends to; None = the host name the configuration was requested on.
    server_address: str | None = None
    #: The UDP listener port (up and down are the same socket on this server).
    udp_port: int = 1700
    keepalive_interval: int = 10
    stat_interval: int = 30
    push_timeout_ms: int = 100
    forward_crc_valid: bool = True
    forward_crc_error: bool = False
    forward_crc_disabled: bool = False


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def sx1301_conf(plan: FrequencyPlan) -> dict[str, Any]:
    """The `SX1301_conf` object for one plan (the plan must have radios)."""
    conf: dict[str, Any] = {"lorawan_public": True, "clksrc": plan.clock_source, "antenna_gain": 0}
    lbt = plan.listen_before_talk
    if lbt is not None:
        channels = plan.downlink_channels or plan.uplink_channels
        conf["lbt_cfg"] = {
            "enable": True,
            "rssi_target": _number(lbt.rssi_target),
            "sx127x_rssi_offset": _number(lbt.rssi_offset),
            "chan_cfg": [
                {"freq_hz": c.frequency, "scan_time_us": lbt.scan_time // 1000} for c in channels[:8]
            ],
        }
    for index, radio in enumerate(plan.radios):
        entry: dict[str, Any] = {
            "enable": radio.enable,
            "type": radio.chip_type,
            "freq": radio.frequency,
            "rssi_offset": _number(radio.rssi_offset),
            "tx_enable": radio.tx is not None,
        }
        if radio.tx is not None:
            if radio.tx.min_frequency:
                entry["tx_freq_min"] = radio.tx.min_frequency
            if radio.tx.max_frequency:
                entry["tx_freq_max"] = radio.tx.max_frequency
            if radio.tx.notch_frequency:
                entry["tx_notch_freq"] = radio.tx.notch_frequency
        conf[f"radio_{index}"] = entry

    def centre(radio: int | None) -> tuple[int, int]:
        index = radio if radio is not None else 0
        return index, plan.radios[index].frequency

    count = max(MIN_MULTI_SF_CHANNELS, len(plan.uplink_channels))
    for i in range(count):
        if i < len(plan.uplink_channels):
            channel = plan.uplink_channels[i]
            radio_index, freq = centre(channel.radio)
            conf[f"chan_multiSF_{i}"] = {"enable": True, "radio": radio_index, "if": channel.frequency - freq}
        else:
            conf[f"chan_multiSF_{i}"] = {"enable": False}

    conf["chan_Lora_std"] = _lora_std(plan, plan.lora_standard_channel, centre)
    conf["chan_FSK"] = _fsk(plan, plan.fsk_channel, centre)
    for k, (rf_power, pa_gain, mix_gain) in enumerate(TX_LUT):
        conf[f"tx_lut_{k}"] = {"pa_gain": pa_gain, "mix_gain": mix_gain, "rf_power": rf_power, "dig_gain": 0}
    return conf


def _lora_std(plan: FrequencyPlan, channel: FixedChannel | None, centre: Any) -> dict[str, Any]:
    if channel is None:
        return {"enable": False}
    modulation = plan.band.data_rates[channel.data_rate].modulation
    if not isinstance(modulation, LoRaModulation):
        return {"enable": False}
    radio, freq = centre(channel.radio)
    return {
        "enable": True,
        "radio": radio,
        "if": channel.frequency - freq,
        "bandwidth": modulation.bandwidth,
        "spread_factor": modulation.spreading_factor,
    }


def _fsk(plan: FrequencyPlan, channel: FixedChannel | None, centre: Any) -> dict[str, Any]:
    if channel is None:
        return {"enable": False}
    modulation = plan.band.data_rates[channel.data_rate].modulation
    if not isinstance(modulation, FSKModulation):
        return {"enable": False}
    radio, freq = centre(channel.radio)
    return {
        "enable": True,
        "radio": radio,
        "if": channel.frequency - freq,
        "bandwidth": 125000,
        "datarate": modulation.bit_rate,
    }


def global_conf(
    plans: FrequencyPlan | Sequence[FrequencyPlan],
    eui: bytes | None,
    settings: GcsSettings,
    *,
    request_host: str | None = None,
) -> dict[str, Any]:
    """The whole file: one `SX1301_conf` per plan with radios (a list when there are several)."""
    plan_list = [plans] if not isinstance(plans, Sequence) else list(plans)
    confs = [sx1301_conf(p) for p in plan_list if p.radios]
    out: dict[str, Any] = {}
    if len(confs) == 1:
        out["SX1301_conf"] = confs[0]
    elif confs:
        out["SX1301_conf"] = confs
    out["gateway_conf"] = {
        "gateway_ID": eui.hex().upper() if eui else "0000000000000000",
        "server_address": settings.server_address or _host_only(request_host) or "localhost",
        "serv_port_up": settings.udp_port,
        "serv_port_down": settings.udp_port,
        "keepalive_interval": settings.keepalive_interval,
        "stat_interval": settings.stat_interval,
        "push_timeout_ms": settings.push_timeout_ms,
        "forward_crc_valid": settings.forward_crc_valid,
        "forward_crc_error": settings.forward_crc_error,
        "forward_crc_disabled": settings.forward_crc_disabled,
    }
    return out


def global_conf_json(
    plans: FrequencyPlan | Sequence[FrequencyPlan],
    eui: bytes | None,
    settings: GcsSettings,
    *,
    request_host: str | None = None,
) -> bytes:
    """Indented like the files shipped with the packet forwarder, so operators can read and diff it."""
    return orjson.dumps(global_conf(plans, eui, settings, request_host=request_host), option=orjson.OPT_INDENT_2)


def _host_only(host: str | None) -> str | None:
    """`gs.example.com:1885` → `gs.example.com`; `[::1]:1885` → `::1`."""
    if not host:
        return None
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host
