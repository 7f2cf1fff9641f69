"""A rule on KIP-848 groups (KT113): client settings the consumer group protocol takes away."""

from __future__ import annotations

from collections.abc import Mapping

from tuner import librdkafka
from tuner.advice.facts import Facts
from tuner.advice.findings import Finding, Severity
from tuner.advice.numbers import number
from tuner.clients import client_named

GROUP_BOUNDS: Mapping[str, tuple[str, int, int]] = {
    "session.timeout.ms": ("group.consumer.{}.session.timeout.ms", 45_000, 60_000),
    "heartbeat.interval.ms": ("group.consumer.{}.heartbeat.interval.ms", 5_000, 15_000),
}
"""The broker configs that bound each group config, and Kafka's defaults for them
(GroupCoordinatorConfig): a group config outside them is refused."""


def _shown(value: object) -> str:
    return number(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _bounds(name: str, value: object) -> str:
    """The broker's bounds on the group config replacing `name`, and which to change when
    `value` is outside them."""
    config, lo, hi = GROUP_BOUNDS[name]
    text = (
        f"{config.format('min')} {number(lo)} <= {librdkafka.KIP848_GROUP_CONFIGS[name]} <= "
        f"{config.format('max')} {number(hi)} (Kafka's defaults)"
    )
    if isinstance(value, int) and not lo <= value <= hi:
        edge = "min" if value < lo else "max"
        text += f"; {number(value)} is outside them: change the broker's {config.format(edge)}"
    return text


def kip848_client_settings(facts: Facts) -> Finding | None:
    """KT113: under `group.protocol=consumer` librdkafka refuses to create a consumer with
    `session.timeout.ms`, `heartbeat.interval.ms` or `partition.assignment.strategy`; the first
    two become the group's configs, the assignor the broker's."""
    if facts.group_protocol != "consumer" or "consumer" not in client_named(facts.client).protocols:
        return None
    refused = [n for n in librdkafka.KIP848_CLIENT_REFUSED if n in facts.given]
    if not refused:
        return None
    stated = ", ".join(f"{n} {_shown(facts.settings[n])}" for n in refused)
    configs = [n for n in refused if n in librdkafka.KIP848_GROUP_CONFIGS]
    group = facts.group or "<group>"
    changes = []
    if configs:
        add = ",".join(f"{librdkafka.KIP848_GROUP_CONFIGS[n]}={facts.settings[n]}" for n in configs)
        changes.append(
            "set them as the group's configs instead, through the admin API "
            "(IncrementalAlterConfigs on the GROUP resource) or `kafka-configs.sh "
            f"--bootstrap-server <broker> --alter --entity-type groups --entity-name {group} "
            f"--add-config {add}`, within "
            + "; and ".join(_bounds(n, facts.settings[n]) for n in configs)
        )
    if "partition.assignment.strategy" in refused:
        changes.append(
            "choose the broker's assignor with group.remote.assignor (uniform or range) instead "
            "of partition.assignment.strategy"
        )
    return Finding(
        code="KT113", rule="kip848-client-settings",
        group=facts.group, severity=Severity.RISK,
        title=f"librdkafka refuses {', '.join(refused)} under group.protocol=consumer: the "
        "consumer is never created",
        arithmetic=f"group.protocol consumer (KIP-848) with client settings {stated}: "
        f"{len(refused)} that librdkafka refuses under it",
        semantics="Under KIP-848 the broker owns the group's session and heartbeat and assigns "
        "the partitions: these stop being client settings, and librdkafka fails to create the "
        "consumer when they are set (\"not supported for group.protocol=consumer … it is "
        "defined broker side\"). `tuner run` sets them for its own group as the group's "
        "configs; your application's client must not set them.",
        change="remove them from the consumer's configuration; " + "; ".join(changes),
        value=float(len(refused)), limit=0.0,
    )  # fmt: skip
