"""The settings files: what the recommendation changes plus the user's fixed settings, per client.

Every run was an aiokafka consumer, with aiokafka's defaults for whatever the recommendation
does not set. A file therefore sets only the measured changes and the fixed settings: writing
aiokafka's defaults under Java names would move a Java team from a 45 s to a 10 s session
timeout and to an eager assignor, neither of them measured. A setting goes into a client's
file only where it means the same to that client; the rest of what a reader must know (what
does not carry over, where the defaults differ) is written as comments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from tuner.clients.aiokafka import to_aiokafka_kwargs
from tuner.clients.base import Recommended
from tuner.settings import (
    SETTINGS,
    SettingValue,
    aiokafka_defaults,
    java_property,
    librdkafka_gap,
    librdkafka_property,
)

MEASURED_ON = "aiokafka"
"""The client every run of a study uses."""

_ASSIGNOR_DEFAULTS = {"Java": "range, cooperative-sticky", "librdkafka": "range,roundrobin"}
"""Where a client's default differs from the catalogue's `java_default` (librdkafka's other
defaults are Java's)."""

Render = Callable[[str, SettingValue], str]
"""One `name=value` line in a client's dialect."""


def files(r: Recommended) -> dict[str, str]:
    """Each settings file by name: its text."""
    return {
        "consumer.properties": java_properties(r),
        "librdkafka.properties": librdkafka_properties(r),
        "aiokafka.json": json.dumps(aiokafka_kwargs(r), indent=2) + "\n",
        "consumer_snippet.py": snippet(r),
    }


def java_properties(r: Recommended) -> str:
    """`consumer.properties` for the Java consumer: every measured setting means the same there."""
    lines = _head(r, "the Java consumer")
    lines += _block(r.changes, java_property, "Changed by the recommendation:")
    lines += _block(r.fixed, java_property, "Fixed by your consumer.settings:")
    return _text(lines + _defaults(r, "Java"))


def librdkafka_properties(r: Recommended) -> str:
    """`librdkafka.properties`: the settings librdkafka has under its own names; the rest, and
    why, as comments."""
    lines = _head(r, "librdkafka (confluent-kafka)")
    lines.append(
        "# librdkafka prefetches into a local queue (queued.min.messages); its throughput with "
        "these settings was not measured."
    )
    carried = {n: v for n, v in r.settings.items() if librdkafka_gap(n, v) is None}
    lines += _block({n: v for n, v in r.changes.items() if n in carried},
                    librdkafka_property, "Changed by the recommendation:")  # fmt: skip
    lines += _block({n: v for n, v in r.fixed.items() if n in carried},
                    librdkafka_property, "Fixed by your consumer.settings:")  # fmt: skip
    gaps = [(n, v, gap) for n, v in r.settings.items() if (gap := librdkafka_gap(n, v))]
    if gaps:
        lines.append("# Not carried over (librdkafka has no setting that means the same):")
        lines += [f"#   {n}={_value(v)}: {gap}" for n, v, gap in gaps]
    return _text(lines + _defaults(r, "librdkafka"))


def aiokafka_kwargs(r: Recommended) -> dict[str, object]:
    """aiokafka keyword arguments: the changes and the fixed settings (the measured client)."""
    kwargs = to_aiokafka_kwargs(r.settings)
    return {k: (v[0].name if isinstance(v, tuple) else v) for k, v in kwargs.items()}


def snippet(r: Recommended) -> str:
    """An aiokafka consumer with the recommendation; everything else at aiokafka's defaults."""
    args = "".join(f"    {k}={v!r},\n" for k, v in aiokafka_kwargs(r).items())
    note = "" if r.settings else "    # the study found nothing to change: aiokafka's defaults\n"
    return (
        f"# From kafka-tuner study {r.study!r}: {r.origin}.\n"
        "from aiokafka import AIOKafkaConsumer\n\n"
        'consumer = AIOKafkaConsumer(\n    "your-topic",\n    bootstrap_servers="...",\n'
        f'    group_id="your-group",\n{note}{args})\n'
    )


def _head(r: Recommended, client: str) -> list[str]:
    lines = [
        f"# Consumer settings for {client}, from kafka-tuner study {r.study!r}.",
        f"# Measured on {MEASURED_ON}: {r.origin}.",
    ]
    if not r.changes:
        lines.append("# No setting measurably helped: this file changes nothing.")
    return lines


def _block(values: Mapping[str, SettingValue], render: Render, title: str) -> list[str]:
    if not values:
        return []
    lines = [f"# {title}"]
    for name, value in values.items():
        if name == "enable.auto.commit" and value is False:
            lines.append(
                "# (the measured consumer committed after each batch: with auto-commit off, "
                "yours must commit itself)"
            )
        lines.append(render(name, value))
    return lines


def _defaults(r: Recommended, client: str) -> list[str]:
    """The defaults the runs used where this client's differ: not set, so not changed."""
    aio = aiokafka_defaults()
    rows = []
    for name, setting in SETTINGS.items():
        if name in r.settings or (client == "librdkafka" and setting.librdkafka_name is None):
            continue
        theirs = _ASSIGNOR_DEFAULTS[client] if setting.kind is str else setting.java_default
        if str(theirs) != str(aio[name]):
            rows.append(f"#   {name}: {MEASURED_ON} {_value(aio[name])}, {client} {theirs}")
    if not rows:
        return []
    return [
        f"# Not set (the runs used {MEASURED_ON}'s default; {client}'s differs, and that "
        "difference was not measured):",
        *rows,
    ]


def _value(value: object) -> str:
    if value is None:
        return "unlimited"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"
