"""`python -m gatewayserver` is the same as the `gatewayserver` command."""

import sys

from .cli import main

sys.exit(main())
