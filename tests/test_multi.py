"""The embedded multi-broker cluster: a real controller and three real brokers, each a JVM."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.helpers import small_spec
from tuner.broker import EmbeddedCluster, live_broker_ids
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import ClusterSpec
from tuner.metrics.phases import Phase
from tuner.trial.measure import run_standalone

pytestmark = pytest.mark.integration


def _describe(bootstrap_servers: str, topic: str) -> tuple[list[dict[str, Any]], str]:
    """The topic's partitions (leader, replicas, isr) and its `min.insync.replicas`."""

    async def main() -> tuple[list[dict[str, Any]], str]:
        conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
        async with cluster.admin_client(conn) as admin:
            described = await admin.describe_topics([topic])
            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})]
            )
        entries = configs[0].resources[0][4]
        isr = next(value for name, value, *_ in entries if name == "min.insync.replicas")
        return list(described[0]["partitions"]), isr

    return asyncio.run(main())


def test_a_run_on_three_brokers_reads_from_every_leader(kafka_cluster: EmbeddedCluster) -> None:
    """A run on an RF 3 topic of 6 partitions: every partition has a replica on each broker,
    the leaders are spread on all three, and the group committed records on the partitions
    each broker leads (a consumer fetches from leaders only, so it fetched from all three).
    0.2 ms per record (15,000 records/s for the group) keeps the window inside the backlog,
    and 500 records per poll take each member to both its partitions within it."""
    bootstrap = kafka_cluster.bootstrap_servers
    assert live_broker_ids(bootstrap) == {1, 2, 3}
    spec = small_spec(
        "rf3",
        cluster={"bootstrap_servers": bootstrap},
        topic={"partitions": 6, "replication_factor": 3, "min_insync_replicas": 2},
        workload={"prefill_records": 100000},
        consumer={
            "members": 3,
            "processing": {"per_record_ms": 0.2},
            "settings": {"max.poll.records": 500},
        },
        trial={"warmup_s": 0.5, "measure_s": 3},
    )
    conn = Connection(bootstrap_servers=bootstrap, cluster=spec.cluster)
    committed: dict[str, dict[int, int]] = {}

    def before_the_groups_go(phase: Phase, _value: float | None) -> None:
        """At an attempt's end its group has left and is not yet deleted: read its offsets."""
        if phase is Phase.STOP:

            async def read() -> None:
                for group in await cluster.owned_groups(conn):
                    committed[group] = await cluster.committed_offsets(conn, group, spec.topic.name)

            with ThreadPoolExecutor(1) as pool:  # this thread's loop is the trial's
                pool.submit(asyncio.run, read()).result()

    result = run_standalone(spec, observer=before_the_groups_go)
    partitions, min_isr = _describe(bootstrap, spec.topic.name)
    assert min_isr == "2"
    assert len(partitions) == 6
    assert all(sorted(p["replicas"]) == [1, 2, 3] for p in partitions)
    leaders = {p["partition"]: p["leader"] for p in partitions}
    assert set(leaders.values()) == {1, 2, 3}
    read_from = {leaders[p] for p, offset in committed[result.group_id].items() if offset > 0}
    assert read_from == {1, 2, 3}
    assert result.records_consumed > 0
    assert result.errors == ()


def test_ports_are_consecutive_and_ids_follow_them(tmp_path: Path) -> None:
    """`port=P` puts broker 1 on P, 2 on P+1, 3 on P+2: `trial.faults` names them by id."""
    cluster_ = EmbeddedCluster(brokers=3, port=29000, data_dir=tmp_path)
    assert cluster_.ports == (29000, 29001, 29002)
    assert cluster_.port_of(2) == 29001
    assert cluster_.bootstrap_servers == "127.0.0.1:29000,127.0.0.1:29001,127.0.0.1:29002"
