"""Broker faults in a trial, on the real 3-broker cluster: a broker really stopped mid-window."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import CoordinatorNotAvailableError

from tests.helpers import small_spec, trial, unique
from tuner.broker import EmbeddedCluster, live_broker_ids
from tuner.broker.faults import FAILOVER_TIMEOUT_S, partitions
from tuner.broker.properties import BROKER_HEARTBEAT_INTERVAL_MS, BROKER_SESSION_TIMEOUT_MS
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import ClusterSpec, StudySpec
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


FENCED_AFTER_S = (BROKER_SESSION_TIMEOUT_MS - BROKER_HEARTBEAT_INTERVAL_MS) / 1000
"""The soonest the controller fences a killed broker: its last heartbeat can be this much
younger than its session."""


def _coordinator(bootstrap: str) -> int:
    """The broker leading `__consumer_offsets` (one partition): every group's coordinator."""
    conn = Connection(bootstrap_servers=bootstrap, cluster=ClusterSpec())

    async def find() -> int:
        async with cluster.admin_client(conn) as admin:
            for _ in range(60):  # the first lookup on a new cluster creates the topic
                with contextlib.suppress(CoordinatorNotAvailableError):
                    return int(await admin.find_coordinator(unique("probe")))
                await asyncio.sleep(0.5)
        pytest.fail("no group coordinator within 30 s")

    return asyncio.run(find())


def _jvms(cluster_: EmbeddedCluster) -> set[int]:
    """The pids of the cluster's running JVMs, found by their command line, not by what the
    cluster object remembers (a zombie has none, so it does not count)."""
    marker = str(cluster_.data_dir).encode()
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in argv and marker in argv:
            found.add(int(cmdline.parent.name))
    return found


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
    assert 0 < report.failover_s < FENCED_AFTER_S  # a controlled shutdown moves leaders at once
    led_by_1 = {c.partition for c in report.leader_changes}
    parts = asyncio.run(partitions(kafka_cluster.bootstrap_servers, spec.topic.name))
    assert led_by_1 == {p["partition"] for p in parts if p["replicas"][0] == 1}
    assert result.records_consumed > 0
    offsets = result.offsets
    assert offsets.committed_total == offsets.consumed_total == offsets.end_offsets_total == 40000
    _all_back(kafka_cluster.bootstrap_servers, spec.topic.name)


def test_a_killed_broker_fails_the_trial_naming_it_and_the_kill(
    kafka_cluster: EmbeddedCluster,
) -> None:
    """The broker of the group's coordinator SIGKILLed mid-window fails the trial, the reason
    naming the broker and SIGKILL; the killed JVM is gone, a new one runs in its place (no
    JVM left behind), and it leads its partitions again."""
    bootstrap = kafka_cluster.bootstrap_servers
    victim = _coordinator(bootstrap)
    before, killed = _jvms(kafka_cluster), kafka_cluster.pid_of(victim)
    assert killed in before
    assert len(before) == 4  # the controller and three brokers
    spec = _fault_spec("kill-failed", faults=[{"stop_broker": victim, "at_s": 1, "kill": True}])
    with pytest.raises(TrialError) as failed:
        trial(spec, bootstrap)
    assert str(failed.value).startswith(
        f"broker {victim} stopped (SIGKILL) at 1 s of the window; leader changes: p"
    )
    restarted = kafka_cluster.pid_of(victim)
    assert restarted is not None
    assert restarted != killed
    assert _jvms(kafka_cluster) == (before - {killed}) | {restarted}
    _all_back(bootstrap, spec.topic.name)


def test_measured_through_a_kill_the_failover_waits_for_the_broker_session(
    kafka_cluster: EmbeddedCluster,
) -> None:
    """The coordinator's broker SIGKILLed, measured through: its leaders move only once the
    controller fences it (`broker.session.timeout.ms`, not a controlled shutdown), within a
    12 s window; the members leave cleanly, and the offsets they committed, read after the
    failover, are what the group consumed."""
    bootstrap = kafka_cluster.bootstrap_servers
    victim = _coordinator(bootstrap)
    spec = _fault_spec(
        "kill-measured",
        measure_s=12,
        measure_through_faults=True,
        faults=[{"stop_broker": victim, "at_s": 1, "kill": True}],
    )
    result = trial(spec, bootstrap)
    (report,) = result.faults
    assert (report.broker, report.kill) == (victim, True)
    assert report.leader_changes
    assert all(c.before == victim and c.after not in {victim, -1} for c in report.leader_changes)
    assert report.failover_s is not None
    assert FENCED_AFTER_S <= report.failover_s < FAILOVER_TIMEOUT_S
    assert result.rebalances == 0
    assert result.errors == ()
    offsets = result.offsets
    assert offsets.committed_total == offsets.consumed_total > 0
    assert offsets.end_offsets_total == 40000
    _all_back(bootstrap, spec.topic.name)


def test_faults_on_a_cluster_the_tuner_does_not_run_fail_the_trial(bootstrap_servers: str) -> None:
    """A fault aimed at a cluster the tuner cannot stop brokers of fails before anything runs."""
    spec = _fault_spec("fault-foreign")
    spec = replace(spec, topic=replace(spec.topic, replication_factor=1, min_insync_replicas=1))
    with pytest.raises(TrialError, match="the tuner can stop only brokers of a cluster it runs"):
        trial(spec, bootstrap_servers)
