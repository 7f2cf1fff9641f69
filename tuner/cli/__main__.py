"""`python -m tuner.cli`: the `tuner` command, for subprocesses that must use this interpreter."""

from __future__ import annotations

import sys

from tuner.cli import main

# Guarded: multiprocessing's forkserver imports this file again (as `__mp_main__`) to prepare
# the group's member processes, and must not run the command a second time there.
if __name__ == "__main__":
    sys.exit(main())
