"""Which frequency plans one gateway may combine, and what the combination means for its transmissions.

A gateway may list several plans (say the band's default plan plus one with extra channels) as The Things Stack
allows, but only plans of one band: the band fixes the data-rate table, the RX1 rules and the legal limits, and a
gateway whose plans disagree on those could be told to transmit what no single regulation allows. Within one band
a downlink may use the channels, sub-bands and limits of any of the plans, so the plans' sub-bands must also fit
together into one duty-cycle ledger: ranges that are identical or only touch are fine, partial overlaps are not.
"""

from __future__ import annotations

from collections.abc import Sequence

from .loader import FrequencyPlan, FrequencyPlanError, TimeOffAir

__all__ = [
    "PlansFromDifferentBands",
    "PlansWithOverlappingSubBands",
    "check_combinable",
    "check_same_band",
    "check_sub_bands_combinable",
    "combined_time_off_air",
]


class PlansFromDifferentBands(FrequencyPlanError):
    """One gateway's plans name more than one band."""


class PlansWithOverlappingSubBands(FrequencyPlanError):
    """Two of one gateway's plans have sub-bands that overlap without being identical."""


def check_same_band(plans: Sequence[FrequencyPlan]) -> None:
    """Raise `PlansFromDifferentBands` naming each plan's band unless all plans share the first plan's band."""
    if len({plan.band_id for plan in plans}) <= 1:
        return
    listed = ", ".join(f"{plan.id} ({plan.band_id})" for plan in plans)
    raise PlansFromDifferentBands(
        f"frequency plans are not from the same band: {listed}; a gateway may only combine plans of one band"
    )


def check_sub_bands_combinable(plans: Sequence[FrequencyPlan]) -> None:
    """Raise `PlansWithOverlappingSubBands` when duty cycle could not be accounted per sub-band across the plans.

    Each plan's own sub-bands are already disjoint (the loader checks), so only pairs from different plans can
    clash; the rule is the scheduler's (`scheduler.scheduler.build_sub_bands`), checked here to fail at load time.
    """
    for i, plan in enumerate(plans):
        for other in plans[:i]:
            for a in plan.sub_bands:
                for b in other.sub_bands:
                    same = a.min_frequency == b.min_frequency and a.max_frequency == b.max_frequency
                    if not same and a.min_frequency < b.max_frequency and b.min_frequency < a.max_frequency:
                        raise PlansWithOverlappingSubBands(
                            f"frequency plans {other.id} and {plan.id} have overlapping sub-bands "
                            f"({b.min_frequency}-{b.max_frequency} and {a.min_frequency}-{a.max_frequency} Hz); "
                            "sub-bands of combined plans must be identical or disjoint"
                        )


def check_combinable(plans: Sequence[FrequencyPlan], *, duty_cycle: bool = True) -> None:
    """Both rules; sub-band overlaps only matter when duty cycle is enforced (otherwise nothing is accounted)."""
    check_same_band(plans)
    if duty_cycle:
        check_sub_bands_combinable(plans)


def combined_time_off_air(plans: Sequence[FrequencyPlan]) -> TimeOffAir:
    """The longest rest any of the plans asks for after an emission: satisfying it satisfies every plan."""
    return TimeOffAir(
        fraction=max((plan.time_off_air.fraction for plan in plans), default=0.0),
        duration=max((plan.time_off_air.duration for plan in plans), default=0),
    )
