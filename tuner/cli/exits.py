"""How the `tuner` command ends: its exit codes, and the line on stderr that says why.

0 ok, 1 the work failed, 2 bad input (config, arguments, or a setup the tool cannot use).
"""

from __future__ import annotations

import sys

from tuner import broker

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as a shell reports Ctrl-C."""
EXIT_TERMINATED = 143
"""128 + SIGTERM."""


def err(message: str) -> None:
    print(f"tuner: {message}", file=sys.stderr)


def broker_failed(exc: broker.BrokerError) -> int:
    """A setup this machine cannot run is bad input (2); a broker that died or never answered
    is a failure (1)."""
    err(str(exc))
    return EXIT_BAD_INPUT if isinstance(exc, broker.BrokerSetupError) else EXIT_FAILURE
