"""The cluster's shape in the config: broker count, replicas, min.insync.replicas, faults."""

from __future__ import annotations

import pytest

from tuner.config import ConfigError, FaultSpec, parse_config
from tuner.config.topology import KAFKA_VERSION


def _problems(data: object) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    return err.value.problems


def test_a_three_broker_study_with_a_fault_loads() -> None:
    """`cluster.brokers: 3`, an RF 3 topic with min.insync.replicas 2 and a fault on broker 1
    land in the spec as written."""
    spec = parse_config({
        "cluster": {"brokers": 3},
        "topic": {"replication_factor": 3, "min_insync_replicas": 2},
        "trial": {"faults": [{"stop_broker": 1, "at_s": 5}], "measure_through_faults": True},
    })  # fmt: skip
    assert spec.cluster.brokers == 3
    assert spec.topic.min_insync_replicas == 2
    assert spec.trial.faults == (FaultSpec(stop_broker=1, at_s=5.0),)
    assert spec.trial.measure_through_faults


def test_shape_problems_are_named_by_path_all_at_once() -> None:
    """Too many replicas for the brokers, min.insync.replicas above the replicas, a fault on a
    broker that does not exist or a late one: each is reported with its path."""
    found = _problems({
        "cluster": {"brokers": 3},
        "topic": {"replication_factor": 4, "min_insync_replicas": 5},
        "trial": {"measure_s": 10, "faults": [{"stop_broker": 4, "at_s": 12}]},
    })  # fmt: skip
    assert (
        "topic.replication_factor: must be at most cluster.brokers (3) on the embedded cluster "
        "(each broker holds one replica), got 4"
    ) in found
    assert (
        "topic.min_insync_replicas: must be in [1, topic.replication_factor (4)], got 5"
    ) in found
    assert "trial.faults[0].stop_broker: must be a broker id in [1, 3], got 4" in found
    assert any(
        p.startswith("trial.faults[0].at_s: must be in [0, trial.measure_s (10))") for p in found
    )


def test_a_misspelt_fault_key_is_named_with_its_index() -> None:
    """A fault's keys are checked like any section's, the list index in the path."""
    found = _problems({"cluster": {"brokers": 3}, "trial": {"faults": [{"stop_brker": 1}]}})
    assert found == ("trial.faults[0].stop_brker: unknown key; did you mean 'stop_broker'?",)


def test_faults_and_brokers_need_the_embedded_cluster() -> None:
    """A fault on one broker, or `cluster.brokers` on a cluster the tuner does not start, is
    refused: the tuner can stop only brokers it runs."""
    assert _problems({"trial": {"faults": [{"stop_broker": 1, "at_s": 1}]}}) == (
        "trial.faults: broker faults need the embedded multi-broker cluster "
        "(cluster.bootstrap_servers: embedded, cluster.brokers >= 2), got 'embedded' with "
        "1 broker(s)",
    )
    found = _problems({"cluster": {"bootstrap_servers": "kafka:9092", "brokers": 3}})
    assert found[0].startswith("cluster.brokers: only the embedded cluster is started")


def test_a_fault_must_leave_a_replica_and_a_broker() -> None:
    """Stopping brokers 1 and 2 of two, or any broker under RF 1, would leave partitions with
    no replica to fail over to."""
    found = _problems({
        "cluster": {"brokers": 2},
        "topic": {"replication_factor": 1},
        "trial": {"faults": [{"stop_broker": 1, "at_s": 1}, {"stop_broker": 2, "at_s": 2}]},
    })  # fmt: skip
    assert "trial.faults: at least one of the 2 brokers must stay up, got faults on [1, 2]" in found
    assert any(
        p.startswith("topic.replication_factor: a fault needs a replica left") for p in found
    )


def test_a_measured_kill_needs_the_window_to_outlast_the_fencing() -> None:
    """A SIGKILL measured through, 5 s into a 10 s window, is refused naming the latest second
    it may fire; the same kill unmeasured, or a SIGTERM, loads."""
    trial = {"measure_s": 10, "measure_through_faults": True,
             "faults": [{"stop_broker": 1, "at_s": 5, "kill": True}]}  # fmt: skip
    base = {"cluster": {"brokers": 3}, "topic": {"replication_factor": 3}}
    (problem,) = _problems({**base, "trial": trial})
    assert problem.startswith("trial.faults[0].at_s: a SIGKILL measured through needs 10 s")
    assert "at most trial.measure_s - 10 = 0, got 5" in problem
    parse_config({**base, "trial": {**trial, "measure_through_faults": False}})
    parse_config({**base, "trial": {**trial, "faults": [{"stop_broker": 1, "at_s": 5}]}})
    parse_config({**base, "trial": {**trial, "measure_s": 15}})


def test_kafka_version_must_be_a_kafka_4_release_of_the_embedded_broker() -> None:
    """`cluster.kafka_version` picks the embedded broker's release: a 4.x `X.Y.Z` loads, a
    word, a 3.x release and a version for a cluster the tuner does not start are refused with
    the path and what is allowed."""
    assert parse_config({"cluster": {"kafka_version": "4.2.0"}}).cluster.kafka_version == "4.2.0"
    assert parse_config({}).cluster.kafka_version is None
    assert _problems({"cluster": {"kafka_version": "latest"}}) == (
        "cluster.kafka_version: must be an Apache Kafka release such as "
        f"{KAFKA_VERSION!r}, got 'latest'",
    )
    (old,) = _problems({"cluster": {"kafka_version": "3.9.1"}})
    assert old.startswith("cluster.kafka_version: must be 4.0.0 or newer")
    assert "got '3.9.1'; tested: " in old
    (external,) = _problems(
        {"cluster": {"bootstrap_servers": "kafka:9092", "kafka_version": "4.2.0"}}
    )
    assert external.startswith("cluster.kafka_version: picks the release of the embedded broker")
