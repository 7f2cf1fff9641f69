"""Rules on what a run or Prometheus observed: poll gaps, starved fetches, rebalances, lag
and idle time (KT201-KT205)."""

from __future__ import annotations

from tuner.advice.batch import records_within
from tuner.advice.blocked import loop_blocked_past_session
from tuner.advice.facts import Facts
from tuner.advice.findings import Finding, Severity
from tuner.advice.liveness import HEADROOM, LEAVES_GROUP, no_batch_size_helps, stuck_ms
from tuner.advice.numbers import count, number, setting

STARVED_SHARE = 0.8
"""A fetch that takes this share of fetch.max.wait.ms waited for data that did not come."""
STARVED_RECORDS = 100
IDLE_RATIO = 0.5


def poll_gap_near_limit(facts: Facts) -> Finding | None:
    """KT201: the observed longest gap between polls against max.poll.interval.ms."""
    o, interval = facts.observed, facts.ms("max.poll.interval.ms")
    if o is None or o.poll_interval_max_ms is None:
        return None
    gap = o.poll_interval_max_ms
    if gap < HEADROOM * interval:
        return None
    severity = Severity.RISK if gap >= interval else Severity.WARNING
    w = facts.workload
    fits = 0 if w is None else records_within(w, HEADROOM * interval)
    if fits:
        per_poll = f"set max.poll.records to at most {number(fits)} (its p99 batch within half "
        per_poll += "of max.poll.interval.ms), or "
    elif w is not None:
        per_poll = f"{no_batch_size_helps(w)}; "
    elif o.records_per_poll:
        per_poll = (
            f"set max.poll.records to about "
            f"{number(o.records_per_poll * HEADROOM * interval / gap)} "
            f"(now {number(o.records_per_poll)} per poll), or "
        )
    else:
        per_poll = "narrow max.poll.records, or "
    stuck = stuck_ms(facts)
    if stuck is not None and stuck >= gap:
        title = f"a member had not polled for {number(gap)} ms when the window ended (stuck in "
        title += "one batch)"
        still = ", still open at the window's end"
    else:
        title, still = f"the longest gap between polls was {number(gap)} ms", ""
    return Finding(
        code="KT201", rule="poll-gap-near-limit",
        group=facts.group, severity=severity,
        title=f"{title}, {gap / interval:.0%} of max.poll.interval.ms",
        arithmetic=f"longest gap between polls {number(gap)} ms ({o.source}){still} / "
        f"{setting(facts, 'max.poll.interval.ms', 'ms')} = {gap / interval:.0%}",
        semantics=f"{LEAVES_GROUP}; the group rebalances, and the member rejoins on its next "
        "poll.",
        change=f"{per_poll}raise max.poll.interval.ms to at least {number(2 * gap)}",
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
        arithmetic=f"fetch latency {number(o.fetch_latency_ms)} ms ({o.source}) ≥ "
        f"{STARVED_SHARE:.0%} of {setting(facts, 'fetch.max.wait.ms', 'ms')}{records}",
        semantics="The broker holds a fetch until fetch.min.bytes are ready or "
        "fetch.max.wait.ms passes; fetches that always take the wait found too little data.",
        change=f"lower fetch.max.wait.ms (the latency every record pays when traffic is low) "
        f"or fetch.min.bytes (now {number(facts.ms('fetch.min.bytes'))})",
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
        title=f"the group rebalanced {count(o.rebalances, 'time')}{window}",
        arithmetic=f"{count(o.rebalances, 'rebalance')}{window} ({o.source}){per_hour} > 0",
        semantics="Every rebalance stops the whole group: partitions are revoked, reassigned "
        "and fetched from the last committed offset, so work since the last commit repeats.",
        change=_rebalance_cause(facts),
        value=o.rebalances, limit=0.0,
    )  # fmt: skip


def _rebalance_cause(facts: Facts) -> str:
    """The findings of this run that explain a rebalance, with their numbers; never one that
    did not fire."""
    found = [f for f in (poll_gap_near_limit(facts), loop_blocked_past_session(facts)) if f]
    if not found:
        return (
            "no measured gap between polls or held event loop explains it: look for members "
            "restarting or leaving, heartbeats lost on the network, or a broker failover"
        )
    return "remove the cause: " + "; ".join(f"{f.title} ({f.code})" for f in found)


def lag_growing(facts: Facts) -> Finding | None:
    """KT204: lag that grows over the window."""
    o = facts.observed
    if o is None or o.lag_growth_per_s is None or o.lag_growth_per_s <= 1.0:
        return None
    return Finding(
        code="KT204", rule="lag-growing",
        group=facts.group, severity=Severity.WARNING,
        title=f"lag grows by {number(o.lag_growth_per_s)} records/s",
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
    lag = f" with {number(o.lag_max or 0)} records of lag" if behind else ""
    return Finding(
        code="KT205", rule="poll-idle",
        group=facts.group, severity=Severity.WARNING if behind else Severity.INFO,
        title=f"the consumer waits in poll {o.idle_ratio:.0%} of the time{lag}",
        arithmetic=f"poll idle ratio {o.idle_ratio:.2f} ({o.source}) ≥ {IDLE_RATIO}{lag}",
        semantics="Time inside poll is time waiting on fetches; with records waiting, the "
        "fetches are too small or too slow to keep the handler busy.",
        change="raise max.partition.fetch.bytes / fetch.max.bytes; lower fetch.max.wait.ms "
        f"if fetch.min.bytes (now {number(facts.ms('fetch.min.bytes'))}) is rarely reached",
        value=o.idle_ratio, limit=IDLE_RATIO,
    )  # fmt: skip
