"""Regional bands and gateway frequency plans.

`bands` holds the regional-parameters tables; `loader` reads, validates and serves the plan files; `combine` says
which plans one gateway may list together.
"""

from .bands import BANDS, Band, SubBand, get_band
from .combine import PlansFromDifferentBands, PlansWithOverlappingSubBands, check_combinable
from .loader import (
    FrequencyPlan,
    FrequencyPlanError,
    FrequencyPlanStore,
    UnknownFrequencyPlan,
    to_json_dict,
)

__all__ = [
    "BANDS",
    "Band",
    "FrequencyPlan",
    "FrequencyPlanError",
    "FrequencyPlanStore",
    "PlansFromDifferentBands",
    "PlansWithOverlappingSubBands",
    "SubBand",
    "UnknownFrequencyPlan",
    "check_combinable",
    "get_band",
    "to_json_dict",
]
