"""What a workload's summary says about its records, checked against what the broker stores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.helpers import unique
from tuner.broker import EmbeddedBroker
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.cluster.workload import summarize, workload_pool
from tuner.config import ClusterSpec, TopicSpec, parse_config

RECORDS = 8000


def _logged_bytes(broker: EmbeddedBroker, compression: str, values: list[bytes]) -> int:
    """The bytes a one-partition topic holds on disk after librdkafka (the Locust producer's
    client) wrote `values` to it with `compression`, in full 64 KiB batches."""
    topic = unique(f"ratio-{compression}")
    conn = Connection(bootstrap_servers=broker.bootstrap_servers, cluster=ClusterSpec())
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=1)))
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 1000,
                         "batch.size": 65536, "compression.type": compression})  # fmt: skip
    for value in values:
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(30) == 0
    segments = (broker.data_dir / "kraft" / f"{topic}-0").glob("*.log")
    return sum(path.stat().st_size for path in segments)


@pytest.mark.integration
@pytest.mark.parametrize(
    "workload",
    [
        {"payloads": {"file": "orders.jsonl"}},
        {"message_bytes": 1000},
        {"message_bytes": {"distribution": "lognormal", "mean": 800, "p99": 4000}},
    ],
    ids=["json-orders", "fixed-size-values", "random-sizes"],
)
def test_the_compression_ratio_is_what_the_broker_stores(
    kafka_broker: EmbeddedBroker, tmp_path: Path, workload: dict[str, object]
) -> None:
    """Records written in their order with gzip: the summary's ratio is within 5% of the
    broker's (the bytes of the topic written uncompressed over those written compressed),
    for 400 JSON orders, and for the random values of a fixed `message_bytes` and of a size
    distribution (they do not compress)."""
    lines = [json.dumps({"order": i, "status": "shipped", "pad": "p" * (i % 90)})
             for i in range(400)]  # fmt: skip
    (tmp_path / "orders.jsonl").write_text("\n".join(lines) + "\n")
    if "payloads" in workload:
        workload = {"payloads": {"file": str(tmp_path / "orders.jsonl")}}
    spec = parse_config(
        {"workload": {**workload, "producer": {"compression": "gzip", "batch_bytes": 65536}}}
    ).workload
    write = workload_pool(spec).writer()
    values = [write().value for _ in range(RECORDS)]
    stored = _logged_bytes(kafka_broker, "none", values) / _logged_bytes(
        kafka_broker, "gzip", values
    )
    estimate = summarize(spec).compression_ratio
    assert estimate is not None
    assert estimate == pytest.approx(stored, rel=0.05)
