"""Cluster admin on the real broker: what it refuses is said at once, with the broker's reason."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import topic_exists, unique
from tuner import cluster
from tuner.cluster import ClusterError, Connection
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
