"""Broker faults in a trial, on the real 3-broker cluster: a broker really stopped mid-window."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from tests.helpers import small_spec, trial
from tuner.broker import EmbeddedCluster, live_broker_ids
from tuner.broker.faults import partitions
from tuner.config import StudySpec
from tuner.trial.run import TrialError

pytestmark = pytest.mark.integration


def _fault_spec(name: str, **trial_section: Any) -> StudySpec:
    """An RF 3 topic of 6 partitions on the embedded 3-broker cluster, broker 1 stopped 1 s
    into a 5 s window."""
    return small_spec(
        name,
        cluster={"brokers": 3},
        topic={"partitions": 6, "replication_factor": 3, "min_insync_replicas": 2},
        workload={"prefill_records": 40000},
        consumer={"members": 2, "processing": {"per_record_ms": 0.1}},
        trial={"warmup_s": 0.5, "measure_s": 5, "faults": [{"stop_broker": 1, "at_s": 1}],
               **trial_section},
    )  # fmt: skip


def _all_back(bootstrap: str, topic: str) -> None:
    """Every broker listed again, every partition on its preferred leader, leaders on all 3."""
    assert live_broker_ids(bootstrap) == {1, 2, 3}
    parts = asyncio.run(partitions(bootstrap, topic))
    assert all(p["leader"] == p["replicas"][0] for p in parts)
    assert {p["leader"] for p in parts} == {1, 2, 3}


def test_a_stopped_broker_fails_the_trial_naming_it(kafka_cluster: EmbeddedCluster) -> None:
    """Broker 1 stopped mid-window fails the trial; the reason names the broker and the
    leaders that moved off it; the broker is back after the trial, leading its partitions."""
    spec = _fault_spec("fault-failed")
    with pytest.raises(TrialError) as failed:
        trial(spec, kafka_cluster.bootstrap_servers)
    reason = str(failed.value)
    assert reason.startswith("broker 1 stopped (SIGTERM) at 1 s of the window; leader changes: p")
    assert "1→2" in reason or "1→3" in reason
    assert "failover" in reason
    _all_back(kafka_cluster.bootstrap_servers, spec.topic.name)


def test_measured_through_a_fault_gives_the_failover_time(kafka_cluster: EmbeddedCluster) -> None:
    """With `measure_through_faults`, the trial is measured: its result lists each partition
    broker 1 led moving to broker 2 or 3, the failover time, and the group consumed every
    record of the topic through it."""
    spec = _fault_spec("fault-measured", measure_through_faults=True)
    result = trial(spec, kafka_cluster.bootstrap_servers)
    (report,) = result.faults
    assert report.broker == 1
    assert report.leader_changes
    assert all(c.before == 1 and c.after in {2, 3} for c in report.leader_changes)
    assert report.failover_s is not None
    assert 0 < report.failover_s < 10
    led_by_1 = {c.partition for c in report.leader_changes}
    parts = asyncio.run(partitions(kafka_cluster.bootstrap_servers, spec.topic.name))
    assert led_by_1 == {p["partition"] for p in parts if p["replicas"][0] == 1}
    assert result.records_consumed > 0
    assert result.offsets.consumed_total == result.offsets.end_offsets_total == 40000
    _all_back(kafka_cluster.bootstrap_servers, spec.topic.name)


def test_faults_on_a_cluster_the_tuner_does_not_run_fail_the_trial(bootstrap_servers: str) -> None:
    """A fault aimed at a cluster the tuner cannot stop brokers of fails before anything runs."""
    spec = _fault_spec("fault-foreign")
    spec = replace(spec, topic=replace(spec.topic, replication_factor=1, min_insync_replicas=1))
    with pytest.raises(TrialError, match="the tuner can stop only brokers of a cluster it runs"):
        trial(spec, bootstrap_servers)
