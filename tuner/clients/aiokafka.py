"""The aiokafka consumer: its keyword arguments, built from Java-named settings in one place."""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

from tuner.settings import ASSIGNOR_NAMES, SETTINGS

ASSIGNORS = {
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
    "sticky": StickyPartitionAssignor,
}
"""aiokafka's assignor class for each short name of `tuner.settings.ASSIGNOR_KINDS`."""


def to_aiokafka_kwargs(values: Mapping[str, object]) -> dict[str, object]:
    """The one place aiokafka consumer keyword arguments are built from Java-named settings."""
    kwargs: dict[str, object] = {}
    for name, value in values.items():
        setting = SETTINGS[name]
        if setting.kind is str and isinstance(value, str):
            kwargs[setting.aiokafka_kwarg] = (ASSIGNORS[ASSIGNOR_NAMES[value]],)
        else:
            kwargs[setting.aiokafka_kwarg] = value
    return kwargs
