"""The rules, one small function each: facts in, a finding (or none) out.

Each rule states its Kafka semantics once; the thresholds are named here so a finding's
arithmetic and the tests read the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tuner.advice.facts import Facts, Workload
from tuner.advice.findings import Finding, Severity
from tuner.settings import fetch_max_too_small, heartbeat_too_slow, session_in_bounds

HEADROOM = 0.5
"""A batch (or gap between polls) past this share of its limit is a warning."""
LONG_SESSION_MS = 30_000
LONG_POLL_INTERVAL_MS = 60_000
STARVED_SHARE = 0.8
"""A fetch that takes this share of fetch.max.wait.ms waited for data that did not come."""
STARVED_RECORDS = 100
IDLE_RATIO = 0.5

Rule = Callable[[Facts], Finding | None]


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _count(value: float, noun: str) -> str:
    """`1 rebalance`, `2 rebalances`: a count as the rounded number says it."""
    shown = f"{value:,.0f}"
    return f"{shown} {noun}{'' if shown == '1' else 's'}"


def _s(ms: float) -> str:
    return f"{ms / 1000:,.1f} s" if ms < 60_000 else f"{ms / 60_000:,.1f} min"


def _setting(facts: Facts, name: str, unit: str = "") -> str:
    """`name 10,000 ms` with `(default)` when no source stated it."""
    value = facts.settings[name]
    if isinstance(value, bool):
        shown = str(value).lower()
    else:
        shown = "unlimited" if value is None else _n(int(value))
    unit = f" {unit}" if unit and value is not None else ""
    return f"{name} {shown}{unit}" + ("" if name in facts.given else " (default)")


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWork:
    """The most records one poll can hand out, and the time to process them at p99."""

    records: int
    records_text: str
    work_ms: float
    work_text: str


def poll_work(facts: Facts, w: Workload) -> PollWork:
    """aiokafka buffers one fetch result per partition and `getmany()` without
    `max_records` hands out all of them: at most `max.partition.fetch.bytes` per partition
    of the member, and `fetch.max.bytes` in all (one broker), but always one record per
    partition (KIP-74)."""
    pp = w.partitions_per_member
    fetch_bytes = min(facts.ms("fetch.max.bytes"), facts.ms("max.partition.fetch.bytes") * pp)
    by_fetch = max(pp, fetch_bytes // max(w.message_bytes, 1))
    limit = facts.settings["max.poll.records"]
    records = by_fetch if limit is None else min(int(limit), by_fetch)
    records_text = (
        f"min({_setting(facts, 'fetch.max.bytes')}, {_setting(facts, 'max.partition.fetch.bytes')}"
        f" x {pp} partitions per member) / {_n(w.message_bytes)} B per record = {_n(by_fetch)}"
    )
    if limit is not None:
        records_text = f"min({_setting(facts, 'max.poll.records')}, {records_text}) = {_n(records)}"
    work_ms = w.per_batch_ms + records * w.record_p99_ms
    work_text = (
        f"{_n(records)} records x {w.record_p99_ms:,.1f} ms (p99 per record) + "
        f"{w.per_batch_ms:,.0f} ms per batch = {_n(work_ms)} ms"
    )
    return PollWork(
        records=records, records_text=records_text, work_ms=work_ms, work_text=work_text
    )


def _records_within(budget_ms: float, w: Workload) -> int:
    """The largest batch whose p99 processing fits `budget_ms`."""
    if w.record_p99_ms <= 0:
        return 0
    return max(int((budget_ms - w.per_batch_ms) / w.record_p99_ms + 1e-9), 1)  # 1e-9: a p99
    # computed as 10.000000000000002 ms must still fit 500 records in 5,000 ms


def poll_work_over_interval(facts: Facts) -> Finding | None:
    """KT101: a full poll's processing time against max.poll.interval.ms."""
    w = facts.workload
    if w is None or (w.record_p99_ms <= 0 and w.per_batch_ms <= 0):
        return None
    work, interval = poll_work(facts, w), facts.ms("max.poll.interval.ms")
    if work.work_ms < HEADROOM * interval:
        return None
    severity = Severity.RISK if work.work_ms >= interval else Severity.WARNING
    fits = _records_within(HEADROOM * interval, w)
    return Finding(
        code="KT101", rule="poll-work-over-interval",
        group=facts.group, severity=severity,
        title=f"a full poll takes {_s(work.work_ms)} to process, "
        f"{work.work_ms / interval:.0%} of max.poll.interval.ms",
        arithmetic=f"records per poll ≤ {work.records_text}; {work.work_text} against "
        f"{_setting(facts, 'max.poll.interval.ms', 'ms')} ({work.work_ms / interval:.0%})",
        semantics="A member that does not poll again within max.poll.interval.ms leaves the "
        "group and its partitions move (a rebalance); aiokafka's default max.poll.records is "
        "unlimited, so a poll hands out everything prefetched.",
        change=f"set max.poll.records to at most {_n(fits)} (half of max.poll.interval.ms at "
        f"p99), or raise max.poll.interval.ms to at least {_n(2 * work.work_ms)}",
        value=work.work_ms, limit=float(interval),
    )  # fmt: skip


def loop_blocked_past_session(facts: Facts) -> Finding | None:
    """KT102: a handler holding the event loop longer than session.timeout.ms."""
    w, o, session = facts.workload, facts.observed, facts.ms("session.timeout.ms")
    if w is not None and w.mode == "async":
        return None
    if w is not None and o is None:
        blocked, how = poll_work(facts, w), "config"
        blocked_ms = blocked.work_ms
        arithmetic = f"mode cpu: the loop is held for a whole batch, {blocked.work_text}"
        fits = f"max.poll.records ≤ {_n(_records_within(HEADROOM * session, w))}"
    elif o is not None and o.poll_interval_max_ms is not None:
        blocked_ms, how = o.poll_interval_max_ms, "observed"
        arithmetic = f"longest gap between polls {_n(blocked_ms)} ms (observed)"
        fits = "smaller batches (max.poll.records)"
    else:
        return None
    if blocked_ms < HEADROOM * session or (how == "observed" and blocked_ms < session):
        return None
    certain = w is not None and w.mode == "cpu"
    severity = Severity.RISK if blocked_ms >= session and certain else Severity.WARNING
    return Finding(
        code="KT102", rule="loop-blocked-past-session",
        group=facts.group, severity=severity,
        title=f"the handler blocks the event loop for {_s(blocked_ms)}, against the session timeout"
        if certain
        else f"polls came {_s(blocked_ms)} apart: too long for the session timeout if the "
        "handler blocks the event loop",
        arithmetic=f"{arithmetic} against {_setting(facts, 'session.timeout.ms', 'ms')} "
        f"({blocked_ms / session:.0%})",
        semantics="aiokafka heartbeats from a task on the consumer's own event loop (Java has a "
        "heartbeat thread): a handler that holds the loop past session.timeout.ms sends no "
        "heartbeat meanwhile, and the coordinator evicts the member.",
        change=f"run CPU work off the loop (asyncio.to_thread or a process pool), or poll "
        f"{fits}",
        value=blocked_ms, limit=float(session),
    )  # fmt: skip


def heartbeat_vs_session(facts: Facts) -> Finding | None:
    """KT103: heartbeat.interval.ms at or above a third of session.timeout.ms."""
    session, heartbeat = facts.ms("session.timeout.ms"), facts.ms("heartbeat.interval.ms")
    if not heartbeat_too_slow(session_ms=session, heartbeat_ms=heartbeat):
        return None
    return Finding(
        code="KT103", rule="heartbeat-vs-session",
        group=facts.group, severity=Severity.RISK if heartbeat >= session else Severity.WARNING,
        title="fewer than three heartbeats fit in the session timeout",
        arithmetic=f"{_setting(facts, 'heartbeat.interval.ms', 'ms')} x 3 = {_n(3 * heartbeat)} "
        f"≥ {_setting(facts, 'session.timeout.ms', 'ms')}",
        semantics="The coordinator evicts a member it has not heard from for "
        "session.timeout.ms; with fewer than three heartbeats in that time, one late or lost "
        "heartbeat is enough.",
        change=f"set heartbeat.interval.ms to at most {_n((session - 1) // 3)} "
        "(below a third of session.timeout.ms)",
        value=float(heartbeat), limit=session / 3,
    )  # fmt: skip


def session_outside_bounds(facts: Facts) -> Finding | None:
    """KT104: session.timeout.ms outside the broker's group.min/max.session.timeout.ms."""
    session, limits = facts.ms("session.timeout.ms"), facts.limits
    if session_in_bounds(session, limits):
        return None
    lo, hi = limits.group_min_session_timeout_ms, limits.group_max_session_timeout_ms
    return Finding(
        code="KT104", rule="session-outside-broker-bounds",
        group=facts.group, severity=Severity.RISK,
        title="the broker refuses this session timeout",
        arithmetic=f"{_setting(facts, 'session.timeout.ms', 'ms')} not in the broker's "
        f"[group.min.session.timeout.ms {_n(lo)}, group.max.session.timeout.ms {_n(hi)}]",
        semantics="The coordinator rejects a JoinGroup whose session timeout is outside its "
        "bounds (INVALID_SESSION_TIMEOUT): the consumer never gets a partition.",
        change=f"set session.timeout.ms within [{_n(lo)}, {_n(hi)}]",
        value=float(session), limit=float(lo if session < lo else hi),
    )  # fmt: skip


def long_failover(facts: Facts) -> Finding | None:
    """KT105: a long session timeout is a long failover."""
    session = facts.ms("session.timeout.ms")
    if session <= LONG_SESSION_MS:
        return None
    return Finding(
        code="KT105", rule="long-failover",
        group=facts.group, severity=Severity.INFO,
        title=f"a member that dies holds its partitions for up to {_s(session)}",
        arithmetic=f"{_setting(facts, 'session.timeout.ms', 'ms')} = {_s(session)} > "
        f"{_s(LONG_SESSION_MS)}",
        semantics="A member that crashes without leaving the group is only evicted after "
        "session.timeout.ms; its partitions deliver nothing until then.",
        change="if failover time matters, lower session.timeout.ms (aiokafka's default is "
        "10 s, Java's 45 s), keeping heartbeat.interval.ms below a third of it",
        value=float(session), limit=float(LONG_SESSION_MS),
    )  # fmt: skip


def slow_stuck_detection(facts: Facts) -> Finding | None:
    """KT106: a long max.poll.interval.ms detects a stuck consumer late."""
    interval = facts.ms("max.poll.interval.ms")
    if interval <= LONG_POLL_INTERVAL_MS:
        return None
    o = facts.observed
    seen = (
        f" (the longest gap observed was {_n(o.poll_interval_max_ms)} ms)"
        if o is not None and o.poll_interval_max_ms is not None
        else ""
    )
    return Finding(
        code="KT106", rule="slow-stuck-detection",
        group=facts.group, severity=Severity.INFO,
        title=f"a stuck consumer keeps its partitions for {_s(interval)}",
        arithmetic=f"{_setting(facts, 'max.poll.interval.ms', 'ms')} = {_s(interval)} > "
        f"{_s(LONG_POLL_INTERVAL_MS)}",
        semantics="A member whose handler hangs keeps heartbeating (a background task) and "
        "keeps its partitions until max.poll.interval.ms passes without a poll.",
        change=f"set max.poll.interval.ms to a few times your slowest batch{seen}",
        value=float(interval), limit=float(LONG_POLL_INTERVAL_MS),
    )  # fmt: skip


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
        title=f"every fetch waits the full fetch.max.wait.ms ({_n(wait)} ms)",
        arithmetic=f"{_n(w.records_per_s)} records/s x {w.partitions_per_member}/{w.partitions} "
        f"partitions per member x {_n(w.message_bytes)} B x {_n(wait)} ms = {_n(arriving)} B "
        f"arrive per fetch < {_setting(facts, 'fetch.min.bytes')}",
        semantics="The broker answers a fetch once fetch.min.bytes are ready or "
        "fetch.max.wait.ms has passed: a trickle that cannot fill it adds the whole wait to "
        "every record's latency.",
        change=f"set fetch.min.bytes to at most {_n(max(arriving, 1))}, or lower "
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
        arithmetic=f"{_setting(facts, 'max.partition.fetch.bytes', 'B')} < message size "
        f"{_n(w.message_bytes)} B",
        semantics="Since KIP-74 the broker still returns a first record batch larger than the "
        "limit, alone: the consumer progresses one batch per partition per round trip.",
        change=f"set max.partition.fetch.bytes to at least {_n(w.message_bytes)} (the default "
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
        arithmetic=f"{_setting(facts, 'fetch.max.bytes', 'B')} < "
        f"{_setting(facts, 'max.partition.fetch.bytes', 'B')} x {pp} partitions per member = "
        f"{_n(needed)} B",
        semantics="fetch.max.bytes caps a whole fetch response: partitions past the cap wait "
        "for the next round trip, so the member reads its partitions in turns.",
        change=f"set fetch.max.bytes to at least {_n(needed)}, or lower "
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
    return Finding(
        code="KT111", rule="auto-commit-async",
        group=facts.group, severity=Severity.WARNING,
        title="offsets are committed before the records are processed",
        arithmetic=f"{_setting(facts, 'enable.auto.commit')} with "
        f"mode async (commits every {_setting(facts, 'auto.commit.interval.ms', 'ms')})",
        semantics="Auto-commit commits the position (past the last record getmany() returned) "
        "from a background task; while the handler awaits, records not yet processed are "
        "committed, and a crash skips them.",
        change="set enable.auto.commit to false and commit after each processed batch "
        "(await consumer.commit())",
        value=1.0, limit=float(every),
    )  # fmt: skip


def poll_gap_near_limit(facts: Facts) -> Finding | None:
    """KT201: the observed longest gap between polls against max.poll.interval.ms."""
    o, interval = facts.observed, facts.ms("max.poll.interval.ms")
    if o is None or o.poll_interval_max_ms is None:
        return None
    gap = o.poll_interval_max_ms
    if gap < HEADROOM * interval:
        return None
    severity = Severity.RISK if gap >= interval else Severity.WARNING
    per_poll = (
        f"set max.poll.records to about {_n(o.records_per_poll * HEADROOM * interval / gap)} "
        f"(now {_n(o.records_per_poll)} per poll), or "
        if o.records_per_poll
        else "narrow max.poll.records, or "
    )
    return Finding(
        code="KT201", rule="poll-gap-near-limit",
        group=facts.group, severity=severity,
        title=f"the longest gap between polls was {_n(gap)} ms, "
        f"{gap / interval:.0%} of max.poll.interval.ms",
        arithmetic=f"longest gap between polls {_n(gap)} ms ({o.source}) / "
        f"{_setting(facts, 'max.poll.interval.ms', 'ms')} = {gap / interval:.0%}",
        semantics="A member that does not poll again within max.poll.interval.ms leaves the "
        "group; the group rebalances, and the member rejoins on its next poll.",
        change=f"{per_poll}raise max.poll.interval.ms to at least {_n(2 * gap)}",
        value=gap, limit=float(interval),
    )  # fmt: skip


def starved_fetches(facts: Facts) -> Finding | None:
    """KT202: fetches that take about fetch.max.wait.ms and bring few records."""
    o, wait = facts.observed, facts.ms("fetch.max.wait.ms")
    if o is None or o.fetch_latency_ms is None or wait <= 0:
        return None
    few = o.records_per_fetch is None or o.records_per_fetch < STARVED_RECORDS
    if o.fetch_latency_ms < STARVED_SHARE * wait or not few:
        return None
    records = "" if o.records_per_fetch is None else f", {o.records_per_fetch:,.1f} records each"
    return Finding(
        code="KT202", rule="starved-fetches",
        group=facts.group, severity=Severity.WARNING,
        title="fetches wait out fetch.max.wait.ms for a few records",
        arithmetic=f"fetch latency {_n(o.fetch_latency_ms)} ms ({o.source}) ≥ "
        f"{STARVED_SHARE:.0%} of {_setting(facts, 'fetch.max.wait.ms', 'ms')}{records}",
        semantics="The broker holds a fetch until fetch.min.bytes are ready or "
        "fetch.max.wait.ms passes; fetches that always take the wait found too little data.",
        change=f"lower fetch.max.wait.ms (the latency every record pays when traffic is low) "
        f"or fetch.min.bytes (now {_n(facts.ms('fetch.min.bytes'))})",
        value=o.fetch_latency_ms, limit=float(wait),
    )  # fmt: skip


def rebalancing(facts: Facts) -> Finding | None:
    """KT203: the group rebalanced."""
    o = facts.observed
    if o is None or not o.rebalances or o.rebalances <= 0:
        return None
    window = "" if o.window_s is None else f" in {o.window_s:,.0f} s"
    per_hour = "" if not o.window_s else f" = {o.rebalances * 3600 / o.window_s:,.0f} per hour"
    return Finding(
        code="KT203", rule="rebalancing",
        group=facts.group, severity=Severity.RISK,
        title=f"the group rebalanced {_count(o.rebalances, 'time')}{window}",
        arithmetic=f"{_count(o.rebalances, 'rebalance')}{window} ({o.source}){per_hour} > 0",
        semantics="Every rebalance stops the whole group: partitions are revoked, reassigned "
        "and fetched from the last committed offset, so work since the last commit repeats.",
        change="remove the cause: see the poll-gap (KT201) and blocked-loop (KT102) findings; "
        "otherwise members restarting or failing heartbeats",
        value=o.rebalances, limit=0.0,
    )  # fmt: skip


def lag_growing(facts: Facts) -> Finding | None:
    """KT204: lag that grows over the window."""
    o = facts.observed
    if o is None or o.lag_growth_per_s is None or o.lag_growth_per_s <= 1.0:
        return None
    return Finding(
        code="KT204", rule="lag-growing",
        group=facts.group, severity=Severity.WARNING,
        title=f"lag grows by {_n(o.lag_growth_per_s)} records/s",
        arithmetic=f"lag growth {o.lag_growth_per_s:,.1f} records/s ({o.source}) > 0",
        semantics="The topic is written faster than the group processes it: the lag, and every "
        "record's delay, grows without bound.",
        change="raise capacity: more partitions and members, cheaper processing, or larger "
        "batches where a per-batch cost dominates (max.poll.records)",
        value=o.lag_growth_per_s, limit=0.0,
    )  # fmt: skip


def poll_idle(facts: Facts) -> Finding | None:
    """KT205: the consumer mostly waits on fetches."""
    o = facts.observed
    if o is None or o.idle_ratio is None or o.idle_ratio < IDLE_RATIO or o.lag_max == 0:
        return None
    behind = o.lag_max is not None and o.lag_max > 0
    lag = f" with {_n(o.lag_max or 0)} records of lag" if behind else ""
    return Finding(
        code="KT205", rule="poll-idle",
        group=facts.group, severity=Severity.WARNING if behind else Severity.INFO,
        title=f"the consumer waits in poll {o.idle_ratio:.0%} of the time{lag}",
        arithmetic=f"poll idle ratio {o.idle_ratio:.2f} ({o.source}) ≥ {IDLE_RATIO}{lag}",
        semantics="Time inside poll is time waiting on fetches; with records waiting, the "
        "fetches are too small or too slow to keep the handler busy.",
        change="raise max.partition.fetch.bytes / fetch.max.bytes; lower fetch.max.wait.ms "
        f"if fetch.min.bytes (now {_n(facts.ms('fetch.min.bytes'))}) is rarely reached",
        value=o.idle_ratio, limit=IDLE_RATIO,
    )  # fmt: skip


RULES: tuple[Rule, ...] = (
    poll_work_over_interval, loop_blocked_past_session, heartbeat_vs_session,
    session_outside_bounds, long_failover, slow_stuck_detection, fetch_min_unfillable,
    partition_fetch_below_message, fetch_max_below_partitions, idle_members, auto_commit_async,
    poll_gap_near_limit, starved_fetches, rebalancing, lag_growing, poll_idle,
)  # fmt: skip


def advise(facts: Facts) -> tuple[Finding, ...]:
    """Every rule's finding for one group, worst first (then by code)."""
    found = [f for rule in RULES if (f := rule(facts)) is not None]
    return tuple(sorted(found, key=lambda f: (-f.severity.rank, f.code)))
