"""A rule on librdkafka's prefetch (KT112): how much memory a confluent-kafka member may hold."""

from __future__ import annotations

from tuner.advice.facts import Facts
from tuner.advice.findings import Finding, Severity
from tuner.advice.numbers import number
from tuner.clients import client_named

PREFETCH_LIMIT_BYTES = 256 << 20
"""Prefetched records a member may hold before it is worth a look: a quarter of a 1 GiB
container, which the application itself also needs."""


def prefetch_memory(facts: Facts) -> Finding | None:
    """KT112: a confluent-kafka member's prefetch queue, which fills whether the application
    keeps up or not: min(queued.min.messages x message size x partitions, the
    queued.max.messages.kbytes bound) plus one fetch per partition beyond the bound."""
    w = facts.workload
    if not client_named(facts.client).prefetch_queue or w is None:
        return None
    per_member = w.partitions_per_member
    wanted = facts.ms("queued.min.messages") * w.message_bytes * per_member
    bound = facts.ms("queued.max.messages.kbytes") * 1024
    overshoot = per_member * facts.ms("max.partition.fetch.bytes")
    held = min(wanted, bound) + overshoot
    if held <= PREFETCH_LIMIT_BYTES:
        return None
    return Finding(
        code="KT112", rule="prefetch-memory",
        group=facts.group, severity=Severity.WARNING,
        title=f"each member may hold {number(held / 2**20)} MiB of prefetched records",
        arithmetic=f"min(queued.min.messages {number(facts.ms('queued.min.messages'))} x "
        f"{number(w.message_bytes)} B x {per_member} partitions, queued.max.messages.kbytes "
        f"{number(bound // 1024)} KiB) + {per_member} x max.partition.fetch.bytes "
        f"{number(facts.ms('max.partition.fetch.bytes'))} B = {number(held)} B > "
        f"{number(PREFETCH_LIMIT_BYTES)} B",
        semantics="librdkafka fetches ahead on its own threads until queued.min.messages "
        "records per partition are queued; with the high-level consumer "
        "queued.max.messages.kbytes bounds the one queue, overshot by up to one fetch per "
        "partition (librdkafka's CONFIGURATION.md). The memory is held even while the "
        "application keeps up.",
        change="lower queued.max.messages.kbytes (or queued.min.messages): a queue a few "
        "batches deep keeps consume() fed",
        value=float(held), limit=float(PREFETCH_LIMIT_BYTES),
    )  # fmt: skip
