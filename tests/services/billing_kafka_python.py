"""The billing worker, on kafka-python: its own cluster, group, topic and batch sizes, a poll
loop that commits after each batch, and a clean close on Ctrl-C."""

from __future__ import annotations

from kafka import KafkaConsumer


def bill(order: bytes) -> None:
    """Charge one order (here: only read it)."""
    del order


def main() -> None:
    consumer = KafkaConsumer(
        "orders",
        bootstrap_servers="kafka.billing.internal:9092",
        group_id="billing",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=50,
        value_deserializer=bytes,
    )
    try:
        while True:
            batch = consumer.poll(timeout_ms=500, max_records=100)
            for records in batch.values():
                for record in records:
                    bill(record.value)
            if batch:
                consumer.commit()
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
