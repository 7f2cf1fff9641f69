"""kafka-python's keyword arguments from Java-named settings: the few a service's plan needs
until kafka-python is a measured client of `tuner.clients` (issue 27, part 4).

kafka-python takes aiokafka's snake_case names for every setting of `tuner.settings` (both
follow the Java consumer's names); its assignors are its own classes, named here for the
service's interpreter to import from its own kafka-python.
"""

from __future__ import annotations

from collections.abc import Mapping

from tuner.settings import ASSIGNOR_NAMES, SETTINGS, SettingValue

KAFKA_PYTHON = "kafka-python"
"""The client's name in a service's plan (its distribution's name, as the others')."""
ASSIGNORS = {
    "range": "kafka.coordinator.assignors.range:RangePartitionAssignor",
    "roundrobin": "kafka.coordinator.assignors.roundrobin:RoundRobinPartitionAssignor",
    "sticky": "kafka.coordinator.assignors.sticky.sticky_assignor:StickyPartitionAssignor",
}
"""kafka-python's assignor class for each short name of `tuner.settings.ASSIGNOR_KINDS`."""


def kafka_python_kwargs(
    settings: Mapping[str, SettingValue], *, offset_reset: str
) -> dict[str, object]:
    """`KafkaConsumer` keyword arguments of the settings it has (librdkafka's own are not);
    an assignor as `{"classes": ["module:Class"]}`, which the bootstrap imports."""
    kwargs: dict[str, object] = {"auto_offset_reset": offset_reset}
    for name, value in settings.items():
        setting = SETTINGS.get(name)
        if setting is None:
            continue
        if setting.kind is str:
            kwargs[setting.aiokafka_kwarg] = {"classes": [ASSIGNORS[ASSIGNOR_NAMES[str(value)]]]}
        else:
            kwargs[setting.aiokafka_kwarg] = value
    return kwargs
