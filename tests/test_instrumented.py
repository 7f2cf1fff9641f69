"""What `InstrumentedConsumer` measures inside aiokafka, against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import small_spec, unique
from tuner import broker
from tuner.cluster import admin as cluster
from tuner.cluster import prefill
from tuner.cluster.admin import Connection
from tuner.consumer import InstrumentedConsumer
from tuner.consumer.instrumented import COORDINATOR_NODE_BASE
from tuner.metrics import (
    JAVA_CONSUMER,
    JAVA_FETCH,
    JAVA_NODE,
    ConsumerMetrics,
    JavaCompatibleCollector,
)

QUOTA_BYTES_PER_S = 20_000


def _class_in(cp: str, name: str) -> str | None:
    """`name` if a jar of the classpath `cp` (directories ending in `/*`) holds it."""
    entry = name.replace(".", "/") + ".class"
    for directory in cp.split(os.pathsep):
        for jar in Path(directory.removesuffix("*")).glob("*.jar"):
            with zipfile.ZipFile(jar) as archive:
                if entry in archive.namelist():
                    return name
    return None


@contextlib.contextmanager
def consumer_byte_rate_quota(bootstrap_servers: str, client_id: str) -> Iterator[None]:
    """A `consumer_byte_rate` quota on one client id, set and removed with Kafka's own
    ConfigCommand (aiokafka and confluent-kafka have no client-quota API); it moved from the
    broker's jar to kafka-tools in Kafka 4.2."""
    cp = broker.tools_classpath()
    command = _class_in(cp, "org.apache.kafka.tools.ConfigCommand") or "kafka.admin.ConfigCommand"

    def config_command(*change: str) -> None:
        subprocess.run(
            [broker.check_java(), "-cp", cp, command,
             "--bootstrap-server", bootstrap_servers, "--alter", *change,
             "--entity-type", "clients", "--entity-name", client_id],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    config_command("--add-config", f"consumer_byte_rate={QUOTA_BYTES_PER_S}")
    try:
        yield
    finally:
        config_command("--delete-config", "consumer_byte_rate")


@pytest.mark.integration
def test_throttle_latency_max_connections_and_node_responses_are_the_brokers(
    bootstrap_servers: str,
) -> None:
    """Under a consumer_byte_rate quota the broker throttles the member's fetches, and the
    throttle time it reports in the responses reaches fetch_throttle_time_avg (> 0 ms);
    fetch-latency-max lies between the average and the sum of the round trips; the member
    holds two connections (fetch, coordinator) and counts responses per broker node."""
    spec = small_spec(
        "throttle",
        topic={"partitions": 1},
        workload={"message_bytes": 1000, "prefill_records": 500},
    )
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)
    client_id = unique("throttled")
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")
    java = JavaCompatibleCollector(registry)
    value: dict[tuple[str, str], float] = {}

    async def consume() -> None:
        await cluster.ensure_topic(conn, spec.topic)
        await prefill.prefill(conn, spec.topic.name, spec.workload, records=500)
        consumer = InstrumentedConsumer(
            spec.topic.name, metrics=m, client_id=client_id, group_id=unique("group"),
            auto_offset_reset="earliest", max_partition_fetch_bytes=50_000,
            **conn.kwargs(),
        )  # fmt: skip
        try:
            async with consumer, asyncio.timeout(30):
                while registry.get_sample_value(
                    "tuner_consumer_fetch_throttle_seconds_sum", {"group": "g", "member": "m0"}
                ) in (None, 0.0):
                    await consumer.getmany(timeout_ms=200)
                java.sample()
                value.update(
                    ((s.name, s.labels.get("node_id", "")), s.value)
                    for f in java.collect()
                    for s in f.samples
                    if "topic" not in s.labels
                )
        finally:
            await cluster.delete_topic(conn, spec.topic.name)

    with consumer_byte_rate_quota(bootstrap_servers, client_id):
        asyncio.run(consume())
    assert value[(f"{JAVA_FETCH}fetch_throttle_time_avg", "")] > 0
    fetches = value[(f"{JAVA_FETCH}fetch_total", "")]
    latency_max = value[(f"{JAVA_FETCH}fetch_latency_max", "")]
    assert value[(f"{JAVA_FETCH}fetch_latency_avg", "")] <= latency_max
    sum_s = registry.get_sample_value(
        "tuner_consumer_fetch_latency_seconds_sum", {"group": "g", "member": "m0"}
    )
    assert sum_s is not None
    assert latency_max <= 1000 * sum_s + 1e-9
    assert value[(f"{JAVA_CONSUMER}connection_count", "")] == 2
    nodes = {n: v for (name, n), v in value.items() if name == f"{JAVA_NODE}response_total"}
    assert len(nodes) == 2, nodes
    ids = sorted(int(n.removeprefix("node-")) for n in nodes)
    assert ids[0] + ids[1] == COORDINATOR_NODE_BASE  # node-<id> and its coordinator connection
    assert sum(nodes.values()) > fetches


@pytest.mark.integration
def test_a_join_round_the_broker_rejects_counts_as_a_failed_rebalance(
    bootstrap_servers: str,
) -> None:
    """A rejoin under a member id the coordinator does not know is refused
    (UNKNOWN_MEMBER_ID); aiokafka retries with a fresh id. The refused round is one failed
    rebalance, the retry one rebalance; a clean first join counts neither."""
    spec = small_spec("failedjoin", topic={"partitions": 1})
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")

    def count(name: str) -> float | None:
        return registry.get_sample_value(name, {"group": "g", "member": "m0"})

    async def consume() -> tuple[float | None, float | None]:
        await cluster.ensure_topic(conn, spec.topic)
        consumer = InstrumentedConsumer(
            spec.topic.name, metrics=m, group_id=unique("group"), **conn.kwargs()
        )
        try:
            async with consumer, asyncio.timeout(30):
                while consumer.assignments < 1:
                    await consumer.getmany(timeout_ms=100)
                after_first_join = count("tuner_consumer_failed_rebalances_total")
                coordinator = consumer.consumer._coordinator
                coordinator.member_id = "a-member-id-the-coordinator-never-gave"
                coordinator.request_rejoin()
                while consumer.assignments < 2:
                    await consumer.getmany(timeout_ms=100)
                return after_first_join, count("tuner_consumer_failed_rebalances_total")
        finally:
            await cluster.delete_topic(conn, spec.topic.name)

    after_first_join, after_rejoin = asyncio.run(consume())
    assert after_first_join == 0
    assert after_rejoin == 1
    assert count("tuner_consumer_rebalances_total") == 1
