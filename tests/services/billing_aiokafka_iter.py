"""The billing worker as aiokafka's README shows it: `async for msg in consumer`, one commit
per order, its own cluster, group and topic."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer


async def main() -> None:
    consumer = AIOKafkaConsumer(
        "orders",
        bootstrap_servers="kafka.billing.internal:9092",
        group_id="billing",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for msg in consumer:
            del msg  # billed
            await consumer.commit()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
