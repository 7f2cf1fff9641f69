"""The team's service as a trial's consumer group: its members' records measured as the
tuner's own members' are, their failures failing the trial with their output, and none of
their processes left after it."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from tests.helpers import Process, alive, cmdline, descendants, small_spec, trial, unique
from tuner.cli.render import render_result
from tuner.cluster.admin import Connection, delete_topic, ensure_topic
from tuner.cluster.prefill import prefill
from tuner.config import StudySpec
from tuner.consumer.service import group as service_group
from tuner.trial.run import TrialError

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).parent / "services"


def _spec(script: str, **sections: object) -> StudySpec:
    service = {"command": [sys.executable, str(SERVICES / script)], "topic": "orders"}
    consumer = {"members": 2, "service": service, **sections.pop("consumer", {})}  # type: ignore[dict-item]
    return small_spec("svc-group", consumer=consumer, **sections)


def test_a_service_is_the_trials_group_and_its_records_are_the_brokers_offsets(
    bootstrap_servers: str,
) -> None:
    """Two kafka-python members read the trial's backlog: the trial is capacity-bound, its
    throughput positive, what they consumed is what the group committed (the members hold
    their polls and report before they are stopped), the lag is the broker's, and no member
    process is left."""
    seen: set[Process] = set()

    async def watch() -> None:
        while True:
            seen.update(
                p for p in descendants(os.getpid()) if "billing_kafka_python" in cmdline(p[0])
            )
            await asyncio.sleep(0.2)

    spec = _spec(
        "billing_kafka_python.py",
        # Enough that the members, which go on reading after the window until they are held,
        # cannot reach the end: the lag left is the broker's to report.
        workload={"prefill_records": 600_000},
        consumer={"settings": {"max.poll.records": 100}},
    )
    result = trial(spec, bootstrap_servers, alongside=watch)
    assert len(seen) == 2, seen
    assert not alive(seen)
    assert not result.backlog_emptied
    assert result.throughput_records_per_s > 0
    offsets = result.offsets
    assert offsets.committed_total == offsets.consumed_total < offsets.end_offsets_total
    assert result.poll.records_per_poll_avg is not None
    assert result.poll.records_per_poll_avg <= 100
    assert result.poll.loop_blocked_ms_max is None  # the service's loop is its own: not timed
    # What the service's own code sets, its baseline: as it spells them, where it runs left out.
    assert result.service is not None
    assert result.service.client == "kafka-python"
    assert {"max_poll_records=50", "enable_auto_commit=False", "poll(max_records=100)"} <= set(
        result.service.passed
    )
    assert not [p for p in result.service.passed if p.startswith(("group_id", "bootstrap"))]
    assert not [p for p in result.service.passed if "deserializer" in p]  # an object, not a value
    assert f"service          {result.service.line()}\n" in render_result(result)
    # No member reads lag: the broker's (the backlog the members left) is the trial's.
    assert result.lag_from_broker
    assert 0 < result.lag_max <= offsets.end_offsets_total - offsets.committed_total


def test_a_service_that_creates_no_consumer_fails_the_trial_naming_its_command(
    bootstrap_servers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Kafka consumer within the bound: the trial fails saying so, with the service's
    last output line."""
    monkeypatch.setattr(service_group, "CREATE_TIMEOUT_S", 2.0)
    created = r"no Kafka consumer was created by .*no_consumer\.py"
    with pytest.raises(TrialError, match=created) as e:
        trial(_spec("no_consumer.py"), bootstrap_servers)
    assert "within 2 s" in str(e.value)
    assert "waiting for the database" in str(e.value)


def test_a_service_that_exits_mid_trial_fails_it_with_its_exit_code_and_last_line(
    bootstrap_servers: str,
) -> None:
    """A member that exits 1 while the trial runs fails it with the code and its stderr."""
    with pytest.raises(TrialError, match=r"crashes\.py exited with code 1 during the trial") as e:
        trial(_spec("crashes.py", workload={"prefill_records": 200_000}), bootstrap_servers)
    assert "KeyError 'currency' in order 4711" in str(e.value)


def _rebalances(group: service_group.ServiceGroup) -> dict[str, float]:
    """Each member's `tuner_consumer_rebalances_total`, as the trial's window reads it."""
    return {
        sample.labels["member"]: sample.value
        for family in group.families()
        for sample in family.samples
        if sample.name == "tuner_consumer_rebalances_total"
    }


@pytest.mark.parametrize(
    "script", ["billing_aiokafka_listener.py", "billing_kafka_python.py", "billing_confluent.py"]
)
def test_a_services_rebalances_are_counted_from_its_clients_own_callbacks(
    bootstrap_servers: str, script: str, tmp_path: Path
) -> None:
    """Another consumer joins the service's trial group and leaves: each member's client
    revokes and reassigns, and each member counts the rebalance (as the tuner's own members
    do), from the client's callbacks, its own listener still called (the audit file)."""
    audit = tmp_path / "audit"
    spec = _spec(script)
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)
    group_id = unique("svc-rebalance")
    assert spec.consumer.service is not None
    service = replace(spec.consumer.service, env={"BILLING_AUDIT": str(audit)})
    group_spec = service_group.ServiceGroupSpec(
        service=service, bootstrap_servers=bootstrap_servers, group_id=group_id,
        topic=spec.topic.name, members=2, settings={}, record_bytes=200,
        client="confluent-kafka" if "confluent" in script else "aiokafka",
    )  # fmt: skip

    def audited() -> bool:
        """The service's own listener saw both members' partitions taken back (it is
        called after the count)."""
        if script != "billing_aiokafka_listener.py":
            return True
        lines = audit.read_text().splitlines() if audit.exists() else []
        return sum(line.startswith("revoked") for line in lines) >= 2

    async def run() -> dict[str, float]:
        await ensure_topic(conn, spec.topic)
        await prefill(conn, spec.topic.name, spec.workload, records=20_000)
        async with service_group.ServiceGroup(group_spec, registry=CollectorRegistry()) as group:
            await group.wait_until_assigned()
            assert set(_rebalances(group).values()) == {0.0}  # the first join is none
            intruder = AIOKafkaConsumer(
                spec.topic.name, bootstrap_servers=bootstrap_servers, group_id=group_id
            )
            await intruder.start()
            async with asyncio.timeout(30):
                while not intruder.assignment():
                    await intruder.getmany(timeout_ms=200)
            await intruder.stop()
            async with asyncio.timeout(30):
                while min(_rebalances(group).values()) < 1 or not audited():  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            return _rebalances(group)

    try:
        counted = asyncio.run(run())
    finally:
        asyncio.run(delete_topic(conn, spec.topic.name))
    assert len(counted) == 2
    assert all(1 <= n <= 3 for n in counted.values()), counted  # the join, maybe the leave


def test_a_service_on_another_client_than_consumer_client_fails_the_trial_naming_both(
    bootstrap_servers: str,
) -> None:
    """A confluent-kafka service under `consumer.client: aiokafka` would be searched with
    aiokafka's settings and reported as aiokafka: the trial fails, saying which to set."""
    with pytest.raises(
        TrialError,
        match=r"created a confluent-kafka \S+ consumer, but "
        r"consumer\.client is aiokafka: set consumer\.client: confluent-kafka",
    ):
        trial(_spec("billing_confluent.py"), bootstrap_servers)
