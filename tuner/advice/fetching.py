"""Rules on fetching and the group's shape: fetch sizes and waits, idle members, and when
offsets are committed (KT107-KT111)."""

from __future__ import annotations

from tuner.advice.facts import Facts
from tuner.advice.findings import Finding, Severity
from tuner.advice.numbers import number, setting
from tuner.clients import client_named
from tuner.settings import fetch_max_too_small


def fetch_min_unfillable(facts: Facts) -> Finding | None:
    """KT107: fetch.min.bytes that the live load cannot fill within fetch.max.wait.ms."""
    w = facts.workload
    min_bytes, wait = facts.ms("fetch.min.bytes"), facts.ms("fetch.max.wait.ms")
    if w is None or w.records_per_s is None or min_bytes <= 1:
        return None
    share = w.partitions_per_member / max(w.partitions, 1)
    arriving = w.records_per_s * share * w.message_bytes * wait / 1000
    if arriving >= min_bytes:
        return None
    return Finding(
        code="KT107", rule="fetch-min-unfillable",
        group=facts.group, severity=Severity.WARNING,
        title=f"every fetch waits the full fetch.max.wait.ms ({number(wait)} ms)",
        arithmetic=f"{number(w.records_per_s)} records/s x "
        f"{w.partitions_per_member}/{w.partitions} partitions per member x "
        f"{number(w.message_bytes)} B x {number(wait)} ms = {number(arriving)} B arrive per "
        f"fetch < {setting(facts, 'fetch.min.bytes')}",
        semantics="The broker answers a fetch once fetch.min.bytes are ready or "
        "fetch.max.wait.ms has passed: a trickle that cannot fill it adds the whole wait to "
        "every record's latency.",
        change=f"set fetch.min.bytes to at most {number(max(arriving, 1))}, or lower "
        "fetch.max.wait.ms to the latency you can afford",
        value=arriving, limit=float(min_bytes),
    )  # fmt: skip


def partition_fetch_below_message(facts: Facts) -> Finding | None:
    """KT108: max.partition.fetch.bytes below the message size."""
    w, limit = facts.workload, facts.ms("max.partition.fetch.bytes")
    if w is None or limit >= w.message_bytes:
        return None
    return Finding(
        code="KT108", rule="partition-fetch-below-message",
        group=facts.group, severity=Severity.WARNING,
        title="one message is larger than a partition's share of a fetch",
        arithmetic=f"{setting(facts, 'max.partition.fetch.bytes', 'B')} < message size "
        f"{number(w.message_bytes)} B",
        semantics="Since KIP-74 the broker still returns a first record batch larger than the "
        "limit, alone: the consumer progresses one batch per partition per round trip.",
        change=f"set max.partition.fetch.bytes to at least {number(w.message_bytes)} (the default "
        "1,048,576 holds many)",
        value=float(limit), limit=float(w.message_bytes),
    )  # fmt: skip


def fetch_max_below_partitions(facts: Facts) -> Finding | None:
    """KT109: fetch.max.bytes below max.partition.fetch.bytes x partitions per member."""
    fetch_max, per_partition = facts.ms("fetch.max.bytes"), facts.ms("max.partition.fetch.bytes")
    pp = facts.workload.partitions_per_member if facts.workload is not None else 1
    needed = per_partition * pp
    if fetch_max >= needed and not fetch_max_too_small(fetch_max, per_partition):
        return None
    return Finding(
        code="KT109", rule="fetch-max-below-partitions",
        group=facts.group, severity=Severity.WARNING,
        title="one fetch cannot carry a full share of every partition",
        arithmetic=f"{setting(facts, 'fetch.max.bytes', 'B')} < "
        f"{setting(facts, 'max.partition.fetch.bytes', 'B')} x {pp} partitions per member = "
        f"{number(needed)} B",
        semantics="fetch.max.bytes caps a whole fetch response: partitions past the cap wait "
        "for the next round trip, so the member reads its partitions in turns.",
        change=f"set fetch.max.bytes to at least {number(needed)}, or lower "
        "max.partition.fetch.bytes",
        value=float(fetch_max), limit=float(needed),
    )  # fmt: skip


def idle_members(facts: Facts) -> Finding | None:
    """KT110: more members than partitions (or members observed holding none)."""
    w, o = facts.workload, facts.observed
    if o is not None and o.idle_members:
        idle, members = o.idle_members, o.members or o.idle_members
        arithmetic = f"{idle} of {members} members hold no partition (observed)"
    elif w is not None and w.members > w.partitions:
        idle, members = w.members - w.partitions, w.members
        arithmetic = f"{w.members} members - {w.partitions} partitions = {idle} idle members"
    else:
        return None
    return Finding(
        code="KT110", rule="idle-members",
        group=facts.group, severity=Severity.WARNING,
        title=f"{idle} member{'s' if idle > 1 else ''} of the group consume nothing",
        arithmetic=arithmetic,
        semantics="Each partition goes to exactly one member of a group: members beyond the "
        "partition count stay idle and only add to every rebalance.",
        change="run as many members as partitions at most, or add partitions",
        value=float(idle), limit=0.0,
    )  # fmt: skip


def auto_commit_async(facts: Facts) -> Finding | None:
    """KT111: auto-commit while an async handler still works on the polled records."""
    w = facts.workload
    if w is None or w.mode != "async" or facts.settings["enable.auto.commit"] is not True:
        return None
    every = facts.ms("auto.commit.interval.ms")
    client = client_named(facts.client)
    poll, commit = client.poll_call, client.commit_call
    return Finding(
        code="KT111", rule="auto-commit-async",
        group=facts.group, severity=Severity.WARNING,
        title="offsets are committed before the records are processed",
        arithmetic=f"{setting(facts, 'enable.auto.commit')} with "
        f"mode async (commits every {setting(facts, 'auto.commit.interval.ms', 'ms')})",
        semantics=f"Auto-commit commits the position (past the last record {poll} returned) "
        f"from a background {client.background}; while the handler awaits, "
        "records not yet processed are committed, and a crash skips them.",
        change="set enable.auto.commit to false and commit after each processed batch "
        f"({commit})",
        value=1.0, limit=float(every),
    )  # fmt: skip
