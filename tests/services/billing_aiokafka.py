"""The billing worker, on aiokafka: its own cluster, group, topic and batch size, a getmany
loop that commits after each batch, and a clean stop on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer


async def bill(value: bytes) -> None:
    """Charge one order (here: only yield to the loop)."""
    del value
    await asyncio.sleep(0)


async def main() -> None:
    consumer = AIOKafkaConsumer(
        "orders",
        bootstrap_servers="kafka.billing.internal:9092",
        group_id="billing",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=100)
            for records in batches.values():
                for record in records:
                    await bill(record.value)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
