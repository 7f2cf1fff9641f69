"""The confluent-kafka client's settings: what each client refuses, and librdkafka's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import small_spec
from tuner.config import ConfigError
from tuner.librdkafka import batch_records, settings_config
from tuner.search import space
from tuner.settings import SettingValue


def _problems(**consumer: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        small_spec("refused", consumer=consumer)
    return list(caught.value.problems)


def test_librdkafka_settings_are_refused_for_aiokafka() -> None:
    """queued.min.messages with the aiokafka client is a problem naming its path."""
    problems = _problems(settings={"queued.min.messages": 1000})
    assert list(problems) == [
        "consumer.settings.queued.min.messages: is a librdkafka setting: only with "
        "consumer.client: confluent-kafka"
    ]


def test_what_librdkafka_cannot_run_is_refused_for_confluent_kafka() -> None:
    """The eager sticky assignor, a fetch.max.bytes under message.max.bytes, a queue bound out
    of range and in-loop task isolation are each refused, by path."""
    problems = _problems(
        client="confluent-kafka",
        isolation="task",
        settings={
            "partition.assignment.strategy": "sticky",
            "fetch.max.bytes": 999_999,
            "max.partition.fetch.bytes": 65536,
            "queued.max.messages.kbytes": 0,
        },
    )
    paths = sorted(p.partition(": ")[0] for p in problems)
    assert paths == [
        "consumer.isolation",
        "consumer.settings.fetch.max.bytes",
        "consumer.settings.partition.assignment.strategy",
        "consumer.settings.queued.max.messages.kbytes",
    ]


def test_settings_run_under_librdkafka_names() -> None:
    """Java names become librdkafka's; max.poll.records is the batch passed to consume()."""
    settings: dict[str, SettingValue] = {
        "fetch.max.wait.ms": 100,
        "max.poll.records": 50,
        "partition.assignment.strategy": "roundrobin",
        "queued.min.messages": 2000,
    }
    assert settings_config(settings, offset_reset="earliest") == {
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "partition.assignment.strategy": "roundrobin",
        "queued.min.messages": 2000,
    }
    assert batch_records(settings) == 50
    assert batch_records({}) == 500


def test_a_poll_interval_under_librdkafkas_session_is_refused_only_for_classic() -> None:
    """max.poll.interval.ms 20 s is under librdkafka's 45 s session: refused with classic,
    accepted under KIP-848 (the session is the group's, not the client's)."""
    problems = _problems(client="confluent-kafka", settings={"max.poll.interval.ms": 20000})
    assert problems == [
        "consumer.settings.max.poll.interval.ms: librdkafka requires max.poll.interval.ms >= "
        "session.timeout.ms (45000) with group_protocol classic, got 20000"
    ]
    spec = small_spec(
        "kip848poll",
        consumer={"client": "confluent-kafka", "group_protocol": "consumer",
                  "settings": {"max.poll.interval.ms": 20000}},
    )  # fmt: skip
    assert spec.consumer.settings["max.poll.interval.ms"] == 20000


def test_a_fixed_poll_interval_caps_the_searched_session() -> None:
    """With max.poll.interval.ms fixed at 20 s, a confluent-kafka study never samples a
    session above it."""
    searched = space.search_space(None, {"max.poll.interval.ms": 20000}, client="confluent-kafka")
    assert searched.parameters["session.timeout.ms"].high == 20000
    assert "max.poll.interval.ms" not in searched.parameters


def test_a_handler_with_confluent_kafka_is_accepted(tmp_path: Path) -> None:
    """The user's handler runs on confluent-kafka members too (it gets their `Message`s): the
    config has no problem."""
    handlers = tmp_path / "handlers.py"
    handlers.write_text("async def handle(records):\n    pass\n")
    spec = small_spec(
        "accepted", consumer={"client": "confluent-kafka", "handler": f"{handlers}:handle"}
    )
    assert spec.consumer.handler is not None
    assert spec.consumer.handler.function == f"{handlers}:handle"
