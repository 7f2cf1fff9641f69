"""Cluster admin on the real broker: what it refuses is said at once, with the broker's reason."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.helpers import small_spec, topic_exists, unique
from tuner.broker import EmbeddedCluster, free_port
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
