"""`python -m frequency_plans list|show ID` (the same commands as `gatewayserver frequency-plans`)."""

import sys

from .cli import main

sys.exit(main())
