"""A worker that reads more than its one topic: `orders` and `payments`, or a pattern
(`BILLING_SUBSCRIBE=pattern`), on kafka-python."""

from __future__ import annotations

import os

from kafka import KafkaConsumer


def main() -> None:
    consumer = KafkaConsumer(bootstrap_servers="kafka.billing.internal:9092", group_id="billing")
    if os.environ.get("BILLING_SUBSCRIBE") == "pattern":
        consumer.subscribe(pattern="^orders.*")
    else:
        consumer.subscribe(["orders", "payments"])
    try:
        while True:
            consumer.poll(timeout_ms=500)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
