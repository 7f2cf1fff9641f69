"""A kafka-python worker that fails after `CRASH_AFTER_S` of consuming: it writes why to stderr
and exits 1 (a bug that shows only under load)."""

from __future__ import annotations

import sys
import time

from kafka import KafkaConsumer

CRASH_AFTER_S = 2.0


def main() -> int:
    consumer = KafkaConsumer("orders", group_id="billing", enable_auto_commit=False)
    first = None
    while True:
        batch = consumer.poll(timeout_ms=500)
        if batch and first is None:
            first = time.monotonic()
        if first is not None and time.monotonic() - first > CRASH_AFTER_S:
            print("billing: KeyError 'currency' in order 4711", file=sys.stderr, flush=True)  # noqa: T201 - a service's output
            return 1
        if batch:
            consumer.commit()


if __name__ == "__main__":
    sys.exit(main())
