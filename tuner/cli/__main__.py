"""`python -m tuner.cli`: the `tuner` command, for subprocesses that must use this interpreter."""

from __future__ import annotations

import sys

from tuner.cli import main

sys.exit(main())
