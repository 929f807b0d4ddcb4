"""Regional bands and gateway frequency plans.

`bands` holds the regional-parameters tables; `loader` reads, validates and serves the plan files; `combine` says
which plans one gateway may list together.
"""

from .bands import BANDS, Band, SubBand, get_band
from .combine import PlansFromDifferentBands, check_same_band
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
    "SubBand",
    "UnknownFrequencyPlan",
    "check_same_band",
    "get_band",
    "to_json_dict",
]
