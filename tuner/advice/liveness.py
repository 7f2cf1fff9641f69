"""Rules on staying in the group: a poll's work against max.poll.interval.ms, a blocked
event loop, heartbeats and session timeouts (KT101-KT106)."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.advice.batch import BatchTime, batch_time, records_within
from tuner.advice.facts import Facts, Workload
from tuner.advice.findings import Finding, Severity
from tuner.advice.numbers import number, seconds, setting
from tuner.consumer import LAG_STALE_S
from tuner.settings import heartbeat_too_slow, session_in_bounds

HEADROOM = 0.5
"""A batch (or gap between polls) past this share of its limit is a warning."""
LEAVES_GROUP = "A member that does not poll again within max.poll.interval.ms leaves the group"
LONG_SESSION_MS = 30_000
LONG_POLL_INTERVAL_MS = 60_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWork:
    """The most records one poll can hand out, and the time to process them."""

    records: int
    records_text: str
    batch: BatchTime
    fetched: int
    """The records one fetch brings this member (what aiokafka buffers at a time)."""


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
        f"min({setting(facts, 'fetch.max.bytes')}, {setting(facts, 'max.partition.fetch.bytes')}"
        f" x {pp} partitions per member) / {number(w.message_bytes)} B per record = "
        f"{number(by_fetch)}"
    )
    if limit is not None:
        records_text = (
            f"min({setting(facts, 'max.poll.records')}, {records_text}) = {number(records)}"
        )
    return PollWork(
        records=records, records_text=records_text, batch=batch_time(w, records), fetched=by_fetch
    )


STUCK_MS = LAG_STALE_S * 1000
"""A gap between polls still open this long when the window ended: a member stuck in one batch."""


def stuck_ms(facts: Facts) -> float | None:
    """How long a member had not polled when the window ended, if that is a member stuck in
    one batch (its gap open past `STUCK_MS`); None otherwise."""
    o = facts.observed
    if o is None or o.open_gap_ms is None or o.open_gap_ms < STUCK_MS:
        return None
    return o.open_gap_ms


def measured_gap(facts: Facts) -> tuple[float, str] | None:
    """The longest gap between polls a run or Prometheus measured, and where it came from."""
    o = facts.observed
    if o is None or o.poll_interval_max_ms is None:
        return None
    return o.poll_interval_max_ms, o.source


def _measured_text(gap: tuple[float, str] | None, limit: float) -> str:
    if gap is None:
        return ""
    return (
        f"; measured: longest gap between polls {number(gap[0])} ms ({gap[1]}), "
        f"{gap[0] / limit:.0%}, and the finding goes by it"
    )


def no_batch_size_helps(w: Workload) -> str:
    """Why the batch size cannot bring a batch's time under a limit."""
    one = batch_time(w, 1)
    if w.per_record_ms <= 0:
        return f"no max.poll.records helps: the cost is all per batch ({number(w.per_batch_ms)} ms)"
    return (
        f"no max.poll.records helps: a batch of one record already takes "
        f"{seconds(one.at_quantile_ms)} at p99 ({number(w.per_batch_ms)} ms of it per batch)"
    )


def poll_work_over_interval(facts: Facts) -> Finding | None:
    """KT101: a full poll's processing time against max.poll.interval.ms, judged on the
    longest gap between polls where a run measured it."""
    w = facts.workload
    if w is None or (w.per_record_ms <= 0 and w.per_batch_ms <= 0):
        return None
    work, interval = poll_work(facts, w), facts.ms("max.poll.interval.ms")
    predicted, gap = work.batch.at_quantile_ms, measured_gap(facts)
    judged = predicted if gap is None else gap[0]
    if judged < HEADROOM * interval:
        return None
    severity = Severity.RISK if judged >= interval else Severity.WARNING
    fits = records_within(w, HEADROOM * interval)
    raise_it = f"raise max.poll.interval.ms to at least {number(2 * judged)}"
    if fits == 0:
        change = f"{no_batch_size_helps(w)}: {raise_it}, or make each batch cheaper"
    elif fits >= work.records:
        change = (
            f"the batch's own time fits; the gap comes from elsewhere (fetch waits, "
            f"commits, a stalled host): {raise_it}"
        )
    else:
        change = (
            f"set max.poll.records to at most {number(fits)} (its p99 within half of "
            f"max.poll.interval.ms), or {raise_it}"
        )
    title = (
        f"a full poll takes {seconds(predicted)} to process ({work.batch.label})"
        if gap is None
        else f"polls came {seconds(gap[0])} apart (measured; a full poll predicts "
        f"{seconds(predicted)} at p99)"
    )
    return Finding(
        code="KT101", rule="poll-work-over-interval",
        group=facts.group, severity=severity,
        title=f"{title}, {judged / interval:.0%} of max.poll.interval.ms",
        arithmetic=f"records per poll ≤ {work.records_text}; {work.batch.text} against "
        f"{setting(facts, 'max.poll.interval.ms', 'ms')} ({predicted / interval:.0%})"
        f"{_measured_text(gap, interval)}",
        semantics=f"{LEAVES_GROUP} and its partitions move (a rebalance); aiokafka's default "
        "max.poll.records is unlimited, so a poll hands out everything prefetched.",
        change=change, value=judged, limit=float(interval),
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
        arithmetic=f"{setting(facts, 'heartbeat.interval.ms', 'ms')} x 3 = {number(3 * heartbeat)} "
        f"≥ {setting(facts, 'session.timeout.ms', 'ms')}",
        semantics="The coordinator evicts a member it has not heard from for "
        "session.timeout.ms; with fewer than three heartbeats in that time, one late or lost "
        "heartbeat is enough.",
        change=f"set heartbeat.interval.ms to at most {number((session - 1) // 3)} "
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
        arithmetic=f"{setting(facts, 'session.timeout.ms', 'ms')} not in the broker's "
        f"[group.min.session.timeout.ms {number(lo)}, group.max.session.timeout.ms {number(hi)}]",
        semantics="The coordinator rejects a JoinGroup whose session timeout is outside its "
        "bounds (INVALID_SESSION_TIMEOUT): the consumer never gets a partition.",
        change=f"set session.timeout.ms within [{number(lo)}, {number(hi)}]",
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
        title=f"a member that dies holds its partitions for up to {seconds(session)}",
        arithmetic=f"{setting(facts, 'session.timeout.ms', 'ms')} = {seconds(session)} > "
        f"{seconds(LONG_SESSION_MS)}",
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
    o, stuck = facts.observed, stuck_ms(facts)
    if stuck is not None:
        seen = (
            f" (a member had not polled for {seconds(stuck)} when the window ended: stuck in "
            f"one batch, it keeps its partitions for up to {seconds(interval)})"
        )
    elif o is not None and o.poll_interval_max_ms:
        seen = f" (the longest gap observed was {number(o.poll_interval_max_ms)} ms)"
    else:
        seen = ""
    return Finding(
        code="KT106", rule="slow-stuck-detection",
        group=facts.group, severity=Severity.INFO,
        title=f"a stuck consumer keeps its partitions for {seconds(interval)}",
        arithmetic=f"{setting(facts, 'max.poll.interval.ms', 'ms')} = {seconds(interval)} > "
        f"{seconds(LONG_POLL_INTERVAL_MS)}",
        semantics="A member whose handler hangs keeps heartbeating (apart from the handler: "
        "aiokafka's task, librdkafka's thread) and keeps its partitions until "
        "max.poll.interval.ms passes without a poll.",
        change=f"set max.poll.interval.ms to a few times your slowest batch{seen}",
        value=float(interval), limit=float(LONG_POLL_INTERVAL_MS),
    )  # fmt: skip
