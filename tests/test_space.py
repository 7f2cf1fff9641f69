"""The settings table and its rules: names, defaults, and the kwargs aiokafka gets."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from tuner import space


def test_table_defaults_match_aiokafka() -> None:
    """Every aiokafka default in the table is the default AIOKafkaConsumer really uses."""

    async def build() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")

    consumer = asyncio.run(build())
    fetcher_defaults = {
        "fetch_min_bytes": 1,
        "fetch_max_wait_ms": 500,
        "max_partition_fetch_bytes": 1048576,
        "fetch_max_bytes": 52428800,
    }
    for setting in space.SETTINGS.values():
        if setting.aiokafka_kwarg in fetcher_defaults:
            assert setting.aiokafka_default == fetcher_defaults[setting.aiokafka_kwarg]
    assert consumer._max_poll_records is None
    assert space.SETTINGS["max.poll.records"].aiokafka_default is None
    assert space.SETTINGS["session.timeout.ms"].aiokafka_default == consumer._session_timeout_ms


def test_kwargs_are_accepted_by_aiokafka() -> None:
    """The kwargs built from every setting construct a real AIOKafkaConsumer."""
    values: dict[str, object] = {
        "fetch.min.bytes": 1024,
        "fetch.max.wait.ms": 100,
        "max.partition.fetch.bytes": 65536,
        "fetch.max.bytes": 1048576,
        "max.poll.records": 200,
        "session.timeout.ms": 12000,
        "heartbeat.interval.ms": 3000,
        "max.poll.interval.ms": 60000,
        "enable.auto.commit": False,
        "auto.commit.interval.ms": 1000,
        "partition.assignment.strategy": "org.apache.kafka.clients.consumer.RangeAssignor",
    }
    assert space.validate_settings(values) == []
    kwargs = space.to_aiokafka_kwargs(values)
    assert kwargs["partition_assignment_strategy"] == (RangePartitionAssignor,)

    async def build() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="g", **kwargs)

    consumer = asyncio.run(build())
    assert consumer._max_poll_records == 200


def test_rules_on_effective_settings() -> None:
    """Rules see aiokafka's defaults for what is not given (session 10 s: heartbeat < 3333)."""
    assert space.validate_settings({"heartbeat.interval.ms": 3400}) == [
        (
            "heartbeat.interval.ms",
            "must be less than session.timeout.ms / 3 (10000 / 3 = 3333), got 3400",
        )
    ]
    assert space.validate_settings({"fetch.max.bytes": 1000}) == [
        ("fetch.max.bytes", "must be >= max.partition.fetch.bytes (1048576), got 1000")
    ]
    limits = space.BrokerLimits(group_min_session_timeout_ms=6000)
    assert space.validate_settings(
        {"session.timeout.ms": 3000, "heartbeat.interval.ms": 500}, limits=limits
    ) == [
        (
            "session.timeout.ms",
            "must be within the broker's group.min/max.session.timeout.ms [6000, 1800000], "
            "got 3000",
        )
    ]


def test_types_and_ranges() -> None:
    """Wrong types and values outside the Kafka range are named per property."""
    assert space.validate_settings({"max.poll.records": 0, "enable.auto.commit": "yes"}) == [
        ("max.poll.records", "must be in [1, 2147483647], got 0"),
        ("enable.auto.commit", "must be true or false, got 'yes'"),
    ]


def test_property_files_render_each_client_dialect() -> None:
    """Java and librdkafka files use their own names for the same settings."""
    values = {"max.poll.records": 300, "fetch.max.wait.ms": 200, "enable.auto.commit": False}
    java = space.to_java_properties(values)
    assert "max.poll.records=300\n" in java
    assert "enable.auto.commit=false\n" in java
    rdkafka = space.to_librdkafka_properties(values)
    assert "fetch.wait.max.ms=200\n" in rdkafka
    assert "# max.poll.records=300 has no librdkafka equivalent" in rdkafka
