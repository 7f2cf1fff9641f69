"""The settings table and its rules: names, defaults, and the kwargs aiokafka gets."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import optuna
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from tests.helpers import gp_search_space
from tuner import librdkafka
from tuner.clients import client_named
from tuner.config import ParameterSpec, SettingValue
from tuner.protocol import GroupProtocol
from tuner.search import space
from tuner.settings import java_property, librdkafka_gap, librdkafka_property


def test_table_defaults_match_aiokafka() -> None:
    """Every aiokafka default in the table is the default AIOKafkaConsumer's signature declares
    (read from aiokafka itself, so an aiokafka upgrade that moves one fails here); the
    assignment strategy's default is an assignor class, compared by its protocol name."""
    declared = inspect.signature(AIOKafkaConsumer).parameters
    checked = []
    for name, setting in space.SETTINGS.items():
        if setting.aiokafka_kwarg is None:
            continue
        assert setting.aiokafka_kwarg in declared, name
        default = declared[setting.aiokafka_kwarg].default
        if name == "partition.assignment.strategy":
            default = ",".join(assignor.name for assignor in default)
        assert setting.aiokafka_default == default, name
        checked.append(name)
    assert {"fetch.max.bytes", "max.poll.records", "session.timeout.ms"} <= set(checked)


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


def test_each_client_dialect_names_what_means_the_same() -> None:
    """Java and librdkafka lines use their own names; what librdkafka cannot mean the same
    (a poll batch size, an eager sticky assignor) has a reason instead of a line."""
    assert java_property("enable.auto.commit", False) == "enable.auto.commit=false"
    assert java_property("partition.assignment.strategy", "sticky") == (
        "partition.assignment.strategy=org.apache.kafka.clients.consumer.StickyAssignor"
    )
    assert librdkafka_property("fetch.max.wait.ms", 200) == "fetch.wait.max.ms=200"
    assert librdkafka_gap("fetch.max.wait.ms", 200) is None
    assert "queued.min.messages" in str(librdkafka_gap("max.poll.records", 300))
    assert "cooperative-sticky" in str(librdkafka_gap("partition.assignment.strategy", "sticky"))
    assert librdkafka_gap("partition.assignment.strategy", "range") is None


def test_rounded_values_are_ones_a_person_would_write() -> None:
    """Two significant figures (2211 -> 2200, 195231 -> 200000); fixed settings and defaults
    stay; a heartbeat rounded up to a third of the rounded session goes down below it."""
    drawn: dict[str, SettingValue] = {
        "max.poll.records": 2211, "max.poll.interval.ms": 195231, "fetch.max.wait.ms": 455,
        "session.timeout.ms": 6049, "heartbeat.interval.ms": 1996, "fetch.min.bytes": 1,
        "max.partition.fetch.bytes": 1048576, "auto.commit.interval.ms": 4321,
    }  # fmt: skip
    out = space.rounded(drawn, keep={"auto.commit.interval.ms"})
    assert out == {
        "max.poll.records": 2200, "max.poll.interval.ms": 200000, "fetch.max.wait.ms": 460,
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 1900, "fetch.min.bytes": 1,
        "max.partition.fetch.bytes": 1048576, "auto.commit.interval.ms": 4321,
    }  # fmt: skip
    assert space.validate_settings(out) == []
    fetch = {"fetch.max.bytes": 1_149_000, "max.partition.fetch.bytes": 1_151_000}
    assert space.rounded(fetch) == {
        "fetch.max.bytes": 1_200_000, "max.partition.fetch.bytes": 1_200_000,
    }  # fmt: skip
    assert space.rounded({"session.timeout.ms": 9049}) == {"session.timeout.ms": 9049}


def _sampler(kind: str) -> optuna.samplers.BaseSampler:
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=3, n_startup_trials=3, multivariate=True)
    return optuna.samplers.RandomSampler(seed=3)


def _ask_tell(
    kind: str, n: int, draw: Callable[[optuna.Trial], dict[str, SettingValue]]
) -> list[tuple[optuna.trial.FrozenTrial, dict[str, SettingValue]]]:
    """n trials of a real in-memory study; each is told a value so model-based samplers fit."""
    study = optuna.create_study(direction="maximize", sampler=_sampler(kind))
    out = []
    for _ in range(n):
        trial = study.ask()
        settings = draw(trial)
        trial.set_constraint("rebalances", 0.0)
        study.tell(trial, float(settings.get("max.poll.records", 1)))
        out.append((study.trials[-1], settings))
    return out


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_fixed_settings_are_never_sampled(kind: str) -> None:
    """What consumer.settings fixes leaves the default space: no trial samples it, every trial
    runs with the fixed value, and heartbeat still follows the fixed session timeout."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed: dict[str, SettingValue] = {"max.poll.interval.ms": 2500, "session.timeout.ms": 9000}
    searched = space.search_space(None, fixed)
    assert searched.removed == ("session.timeout.ms", "max.poll.interval.ms")
    assert searched.note() == (
        "fixed by consumer.settings: session.timeout.ms=9000, max.poll.interval.ms=2500 "
        "(not searched)"
    )
    assert "heartbeat.interval.ms" in searched.parameters
    for frozen, settings in _ask_tell(kind, 10, searched.suggest):
        assert not set(frozen.params) & set(fixed), frozen.params
        assert settings["max.poll.interval.ms"] == 2500
        assert settings["session.timeout.ms"] == 9000
        assert 3 * int(settings["heartbeat.interval.ms"]) < 9000
        assert space.validate_settings(settings) == []


def test_the_gp_sampler_models_every_searched_parameter_and_no_fixed_one() -> None:
    """What GPSampler (`search.sampler: gp`) would model, checked without PyTorch on a study
    TPE ran: its intersection search space holds every parameter any trial drew (none falls
    back to random draws outside the model) and no setting consumer.settings fixes."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed: dict[str, SettingValue] = {"max.poll.interval.ms": 2500, "session.timeout.ms": 9000}
    for given in (fixed, {}):
        searched = space.search_space(None, given)
        trials = [frozen for frozen, _ in _ask_tell("tpe", 12, searched.suggest)]
        drawn = {name for t in trials for name in t.params}
        assert gp_search_space(trials) == drawn
        assert len(drawn) >= len(searched.parameters)
        assert not drawn & set(given)


def test_a_fixed_heartbeat_leaves_the_search_and_bounds_the_session() -> None:
    """A fixed heartbeat is not sampled (nor its fraction), and the searched session timeout
    starts above three heartbeats."""
    searched = space.search_space(None, {"heartbeat.interval.ms": 4000})
    assert "heartbeat.interval.ms" not in searched.parameters
    assert searched.parameters["session.timeout.ms"].low == 12001
    for frozen, settings in _ask_tell("random", 10, searched.suggest):
        assert "heartbeat.fraction" not in frozen.params
        assert space.validate_settings(settings) == []


def test_user_parameters_lose_fixed_ones_too() -> None:
    """`search.parameters` is filtered the same way as the default space."""
    params = {"max.poll.records": ParameterSpec(low=10, high=500)}
    searched = space.search_space(params, {"max.poll.records": 100, "fetch.min.bytes": 1})
    assert dict(searched.parameters) == {}
    assert searched.removed == ("max.poll.records",)


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_suggest_keeps_the_rules_and_one_distribution_per_parameter(kind: str) -> None:
    """Over 20 trials of the default space: heartbeat * 3 < session, fetch.max.bytes >=
    max.partition.fetch.bytes within its range, and every trial has the same distributions
    (else Optuna's intersection search space drops the parameter and samples it at random)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = _ask_tell(kind, 20, lambda t: space.suggest(t, space.DEFAULT_SEARCH))
    first = runs[0][0].distributions
    assert set(first) >= {"heartbeat.fraction", "fetch.max.bytes.ratio"}
    assert "fetch.max.bytes" not in first
    fetch = space.DEFAULT_SEARCH["fetch.max.bytes"]
    assert fetch.low is not None
    assert fetch.high is not None
    for frozen, settings in runs:
        assert frozen.distributions == first
        assert 3 * int(settings["heartbeat.interval.ms"]) < int(settings["session.timeout.ms"])
        partition = int(settings["max.partition.fetch.bytes"])
        assert int(settings["fetch.max.bytes"]) >= partition
        assert int(settings["fetch.max.bytes"]) <= max(fetch.high, partition)
        assert space.validate_settings(settings) == []


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_every_confluent_kafka_sample_is_a_config_librdkafka_accepts(
    protocol: GroupProtocol,
) -> None:
    """40 random samples of the confluent-kafka space each build a real librdkafka consumer
    (which refuses a bad config at construction), searching the prefetch queue and batch."""
    from confluent_kafka import Consumer  # noqa: PLC0415 - only this test needs it

    searched = space.search_space(None, {}, client="confluent-kafka")
    assert {"queued.min.messages", "queued.max.messages.kbytes", "max.poll.records"} <= set(
        searched.parameters
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    for _ in range(40):
        settings = searched.suggest(study.ask())
        conf = librdkafka.settings_config(settings, offset_reset="earliest", protocol=protocol)
        consumer = Consumer({**conf, "bootstrap.servers": "127.0.0.1:1", "group.id": "g"})
        consumer.close()
        # what every trial of a study is checked with before it runs
        assert client_named("confluent-kafka").settings_problems(settings, protocol=protocol) == []
        assert 10 <= librdkafka.batch_records(settings) <= 5000
