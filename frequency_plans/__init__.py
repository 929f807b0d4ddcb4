"""Regional bands and gateway frequency plans.

`bands` holds the regional-parameters tables; `loader` reads, validates and serves the plan files.
"""

from .bands import BANDS, Band, SubBand, get_band
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
    "SubBand",
    "UnknownFrequencyPlan",
    "get_band",
    "to_json_dict",
]
