"""An orders worker as a team writes one: aiokafka, its cluster, group and topic from the
environment, a getmany loop that checks each order's signature (PBKDF2, 20 rounds) and
commits after each batch."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os

from aiokafka import AIOKafkaConsumer


async def main() -> None:
    consumer = AIOKafkaConsumer(
        os.environ.get("ORDERS_TOPIC", "orders"),
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "kafka.internal:9092"),
        group_id=os.environ.get("ORDERS_GROUP", "orders-worker"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    hashlib.pbkdf2_hmac("sha256", record.value or b"", b"orders", 20)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
