"""An enrich-and-forward worker that writes besides reading: it produces invoices, creates
the topic it forwards to, or deletes its input (`BILLING_WRITE`: `<client>-<what>`), with each
client's producer or admin client, all on its own cluster."""

from __future__ import annotations

import asyncio
import os

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin import NewTopic as AIONewTopic
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from kafka import KafkaProducer

SERVERS = "kafka.billing.internal:9092"


async def aiokafka_write(what: str) -> None:
    if what == "produce":
        producer = AIOKafkaProducer(bootstrap_servers=SERVERS)
        await producer.start()
        await producer.send_and_wait("invoices", b"invoice 4711")
    else:
        admin = AIOKafkaAdminClient(bootstrap_servers=SERVERS)
        await admin.start()
        await admin.create_topics([AIONewTopic("invoices", 1, 1)])


def confluent_write(what: str) -> None:
    if what == "produce":
        Producer({"bootstrap.servers": SERVERS}).produce("invoices", b"invoice 4711")
    elif what == "create":
        AdminClient({"bootstrap.servers": SERVERS}).create_topics([NewTopic("invoices", 1, 1)])
    else:
        AdminClient({"bootstrap.servers": SERVERS}).delete_topics(["orders"])


def kafka_python_write(what: str) -> None:
    del what
    KafkaProducer(bootstrap_servers=SERVERS).send("invoices", b"invoice 4711").get(10)


def main() -> None:
    client, _, what = os.environ["BILLING_WRITE"].rpartition("-")
    if client == "aiokafka":
        asyncio.run(aiokafka_write(what))
    elif client == "confluent":
        confluent_write(what)
    else:
        kafka_python_write(what)


if __name__ == "__main__":
    main()
