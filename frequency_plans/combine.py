"""Which frequency plans one gateway may combine, and what the combination means for its transmissions.

A gateway may list several plans (say the band's default plan plus one with extra channels) as The Things Stack
allows, but only plans of one band: the band fixes the data-rate table, the RX1 rules and the legal limits, and a
gateway whose plans disagree on those could be told to transmit what no single regulation allows. Within one band
a downlink may use the channels, sub-bands and limits of any of the plans, so the plans' sub-bands must also fit
together into one duty-cycle ledger; that rule is the scheduler's (`scheduler.scheduler.build_sub_bands`), and the
registry applies it when it loads.
"""

from __future__ import annotations

from collections.abc import Sequence

from .loader import FrequencyPlan, FrequencyPlanError, TimeOffAir

__all__ = [
    "PlansFromDifferentBands",
    "check_same_band",
    "combined_time_off_air",
]


class PlansFromDifferentBands(FrequencyPlanError):
    """One gateway's plans name more than one band."""


def check_same_band(plans: Sequence[FrequencyPlan]) -> None:
    """Raise `PlansFromDifferentBands` naming each plan's band unless all plans share the first plan's band."""
    if len({plan.band_id for plan in plans}) <= 1:
        return
    listed = ", ".join(f"{plan.id} ({plan.band_id})" for plan in plans)
    raise PlansFromDifferentBands(
        f"frequency plans are not from the same band: {listed}; a gateway may only combine plans of one band"
    )


def combined_time_off_air(plans: Sequence[FrequencyPlan]) -> TimeOffAir:
    """The longest rest any of the plans asks for after an emission: satisfying it satisfies every plan."""
    return TimeOffAir(
        fraction=max((plan.time_off_air.fraction for plan in plans), default=0.0),
        duration=max((plan.time_off_air.duration for plan in plans), default=0),
    )
