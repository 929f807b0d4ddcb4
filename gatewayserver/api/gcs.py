"""Semtech packet-forwarder `global_conf.json` generated from a gateway's frequency plan.

An operator copies this file onto a gateway as is, so it has to list exactly the plan's channels: one
`chan_multiSF_i` per uplink channel with its IF relative to its radio's centre, the LoRa standard and FSK
channels, radios with their TX ranges, LBT where the plan has it, the fixed TX gain table, and a
`gateway_conf` that points the forwarder at this server. Key order follows what the reference emits.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from frequency_plans.bands import FSKModulation, LoRaModulation
from gatewayserver.errors import FAILED_PRECONDITION, GsError
from gatewayserver.hostnames import valid_host

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
    #: Host the forwarder sends to (`gcs_server_address`); None = the request's `Host` header, if it is a valid
    #: host name or IP address.
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
    server_address: str | None = None,
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
        "server_address": server_address or settings.server_address or host_from_header(request_host) or "localhost",
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
    server_address: str | None = None,
) -> bytes:
    """Indented like the files shipped with the packet forwarder, so operators can read and diff it."""
    conf = global_conf(plans, eui, settings, request_host=request_host, server_address=server_address)
    return orjson.dumps(conf, option=orjson.OPT_INDENT_2)


def host_from_header(value: str | None) -> str | None:
    """The host of a `Host` header (`gs.example.com:1885` → `gs.example.com`, `[::1]:1885` → `::1`), or None
    when it is not a valid host name or IP address: the header is the client's to choose, and what comes out
    here is written into a file that tells a gateway where to send its traffic."""
    if not value or len(value) > 300:
        return None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not re.fullmatch(r":\d{1,5}", rest)):
            return None
        try:
            return host if ipaddress.ip_address(host).version == 6 else None
        except ValueError:
            return None
    host, sep, port = value.partition(":")
    if sep and not re.fullmatch(r"\d{1,5}", port):
        return None
    return host if valid_host(host) else None


def err_no_server_address() -> GsError:
    return GsError(
        "pkg/gatewayconfigurationserver", "no_server_address",
        "no server address for global_conf.json: the request's host is not a valid host name; "
        "set gcs_server_address (--gcs-server-address, GS_GCS_SERVER_ADDRESS)",
        code=FAILED_PRECONDITION,
    )


def resolve_server_address(settings: GcsSettings, request_host: str | None) -> str:
    """The configured public address; without one, the request's host if valid; otherwise a clear error."""
    address = settings.server_address or host_from_header(request_host)
    if not address:
        raise err_no_server_address()
    return address
