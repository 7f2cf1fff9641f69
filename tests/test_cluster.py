"""Cluster admin on the real broker: what it refuses is said at once, with the broker's reason."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import NonEmptyGroup
from confluent_kafka import Consumer

from tests.helpers import small_spec, topic_exists, unique
from tuner.broker import EmbeddedCluster, free_port
from tuner.cli import main
from tuner.cluster import admin as cluster
from tuner.cluster.admin import ClusterError, Connection, UnreachableError
from tuner.config import ClusterSpec, TopicSpec


@pytest.mark.integration
def test_a_topic_the_broker_refuses_fails_at_once_with_its_error(bootstrap_servers: str) -> None:
    """Three replicas on a one-broker cluster: the broker's INVALID_REPLICATION_FACTOR comes
    back as a ClusterError within seconds, not a 30 s wait for leaders that never come."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    topic = TopicSpec(name=unique("refused"), partitions=2, replication_factor=3)
    started = time.monotonic()
    with pytest.raises(ClusterError) as err:
        asyncio.run(cluster.ensure_topic(conn, topic))
    assert time.monotonic() - started < 5
    assert f"the cluster refused to create topic {topic.name!r} (InvalidReplicationFactorError" in (
        str(err.value)
    )
    assert not topic_exists(bootstrap_servers, topic.name)


@pytest.mark.integration
def test_preflight_checks_replicas_against_the_brokers(bootstrap_servers: str) -> None:
    """Before anything is created: one replica fits the one broker, two do not (the field and
    the broker count named)."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    asyncio.run(cluster.preflight(conn, TopicSpec(name=unique("fits"), replication_factor=1)))
    with pytest.raises(ClusterError, match=r"topic.replication_factor: 2 replicas need as many "
                       r"brokers, and the cluster at .* has 1"):  # fmt: skip
        asyncio.run(cluster.preflight(conn, TopicSpec(name=unique("wide"), replication_factor=2)))


@pytest.mark.integration
def test_an_owned_topic_is_deleted_after_its_block(bootstrap_servers: str) -> None:
    """The topic `owned_topic` names is gone from the broker once the block ends; deleting a
    topic that is already gone is not an error."""
    spec = small_spec("owned")
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)
    with cluster.owned_topic(spec, conn, "x") as owned:
        asyncio.run(cluster.ensure_topic(conn, owned.topic))
        assert topic_exists(bootstrap_servers, owned.topic.name)
    assert not topic_exists(bootstrap_servers, owned.topic.name)
    asyncio.run(cluster.delete_topic(conn, owned.topic.name))


def test_a_failed_delete_of_an_owned_topic_is_logged_with_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the cluster cannot delete the topic (here: nothing listens any more) the block
    still ends cleanly, and a warning names the topic and the error instead of silence."""
    spec = small_spec("gone")
    conn = Connection(bootstrap_servers=f"127.0.0.1:{free_port()}", cluster=spec.cluster)
    with (
        caplog.at_level(logging.WARNING, logger="tuner.cluster.admin"),
        cluster.owned_topic(spec, conn, "x") as owned,
    ):
        pass
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "tuner.cluster.admin"]
    assert f"could not delete topic {owned.topic.name!r}, delete it by hand: " in warning
    assert "KafkaConnectionError" in warning


def test_preflight_names_an_address_where_nothing_listens() -> None:
    """Nothing listening: preflight says it cannot connect, naming the address, within seconds."""
    address = f"127.0.0.1:{free_port()}"
    conn = Connection(bootstrap_servers=address, cluster=ClusterSpec())
    started = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        asyncio.run(cluster.preflight(conn, TopicSpec(name=unique("none"))))
    assert time.monotonic() - started < cluster.REACH_TIMEOUT_S
    assert str(err.value) == (
        f"cannot connect to the cluster at {address}: check cluster.bootstrap_servers "
        "(and that the cluster is up)"
    )


def test_preflight_gives_up_on_a_listener_that_never_answers() -> None:
    """A port that accepts connections but never answers: preflight stops after
    `REACH_TIMEOUT_S` with one clear error instead of each client's own request timeout."""
    with socket.create_server(("127.0.0.1", 0)) as mute:
        address = f"127.0.0.1:{mute.getsockname()[1]}"
        conn = Connection(bootstrap_servers=address, cluster=ClusterSpec())
        started = time.monotonic()
        with pytest.raises(UnreachableError) as err:
            asyncio.run(cluster.preflight(conn, TopicSpec(name=unique("mute"))))
    assert time.monotonic() - started < cluster.REACH_TIMEOUT_S + 5
    assert str(err.value) == (
        f"no answer from the cluster at {address} within {cluster.REACH_TIMEOUT_S:.0f} s: "
        "check cluster.bootstrap_servers (and that the cluster is up)"
    )


@pytest.mark.integration
def test_group_reads_wait_out_a_killed_coordinator(kafka_cluster: EmbeddedCluster) -> None:
    """With the group's coordinator SIGKILLed (the controller fences it only once its broker
    session expires), the committed offsets and the group's state come from the broker that
    takes over: what was committed, not an error or nothing."""
    conn = Connection(bootstrap_servers=kafka_cluster.bootstrap_servers, cluster=ClusterSpec())
    topic = TopicSpec(name=unique("coord"), partitions=3, replication_factor=3)
    group = unique("group")
    committed = {0: 10, 1: 11, 2: 12}

    async def commit() -> int:
        await cluster.ensure_topic(conn, topic)
        consumer = AIOKafkaConsumer(**conn.kwargs(), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            offsets = {TopicPartition(topic.name, p): off for p, off in committed.items()}
            consumer.assign(list(offsets))
            await consumer.commit(offsets)
        finally:
            await consumer.stop()
        async with cluster.admin_client(conn) as admin:
            return int(await admin.find_coordinator(group))

    coordinator = asyncio.run(commit())
    kafka_cluster.stop_broker(coordinator, kill=True)
    try:
        started = time.monotonic()
        assert asyncio.run(cluster.committed_offsets(conn, group, topic.name)) == committed
        waited_s = time.monotonic() - started
        assert asyncio.run(cluster.describe_group(conn, group)).state == "Empty"
    finally:
        kafka_cluster.start_broker(coordinator)
    assert waited_s > 1.0, "the killed coordinator was never asked: nothing was waited out"


@pytest.mark.integration
def test_a_run_leaves_none_of_its_groups(
    bootstrap_servers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner run` on a backlog too small for its window runs again on fresh groups
    (`<group>.r<n>`); when it ends, none of its groups is left on the cluster."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    config = tmp_path / "c.yaml"
    config.write_text(
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {unique('groups')}, partitions: 2}}\n"
        "workload: {message_bytes: 100, prefill_records: 1000}\n"
        "consumer: {members: 1}\n"
        "trial: {warmup_s: 0.5, measure_s: 1}\n"
        "metrics: {port: 0, producer_port: 0}\n"
    )
    before = set(asyncio.run(cluster.owned_groups(conn)))
    code = main(["run", str(config), "--quiet", "--json", str(tmp_path / "r.json")])
    assert code in {0, 1}  # 1: it still measured the supply on the grown backlog
    capsys.readouterr()
    group = json.loads((tmp_path / "r.json").read_text())["group_id"]
    base = group.split(".r")[0]
    assert group != base, "the run never ran again: no retry group was made"
    left = set(asyncio.run(cluster.owned_groups(conn)))
    assert {g for g in left if g.startswith(base)} == set()
    assert left <= before


@pytest.mark.integration
def test_groups_are_deleted_once_empty_kip848_ones_too(bootstrap_servers: str) -> None:
    """A KIP-848 (`group.protocol=consumer`) group is deleted after its member closed; a
    classic group whose member is still in it is asked again until the member has left (the
    broker answers NON_EMPTY_GROUP until then); a group outside the prefix is refused."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    topic, kip848, classic = unique("del"), unique("kip848"), unique("leaving")
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=1, create=True)))
    member = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": kip848,
                       "group.protocol": "consumer"})  # fmt: skip
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.2)
    assert member.assignment(), "the KIP-848 member never got its partition"
    member.close()
    assert asyncio.run(cluster.delete_groups(conn, [kip848])) == [kip848]
    assert kip848 not in asyncio.run(cluster.owned_groups(conn))

    async def leave_later() -> tuple[list[str], float]:
        consumer = AIOKafkaConsumer(topic, **conn.kwargs(), group_id=classic)
        await consumer.start()
        try:
            async with asyncio.timeout(30):
                while not consumer.assignment():
                    await consumer.getmany(timeout_ms=100)
            with pytest.raises(NonEmptyGroup):
                await cluster.delete_groups(conn, [classic], wait_s=0.5)

            async def leave() -> None:
                await asyncio.sleep(1.0)
                await consumer.stop()

            started = time.monotonic()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(leave())
                deleted = await cluster.delete_groups(conn, [classic])
            return deleted, time.monotonic() - started
        finally:
            await consumer.stop()  # a second stop is a no-op

    deleted, waited_s = asyncio.run(leave_later())
    assert deleted == [classic]
    assert waited_s > 0.5, "deleted while its member was still in it"
    with pytest.raises(cluster.ForeignGroupError, match="only deletes groups starting with"):
        asyncio.run(cluster.delete_groups(conn, ["other.group"]))
