"""The billing worker, on confluent-kafka: its own cluster, group, topic and batch size, a
consume loop that commits after each batch, and a clean close on Ctrl-C."""

from __future__ import annotations

from confluent_kafka import Consumer


def bill(value: bytes | None) -> None:
    """Charge one order (here: only read it)."""
    del value


def main() -> None:
    consumer = Consumer({
        "bootstrap.servers": "kafka.billing.internal:9092",
        "group.id": "billing",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })  # fmt: skip
    consumer.subscribe(["orders"])
    try:
        while True:
            messages = consumer.consume(num_messages=100, timeout=0.5)
            for message in messages:
                if message.error() is None:
                    bill(message.value())
            if messages:
                consumer.commit(asynchronous=False)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
