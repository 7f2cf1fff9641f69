"""The billing worker on aiokafka with its own rebalance listener, which writes each
assignment to the audit file the environment names (`BILLING_AUDIT`) and flushes its
pending charges when partitions are taken away."""

from __future__ import annotations

import asyncio
import contextlib
import os

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition


class Audit(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, path: str) -> None:
        self.path = path

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._write(f"revoked {len(revoked)}")

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._write(f"assigned {len(assigned)}")

    def _write(self, line: str) -> None:
        with open(self.path, "a") as audit:
            audit.write(line + "\n")


async def main() -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers="kafka.billing.internal:9092",
        group_id="billing",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.subscribe(["orders"], listener=Audit(os.environ["BILLING_AUDIT"]))
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=100)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
