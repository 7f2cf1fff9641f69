"""confluent-kafka members on the real broker: the same families, counts that agree."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import re
import signal
import time

import pytest
from confluent_kafka import ConsumerGroupType
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._group import ConsumerGroupDescription
from confluent_kafka.admin._resource import ResourceType
from prometheus_client import CollectorRegistry

from tests.helpers import assert_stuck, small_spec, trial, unique
from tuner.broker import free_port
from tuner.cluster import admin as cluster
from tuner.cluster import prefill
from tuner.cluster.admin import Connection
from tuner.config import SecuritySpec, StudySpec
from tuner.consumer import ConsumerGroup, GroupError, MemberSpec, kip848
from tuner.consumer.confluent import RdConsumer
from tuner.consumer.rdkafka_stats import StatsReader
from tuner.metrics import ConsumerMetrics
from tuner.trial.run import TrialResult, _member_specs, run_trial


def trial_members(spec: StudySpec, bootstrap_servers: str, group_id: str) -> list[MemberSpec]:
    """The members a trial of `spec` would run, on its topic, created and filled now."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)

    async def topic() -> None:
        await cluster.ensure_topic(conn, spec.topic)
        await prefill.fill_to(conn, spec.topic.name, spec.workload, records=2000)

    asyncio.run(topic())
    return _member_specs(spec, bootstrap_servers, spec.consumer.settings, group_id)


def _value(group: ConsumerGroup, sample: str, member: str) -> float:
    """The latest value of `tuner_consumer_<sample>` the member reported (0 if none)."""
    for family in group.families():
        for s in family.samples:
            if s.name == f"tuner_consumer_{sample}" and s.labels.get("member") == member:
                return s.value
    return 0.0


pytestmark = pytest.mark.integration


def test_both_clients_serve_the_same_families_and_agree_with_the_broker(
    bootstrap_servers: str,
) -> None:
    """An aiokafka and a confluent-kafka trial serve the same `tuner_consumer_*` families
    mid-run, and each consumes every record once, as the broker's committed offsets say."""
    seen = {}
    fetched: dict[str, float] = {}
    for client in ("aiokafka", "confluent-kafka"):
        spec = small_spec(
            f"client-{client}", consumer={"client": client}, trial={"warmup_s": 1, "measure_s": 3}
        )
        registry = CollectorRegistry()
        families: set[str] = set()

        async def scrape(
            registry: CollectorRegistry = registry, into: set[str] = families, client: str = client
        ) -> None:
            while True:
                into.update(
                    f.name for f in registry.collect()
                    if f.name.startswith("tuner_consumer_") and f.samples
                )  # fmt: skip
                fetched[client] = max(fetched.get(client, 0.0), _fetched_records(registry))
                await asyncio.sleep(0.2)

        seen[client] = (trial(spec, bootstrap_servers, registry, alongside=scrape), families)
    for client, (result, _) in seen.items():
        assert result.errors == (), client
        assert result.offsets.end_offsets_total == 20000, client
        assert result.offsets.consumed_total == 20000, client
        assert result.offsets.committed_total == 20000, client
        assert fetched[client] == 20000, client  # each record fetched once, no more
    assert seen["confluent-kafka"][1] == seen["aiokafka"][1]
    assert "tuner_consumer_fetch_requests" in seen["confluent-kafka"][1]
    assert seen["confluent-kafka"][0].settings["session.timeout.ms"] == 45000  # librdkafka's


def _fetched_records(registry: CollectorRegistry) -> float:
    return sum(
        s.value for f in registry.collect() for s in f.samples
        if s.name == "tuner_consumer_fetch_topic_records_sum"
    )  # fmt: skip


def _describe(bootstrap_servers: str, group_id: str) -> ConsumerGroupDescription:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    description: ConsumerGroupDescription = admin.describe_consumer_groups([group_id])[
        group_id
    ].result(timeout=15)
    return description


def _kip848_spec(name: str) -> StudySpec:
    return small_spec(
        name,
        consumer={
            "client": "confluent-kafka",
            "group_protocol": "consumer",
            "settings": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        },
    )


def test_a_kip848_trial_runs_a_consumer_protocol_group_with_its_own_session(
    bootstrap_servers: str,
) -> None:
    """A trial with group_protocol consumer: the group the broker describes mid-run is a
    consumer-protocol group with the session the trial set as a group config, and every
    record is consumed once, as its committed offsets say."""
    spec = _kip848_spec("kip848")
    group_id = unique("group")
    seen: list[tuple[ConsumerGroupDescription, dict[str, str]]] = []

    async def main() -> TrialResult:
        async def describe() -> None:
            while True:
                await asyncio.sleep(1)
                with contextlib.suppress(Exception):  # not formed yet: next second
                    description = await asyncio.to_thread(_describe, bootstrap_servers, group_id)
                    if len(description.members) == 2:
                        configs = await asyncio.to_thread(
                            _group_configs, bootstrap_servers, group_id
                        )
                        seen.append((description, configs))

        run = run_trial(
            spec, bootstrap_servers=bootstrap_servers, settings=spec.consumer.settings,
            group_id=group_id, registry=CollectorRegistry(),
        )  # fmt: skip
        async with asyncio.TaskGroup() as tasks:
            side = tasks.create_task(describe())
            result = await run
            side.cancel()
        return result

    result = asyncio.run(main())
    assert seen
    description, configs = seen[-1]
    assert description.type == ConsumerGroupType.CONSUMER
    assert configs["consumer.session.timeout.ms"] == "6000"
    assert configs["consumer.heartbeat.interval.ms"] == "1000"
    assert result.errors == ()
    assert result.offsets.consumed_total == result.offsets.committed_total == 20000
    assert result.settings["session.timeout.ms"] == 6000
    assert result.settings["partition.assignment.strategy"] is None


def _group_configs(bootstrap_servers: str, group_id: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    resource = ConfigResource(ResourceType.GROUP, group_id)
    entries = admin.describe_configs([resource])[resource].result(timeout=15)
    return {name: str(entry.value) for name, entry in entries.items()}


def test_a_member_killed_under_kip848_is_named_and_its_partitions_move(
    bootstrap_servers: str,
) -> None:
    """SIGKILL to one KIP-848 member: the group names it, and after the 6 s session the
    survivor counts a rebalance and holds all four partitions."""
    spec = _kip848_spec("kip848kill")
    group_id = unique("group")
    members = trial_members(spec, bootstrap_servers, group_id)
    registry = CollectorRegistry()

    async def main() -> tuple[str, float, float]:
        await kip848.prepare_group(spec, bootstrap_servers, spec.consumer.settings, group_id)
        async with ConsumerGroup(members, registry=registry) as group:
            await group.wait_until_assigned(timeout_s=60)
            (victim,) = [p for p in multiprocessing.active_children() if p.name == "m1"]
            assert victim.pid is not None
            os.kill(victim.pid, signal.SIGKILL)
            await asyncio.sleep(0.5)
            with pytest.raises(GroupError) as lost:
                group.check_not_killed()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _value(group, "assigned_partitions", "m0") < 4:  # noqa: ASYNC110 - the value arrives in snapshots, no event
                await asyncio.sleep(0.5)
            rebalances = _value(group, "rebalances_total", "m0")
            return str(lost.value), rebalances, _value(group, "assigned_partitions", "m0")

    named, rebalances, assigned = asyncio.run(main())
    assert "member m1" in named
    assert "killed by SIGKILL" in named
    assert assigned == 4
    assert rebalances >= 1


def _raw_librdkafka_lines(err: str) -> list[str]:
    """Lines librdkafka wrote to stderr itself (`%<level>|<time>|<facility>|…`)."""
    return [line for line in err.splitlines() if re.match(r"%\d\|", line)]


def test_librdkafkas_log_lines_go_through_the_members_logger(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A member whose broker refuses connections: librdkafka's connect errors reach the
    member's logger as ERROR records (so they still show), none is written raw to stderr."""
    metrics = ConsumerMetrics(CollectorRegistry(), group="g", member="m0")
    conf = {"bootstrap.servers": f"127.0.0.1:{free_port()}", "group.id": unique("group")}
    with caplog.at_level(logging.ERROR, logger="tuner.consumer.confluent"):
        consumer = RdConsumer(unique("logs"), metrics=metrics, conf=conf, batch=10)
        consumer.start()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            consumer.poll(0.2)
        consumer.consumer.close()
    refused = [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert refused
    assert all(r.levelno == logging.ERROR for r in refused)
    assert _raw_librdkafka_lines(capfd.readouterr().err) == []


def test_a_partition_assigned_at_its_committed_end_reports_no_lag() -> None:
    """A KIP-848 member handed partitions another member had read to their end has no stored
    offset on them yet (librdkafka reports `consumer_lag_stored` -1): its lag there is the
    committed offset's, 0, so the warm-up sees a member with nothing to consume instead of one
    it waits for (the group was refused after 11 s with `m0 0, m1 40` batches)."""
    registry = CollectorRegistry()
    reader = StatsReader(ConsumerMetrics(registry, group="g", member="m0"))
    reader.assigned = {("t", 0), ("t", 1), ("t", 2)}
    partitions = {
        "0": {"consumer_lag_stored": 7, "consumer_lag": 9},
        "1": {"consumer_lag_stored": -1, "consumer_lag": 0},
        "2": {"consumer_lag_stored": -1, "consumer_lag": -1},
        "3": {"consumer_lag_stored": 4, "consumer_lag": 4},
        "-1": {"consumer_lag_stored": 5},
    }
    reader.read({"topics": {"t": {"partitions": partitions}}})
    lags = {
        s.labels["partition"]: s.value
        for family in registry.collect() if family.name == "tuner_consumer_lag_records"
        for s in family.samples
    }  # fmt: skip
    assert lags == {"0": 7, "1": 0}


def test_the_kip848_admin_clients_log_lines_go_through_the_tuners_logger(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Setting group configs on a broker that refuses connections fails with the broker
    named, and librdkafka's connect errors reach `tuner.consumer.kip848`'s logger, none raw."""
    monkeypatch.setattr(kip848, "ADMIN_TIMEOUT_S", 1.5)
    address = f"127.0.0.1:{free_port()}"
    configs = {"consumer.session.timeout.ms": "6000"}
    with (
        caplog.at_level(logging.ERROR, logger="tuner.consumer.kip848"),
        pytest.raises(kip848.GroupConfigError, match="the broker refused"),
    ):
        asyncio.run(kip848.set_group_configs(address, SecuritySpec(), unique("g"), configs))
    assert [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert _raw_librdkafka_lines(capfd.readouterr().err) == []


def test_a_confluent_member_stuck_in_one_batch_is_measured_as_stuck(bootstrap_servers: str) -> None:
    """A confluent-kafka member inside one batch of 5,000 records at 10 ms (50 s) all window:
    its open gap is the longest one, at least the window, it was busy, and the lag comes from
    the broker's offsets (librdkafka's statistics are served from consume(), not called)."""
    spec = small_spec(
        "rdstuck",
        consumer={
            "client": "confluent-kafka",
            "processing": {"per_record_ms": 10},
            "settings": {"max.poll.records": 5000},
        },
        trial={"warmup_s": 1, "measure_s": 4},
    )
    result = trial(spec, bootstrap_servers)
    assert_stuck(result)
