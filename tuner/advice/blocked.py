"""KT102: a handler that holds aiokafka's event loop, and with it the heartbeats, past
session.timeout.ms.

How long the loop is held at a stretch is not one batch: `getmany()` hands out records aiokafka
already buffered without awaiting anything, so a `cpu` handler that awaits nothing between
polls (auto-commit) holds the loop until every record of the last fetch is processed, however
small max.poll.records is. Only an await that waits (a commit after each batch) lets the
heartbeat task run between polls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuner.advice.batch import BatchTime, batch_time, largest_within, records_within
from tuner.advice.facts import Facts, Workload
from tuner.advice.findings import Finding, Severity
from tuner.advice.liveness import HEADROOM, measured_gap, no_batch_size_helps, poll_work
from tuner.advice.numbers import number, seconds, setting
from tuner.clients import client_named

OFF_THE_LOOP = (
    "run CPU work off the loop (asyncio.to_thread or a process pool; here: "
    "consumer.processing.mode async)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopHold:
    """How long a `cpu` handler holds the event loop at a stretch, and why that long."""

    time: BatchTime
    why: str
    yields: bool
    """Something between polls waits (a commit), so the loop is held for one poll's batch."""
    per_poll: int


def loop_hold(facts: Facts, w: Workload) -> LoopHold:
    """With auto-commit off we take it the application commits after each batch (as the
    tuner's members do, and KT111 advises): that commit waits, and frees the loop."""
    work = poll_work(facts, w)
    if facts.settings["enable.auto.commit"] is not True:
        why = "a commit after each poll waits, which frees the loop: it is held for one batch"
        return LoopHold(time=work.batch, why=why, yields=True, per_poll=work.records)
    polls = math.ceil(work.fetched / max(work.records, 1))
    if polls == 1:
        why = "the loop is held for a whole batch"
        return LoopHold(time=work.batch, why=why, yields=False, per_poll=work.records)
    why = (
        "getmany() hands out aiokafka's buffered records without awaiting and auto-commit waits "
        f"on nothing between polls: the loop is held until one fetch's {number(work.fetched)} "
        f"records are processed ({number(polls)} polls of ≤ {number(work.records)})"
    )
    time = batch_time(w, work.fetched, batches=polls)
    return LoopHold(time=time, why=why, yields=False, per_poll=work.records)


def _fetch_cap(facts: Facts, w: Workload, hold: LoopHold, budget_ms: float) -> str:
    """With nothing awaited between polls, the records one fetch brings are the lever."""

    def drained_ms(n: int) -> float:
        return batch_time(w, n, batches=math.ceil(n / max(min(hold.per_poll, n), 1))).at_quantile_ms

    most = largest_within(drained_ms, budget_ms, w) if w.per_record_ms > 0 else 0
    pp = w.partitions_per_member
    if most < pp:
        return ""
    cap = most * w.message_bytes // pp
    partitions = f"{pp} partition{'s' if pp > 1 else ''}"
    return (
        f"; or cap what one fetch brings at {number(most)} records: max.partition.fetch.bytes ≤ "
        f"{number(cap)} ({number(most)} records / {partitions} x {number(w.message_bytes)} B; "
        f"now {setting(facts, 'max.partition.fetch.bytes')}; a fetch still brings one whole "
        "producer batch per partition, KIP-74, so the producers' batch.size must be smaller)"
    )


def _change(facts: Facts, w: Workload, hold: LoopHold, blocked_ms: float) -> str:
    budget = HEADROOM * facts.ms("session.timeout.ms")
    fits = records_within(w, budget)
    if fits > 0 and hold.yields:
        return f"{OFF_THE_LOOP}, or poll max.poll.records ≤ {number(fits)} (its p99 within half "
        "the session)"
    if fits > 0:
        return (
            f"{OFF_THE_LOOP}{_fetch_cap(facts, w, hold, budget)}; or await between polls (commit "
            f"after each batch with enable.auto.commit false, or asyncio.sleep(0)) and poll "
            f"max.poll.records ≤ {number(fits)}: with auto-commit nothing waits between polls "
            "and getmany() hands out buffered records without awaiting, so a smaller "
            "max.poll.records alone does not free the loop"
        )
    needed, most = 2 * blocked_ms, facts.limits.group_max_session_timeout_ms
    longer = (
        f"raise session.timeout.ms to at least {number(needed)} (heartbeat.interval.ms below a "
        "third of it)"
        if needed <= most
        else f"a session of {number(needed)} ms is past the broker's "
        f"group.max.session.timeout.ms {number(most)}"
    )
    return f"{no_batch_size_helps(w)}: {OFF_THE_LOOP}, or {longer}"


def loop_blocked_past_session(facts: Facts) -> Finding | None:
    """KT102: the event loop held against session.timeout.ms, judged on what a run measured
    (the loop itself, else the gap between polls) where it measured it."""
    if not client_named(facts.client).heartbeats_on_the_loop:
        return None  # librdkafka heartbeats on its own thread: a held loop delays no heartbeat
    w, o, session = facts.workload, facts.observed, facts.ms("session.timeout.ms")
    loop = None if o is None else o.loop_blocked_max_ms
    if w is not None and w.mode == "async" and loop is None:
        return None
    hold = None if w is None or w.mode != "cpu" else loop_hold(facts, w)
    predicted = "" if hold is None else f"; predicted: {hold.why}, the {hold.time.text}"
    gap = measured_gap(facts)
    certain = loop is not None or hold is not None
    if o is not None and loop is not None:
        blocked_ms = loop
        arithmetic = f"the event loop was held up to {number(loop)} ms ({o.source}: a timer on it "
        arithmetic += f"fired that late){predicted}"
    elif gap is not None:
        blocked_ms = gap[0]
        arithmetic = f"longest gap between polls {number(blocked_ms)} ms ({gap[1]}){predicted}"
    elif hold is not None:
        blocked_ms = hold.time.at_quantile_ms
        arithmetic = f"mode cpu: {hold.why}, the {hold.time.text}"
    else:
        return None
    if blocked_ms < (HEADROOM * session if certain else session):
        return None
    change = (
        _change(facts, w, hold, blocked_ms)
        if w is not None and hold is not None
        else f"{OFF_THE_LOOP}, or poll smaller batches (max.poll.records)"
    )
    severity = Severity.RISK if blocked_ms >= session and certain else Severity.WARNING
    return Finding(
        code="KT102", rule="loop-blocked-past-session",
        group=facts.group, severity=severity,
        title=f"the handler blocks the event loop for {seconds(blocked_ms)}, against the "
        "session timeout"
        if certain
        else f"polls came {seconds(blocked_ms)} apart: too long for the session timeout if the "
        "handler blocks the event loop",
        arithmetic=f"{arithmetic} against {setting(facts, 'session.timeout.ms', 'ms')} "
        f"({blocked_ms / session:.0%})",
        semantics="aiokafka heartbeats from a task on the consumer's own event loop (Java has a "
        "heartbeat thread): a handler that holds the loop past session.timeout.ms sends no "
        "heartbeat meanwhile, and the coordinator evicts the member.",
        change=change, value=blocked_ms, limit=float(session),
    )  # fmt: skip
