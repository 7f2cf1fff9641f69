"""A service that never creates a Kafka consumer (it waits on something else forever)."""

from __future__ import annotations

import sys
import time

if __name__ == "__main__":
    print("waiting for the database", file=sys.stderr, flush=True)  # noqa: T201 - a service's output
    while True:
        time.sleep(1)
