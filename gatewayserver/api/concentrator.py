"""`ttn.lorawan.v3.ConcentratorConfig` from a gateway's frequency plans, for `GtwGs.GetConcentratorConfig`.

The reference derives it from the gateway's first plan only. A gateway listed with several plans (a 16-channel US
gateway with two FSBs, say) has one concentrator per plan, so here every plan contributes its channels and radios;
radio indices are renumbered to point into the combined `radios` list. The single-valued parts (LoRa standard and
FSK channel, LBT, ping slot, clock source) come from the first plan that has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from frequency_plans.bands import LoRaModulation

from ..ttnpb import regional_pb2

if TYPE_CHECKING:  # pragma: no cover
    from frequency_plans.loader import FrequencyPlan


def concentrator_config(plans: Sequence[FrequencyPlan]) -> regional_pb2.ConcentratorConfig:
    config = regional_pb2.ConcentratorConfig()
    radio_base = 0
    first = True
    for plan in plans:
        for channel in plan.uplink_channels:
            out = config.channels.add()
            out.frequency = channel.frequency
            out.radio = radio_base + (channel.radio or 0)
        std = plan.lora_standard_channel
        if std is not None and not config.HasField("lora_standard_channel"):
            modulation = plan.band.data_rates[std.data_rate].modulation
            if isinstance(modulation, LoRaModulation):
                lora = config.lora_standard_channel
                lora.frequency = std.frequency
                lora.radio = radio_base + (std.radio or 0)
                lora.bandwidth = modulation.bandwidth
                lora.spreading_factor = modulation.spreading_factor
        fsk = plan.fsk_channel
        if fsk is not None and not config.HasField("fsk_channel"):
            config.fsk_channel.frequency = fsk.frequency
            config.fsk_channel.radio = radio_base + (fsk.radio or 0)
        lbt = plan.listen_before_talk
        if lbt is not None and not config.HasField("lbt"):
            config.lbt.rssi_target = lbt.rssi_target
            config.lbt.rssi_offset = lbt.rssi_offset
            config.lbt.scan_time.seconds, config.lbt.scan_time.nanos = divmod(lbt.scan_time, 1_000_000_000)
        # One fixed ping-slot frequency only: a band that hops (US915) has none to name, as in the reference.
        if len(plan.ping_slot.frequencies) == 1 and not config.HasField("ping_slot"):
            config.ping_slot.frequency = plan.ping_slot.frequencies[0]
            config.ping_slot.radio = radio_base
        for radio in plan.radios:
            out_radio = config.radios.add()
            out_radio.enable = radio.enable
            out_radio.chip_type = radio.chip_type
            out_radio.frequency = radio.frequency
            out_radio.rssi_offset = radio.rssi_offset
            if radio.tx is not None:
                tx = out_radio.tx_configuration
                tx.min_frequency = radio.tx.min_frequency
                tx.max_frequency = radio.tx.max_frequency
                tx.notch_frequency = radio.tx.notch_frequency or 0
        if first:
            config.clock_source = plan.clock_source
            first = False
        radio_base += len(plan.radios)
    return config


__all__ = ["concentrator_config"]
