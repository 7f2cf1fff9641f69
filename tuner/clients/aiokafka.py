"""The aiokafka consumer: its defaults, its space, and its keyword arguments, built from
Java-named settings in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from tuner.clients.base import FETCH_SEARCH, LIVENESS_SEARCH, ConsumerClient, Recommended
from tuner.protocol import GroupProtocol
from tuner.settings import (
    ASSIGNOR_NAMES,
    SETTINGS,
    ParameterSpec,
    SettingValue,
    effective_settings,
)


def assignors() -> dict[str, type]:
    """aiokafka's assignor class for each short name of `tuner.settings.ASSIGNOR_KINDS`,
    imported only when a member is configured: the config's checks look the clients up, and
    a config loads without importing aiokafka."""
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor  # noqa: PLC0415 - lazy
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor  # noqa: PLC0415 - lazy
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor  # noqa: PLC0415 - lazy

    return {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "sticky": StickyPartitionAssignor,
    }


def to_aiokafka_kwargs(values: Mapping[str, object]) -> dict[str, object]:
    """The one place aiokafka consumer keyword arguments are built from Java-named settings."""
    kwargs: dict[str, object] = {}
    for name, value in values.items():
        setting = SETTINGS[name]
        if setting.kind is str and isinstance(value, str):
            kwargs[setting.aiokafka_kwarg] = (assignors()[ASSIGNOR_NAMES[value]],)
        else:
            kwargs[setting.aiokafka_kwarg] = value
    return kwargs


class Aiokafka(ConsumerClient):
    """aiokafka: heartbeats from a task on the member's event loop, no prefetch queue bounds."""

    name = "aiokafka"
    distribution = "aiokafka"
    search: ClassVar[Mapping[str, ParameterSpec]] = {
        **FETCH_SEARCH,
        **LIVENESS_SEARCH,
        "max.poll.interval.ms": ParameterSpec(low=10000, high=600000, log=True),
    }
    background = "task"
    heartbeats_on_the_loop = True
    protocols = ("classic",)
    service_clients = frozenset({"aiokafka", "kafka-python"})  # kafka-python's kwargs are ours
    blocking_poll = False
    prefetch_queue = False
    poll_call = "getmany()"
    commit_call = "await consumer.commit()"
    member_loop = "tuner.consumer.aiokafka:run_aiokafka_member"

    def effective_settings(
        self, settings: Mapping[str, SettingValue], *, protocol: GroupProtocol = "classic"
    ) -> dict[str, SettingValue | None]:
        del protocol  # aiokafka implements the classic protocol only (config refuses others)
        return effective_settings(settings)

    def member_config(
        self, settings: Mapping[str, SettingValue], *, offset_reset: str, protocol: GroupProtocol
    ) -> dict[str, object]:
        del protocol
        return {**to_aiokafka_kwargs(settings), "auto_offset_reset": offset_reset}

    def settings_files(
        self, r: Recommended, *, protocol: GroupProtocol = "classic"
    ) -> dict[str, str]:
        """aiokafka's snippet, measured; the Java consumer's and librdkafka's files as far as
        each setting means the same there."""
        del protocol
        from tuner.clients import aiokafka_files  # noqa: PLC0415 - it imports this module

        return aiokafka_files.files(r)


AIOKAFKA = Aiokafka()
