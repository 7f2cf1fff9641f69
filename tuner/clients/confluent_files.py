"""The settings files of a confluent-kafka study: librdkafka's, measured; others as comments.

Every run of such a study was a confluent-kafka consumer, with librdkafka's defaults for what
the recommendation does not set, so the changes are taken against those defaults and written
under librdkafka's names. The batch passed to `consume()` is not a librdkafka property (it is
`max.poll.records` in the study), and under KIP-848 the session and heartbeat are the group's
configs, set with the admin API: both are written where they belong, as instructions. The
Java consumer and aiokafka were not measured: their file holds the same values as comments.
"""

from __future__ import annotations

from tuner import librdkafka
from tuner.clients.base import PROTOCOL_LABELS, Recommended
from tuner.librdkafka import KIP848_GROUP_CONFIGS as GROUP_CONFIGS
from tuner.protocol import GroupProtocol
from tuner.settings import SETTINGS, java_property

MEASURED_ON = "confluent-kafka"


def files(r: Recommended, *, protocol: GroupProtocol) -> dict[str, str]:
    """Each settings file by name: its text."""
    return {
        "librdkafka.properties": librdkafka_properties(r, protocol=protocol),
        "confluent_kafka_snippet.py": snippet(r, protocol=protocol),
        "consumer.properties": _java_comments(r),
    }


def _properties(r: Recommended, protocol: GroupProtocol) -> tuple[dict[str, object], list[str]]:
    """(librdkafka properties of the changes and fixed settings, lines to say beside them)."""
    conf: dict[str, object] = {}
    notes: list[str] = []
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    for name, value in r.settings.items():
        if name == librdkafka.MAX_POLL_RECORDS:
            notes.append(f"pass num_messages={value} to consume() (measured as max.poll.records)")
        elif protocol == "consumer" and name in GROUP_CONFIGS:
            notes.append(
                f"{GROUP_CONFIGS[name]}={value}: a group config under KIP-848, set with "
                "kafka-configs --entity-type groups --alter (never a client setting)"
            )
        else:
            conf.update(librdkafka.settings_config({name: value}, offset_reset="x"))
            conf.pop("auto.offset.reset")
    return conf, notes


def librdkafka_properties(r: Recommended, *, protocol: GroupProtocol) -> str:
    """`librdkafka.properties`: the measured settings under librdkafka's names."""
    conf, notes = _properties(r, protocol)
    lines = [
        "# Consumer settings for librdkafka (confluent-kafka), from kafka-tuner study "
        f"{r.study!r}.",
        f"# Measured on {MEASURED_ON}, group protocol {_protocol(protocol)}: {r.origin}.",
    ]
    if not r.changes:
        lines.append("# No setting measurably helped: this file changes nothing.")
    lines += [f"{name}={_value(value)}" for name, value in conf.items()]
    lines += [f"# {note}" for note in notes]
    return "\n".join(lines) + "\n"


def snippet(r: Recommended, *, protocol: GroupProtocol) -> str:
    """A confluent_kafka consumer loop with the recommendation; the rest at its defaults."""
    conf, notes = _properties(r, protocol)
    batch = r.settings.get(librdkafka.MAX_POLL_RECORDS, librdkafka.DEFAULT_BATCH_RECORDS)
    entries = "".join(f"    {name!r}: {value!r},\n" for name, value in conf.items())
    said = "".join(f"# {note}\n" for note in notes)
    return (
        f"# From kafka-tuner study {r.study!r}: {r.origin} (measured on {MEASURED_ON}, "
        f"group protocol {_protocol(protocol)}).\n{said}"
        "from confluent_kafka import Consumer\n\n"
        'consumer = Consumer({\n    "bootstrap.servers": "...",\n    "group.id": "your-group",\n'
        f"{entries}}})\n"
        'consumer.subscribe(["your-topic"])\n'
        "while True:\n"
        f"    batch = consumer.consume(num_messages={batch}, timeout=1.0)\n"
    )


def _java_comments(r: Recommended) -> str:
    """The Java consumer's file, every value a comment: the study did not run that client."""
    lines = [
        f"# From kafka-tuner study {r.study!r}: NOT MEASURED on the Java consumer.",
        f"# The study measured {MEASURED_ON}; its settings under the Java names, for reference",
        "# only (librdkafka-only settings have no Java name and are left out):",
    ]
    lines += [f"# {java_property(n, v)}" for n, v in r.settings.items() if n in SETTINGS]
    return "\n".join(lines) + "\n"


def _protocol(protocol: GroupProtocol) -> str:
    """`classic`, or `consumer (KIP-848)`."""
    return PROTOCOL_LABELS.get(protocol, protocol)


def _value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
