"""Was a window capacity-bound? The one judgement every path that measures a group relies on,
and the backlog that the next attempt needs when it was not.

Throughput means the group's capacity only while every member works on its own processing and
fetching. A member that waits on the supply instead — its backlog ran out, or under live load it
caught up with the producer — measures how fast records arrive, and the group's rate falls with
it. `tuner run`, the study's trials, the ablation, the confirmation and the benchmarks all read
the verdict from `TrialResult.backlog_emptied`, which the trial sets from `waited_on_supply`.

Under live load the signs a drained backlog leaves without it do not show: polls are never empty
(a few fresh records arrive each time) and lag is rarely exactly 0. What shows in either case is
a member whose next fetch would bring all there is (its lag is less than one fetch carries) and
which sits in poll waiting for it, or a group that consumed what the producer wrote (within
10%) while every member was within one fetch of the end. A capacity-bound member is busy, or has
more records waiting than one fetch carries; a capacity-bound group slower than its producer
falls behind it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from tuner.config import StudySpec
from tuner.metrics import PREFIX, GroupWindow, RegistrySnapshot
from tuner.trial.measurable import LENGTHEN_FACTOR
from tuner.trial.result import TrialResult

IDLE_WAITING = 0.5
"""A member that spends at least this share of its loop inside poll waits on its fetches; with
its lag under one fetch, what it waits for is records that do not exist yet."""
KEEPING_UP = (0.9, 1.1)
"""A second in which the group consumed within these multiples of the producer's rate, every
member within one fetch of the end, kept up with the producer: it consumed what arrived. A group
slower than the producer falls behind it, which is its capacity showing."""
PARTITION_FETCH_DEFAULT = 1 << 20
FETCH_MAX_DEFAULT = 50 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSecond:
    """One member at the end of one second of the window."""

    lag: float | None
    """Records behind the partitions' ends, summed over its partitions (None: its client reads
    no lag, as a service's does not; the group's records left bound it from above)."""
    idle_ratio: float | None
    """Share of its loop spent inside poll (None: it has not polled twice yet)."""
    empty_polls: float
    """Polls in the second that returned nothing."""
    partitions: int
    polls: float = 1.0
    """Polls in the second. A member inside one long batch all second polled none: its idle
    ratio is the one its last poll left, not what it did this second."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Second:
    """What the group and each member showed in one second of the window."""

    records_per_s: float
    members: Mapping[str, MemberSecond]
    consumed_total: float = 0.0
    """Records the group had been handed since it joined, at the second's end."""

    @classmethod
    def between(cls, before: RegistrySnapshot, now: RegistrySnapshot) -> Second:
        """The second from `before` to `now`. A member without a lag reading yet is left out,
        unless no member reads lag at all (a service's client): then each member with
        partitions is in, its lag None."""
        window = GroupWindow(before, now)
        idle = now.per_member(f"{PREFIX}poll_idle_ratio")
        empty = window.per_member_delta(f"{PREFIX}empty_polls_total")
        polls = window.per_member_delta(f"{PREFIX}poll_records_count")
        partitions = now.per_member(f"{PREFIX}assigned_partitions")
        lags: Mapping[str, float | None] = now.per_member(f"{PREFIX}lag_records") or dict.fromkeys(
            partitions
        )
        members = {
            member: MemberSecond(
                lag=lag,
                idle_ratio=idle.get(member),
                empty_polls=empty.get(member, 0.0),
                polls=polls.get(member, 0.0),
                partitions=int(partitions.get(member, 0)),
            )
            for member, lag in lags.items()
        }
        return cls(
            records_per_s=window.records_per_s,
            members=MappingProxyType(members),
            consumed_total=now.total(f"{PREFIX}records_consumed_total"),
        )


def fetch_carries(settings: Mapping[str, object], *, partitions: int, record_bytes: float) -> int:
    """Records one fetch can carry to a member of `partitions` partitions: each partition up to
    max.partition.fetch.bytes, the whole response up to fetch.max.bytes."""
    per_partition = settings.get("max.partition.fetch.bytes")
    whole = settings.get("fetch.max.bytes")
    per_partition = per_partition if isinstance(per_partition, int) else PARTITION_FETCH_DEFAULT
    whole = whole if isinstance(whole, int) else FETCH_MAX_DEFAULT
    return int(min(whole, max(partitions, 1) * per_partition) // max(record_bytes, 1.0))


def waited_on_supply(
    seconds: Sequence[Second],
    *,
    settings: Mapping[str, object],
    record_bytes: float,
    produced_per_s: float | None,
    end_offsets_total: int | None = None,
) -> str | None:
    """Why the window measured the supply rather than the group, in words naming the first
    second that shows it; None when every second was capacity-bound.

    `produced_per_s` is the producer's rate over the window (None or 0: no live load).
    `end_offsets_total` is the topic's end after the window: for members that read no lag,
    the group's records left at a second's end (that less what it had consumed, the group
    reading from the start) bounds each one's lag from above; it only grows, so an earlier
    second's bound is loose, never short. Without it such members show no lag.
    """
    for number, second in enumerate(seconds, 1):
        left = (
            None if end_offsets_total is None else max(end_offsets_total - second.consumed_total, 0)
        )
        why = _waiting(second, settings, record_bytes, produced_per_s, left)
        if why is not None:
            return f"in second {number} of {len(seconds)}, {why}"
    return None


def _waiting(
    second: Second,
    settings: Mapping[str, object],
    record_bytes: float,
    produced_per_s: float | None,
    group_left: float | None = None,
) -> str | None:
    near_end = True
    for name, m in sorted(second.members.items()):
        carries = fetch_carries(settings, partitions=m.partitions, record_bytes=record_bytes)
        lag = m.lag if m.lag is not None else group_left
        if lag is None:  # nothing says how much it had left
            near_end = False
            continue
        left = f"lag {lag:,.0f}" if m.lag is not None else f"the group's records left {lag:,.0f}"
        if lag <= 0 and m.empty_polls > 0:
            return (
                f"member {name} had nothing left to fetch ({left}, {m.empty_polls:.0f} empty polls)"
            )
        polled = m.polls > 0 and m.idle_ratio is not None
        if lag <= carries and polled and (m.idle_ratio or 0.0) >= IDLE_WAITING:
            return (
                f"member {name} waited in poll {m.idle_ratio:.0%} of the time with {left}, "
                f"fewer than one fetch carries ({carries:,})"
            )
        near_end = near_end and lag <= carries
    if (
        produced_per_s
        and second.members
        and near_end
        and KEEPING_UP[0] <= second.records_per_s / produced_per_s <= KEEPING_UP[1]
    ):
        return (
            f"the group consumed {second.records_per_s:,.0f} records/s, what the producer wrote "
            f"({produced_per_s:,.0f}/s), every member within one fetch of the end"
        )
    return None


# --- sizing the backlog, so that the next window is capacity-bound ----------------------

SAFETY = 2.0
"""Records sized for the measured rate are multiplied by this: a member with a small share of
the partitions (or of Zipf-skewed keys) runs dry before the group's total says it would, and a
rate seen in the warm-up (the prefill producer beside it) is below the window's."""
JOIN_ALLOWANCE_S = 5.0
"""Records consumed while the group joins, on top of warm-up and window, when sizing a backlog."""
MARGIN_S = 3.0
"""Seconds of consumption past the window's end the backlog holds: the window may open late (the
warm-up waits for the top-up) and its last second must still be capacity-bound."""
TOP_UP_SLACK = 0.1
PRODUCER_LEAD = 0.8
"""A top-up while the group reads needs a producer clearly faster than the group: at more than
this share of the producer's rate, the group eats most of what is written as it is written."""
CHUNK_S = 2.0
CHUNK_BYTES = 256 << 20
TOP_UP_LIMIT_S = 20.0
MAX_BACKLOG_BYTES = 8 << 30
"""The largest backlog the tool writes to a trial's topic."""
FIRST_BACKLOG_BYTES = 1 << 20
FIRST_BACKLOG_RECORDS = 2_000
"""Without `workload.prefill_records` or a measured rate the first backlog is small (at most
this many records, or this many bytes): enough for the group to show its rate in the warm-up,
after which it is topped up; a group at 50 records/s never waits for a backlog it cannot read."""


def records_for(records_per_s: float, seconds: float) -> int:
    """Records a group at `records_per_s` consumes in `seconds`, with the `SAFETY` factor."""
    return math.ceil(max(records_per_s, 0.0) * max(seconds, 0.0) * SAFETY)


def longest_window_s(spec: StudySpec) -> float:
    """The longest window a trial may run: a window of too few batches is lengthened up to
    `measurable.LENGTHEN_FACTOR` times `trial.measure_s` (a backlog sized for the shorter one
    ran dry in the longer, and the trial ran again)."""
    return LENGTHEN_FACTOR * spec.trial.measure_s


def backlog_for(spec: StudySpec, records_per_s: float) -> int:
    """The backlog to write before the group joins: it keeps a group at `records_per_s` busy
    through join, warm-up, the longest window and margin, times `SAFETY`."""
    t = spec.trial
    return records_for(
        records_per_s, JOIN_ALLOWANCE_S + t.warmup_s + longest_window_s(spec) + MARGIN_S
    )


def cap_records(spec: StudySpec) -> int:
    """The most records a trial's topic is filled to: `MAX_BACKLOG_BYTES` of its records."""
    return max(1, MAX_BACKLOG_BYTES // max(spec.workload.mean_message_bytes, 1))


def first_backlog(spec: StudySpec, records_per_s: float = 0.0) -> int:
    """The backlog before a trial's group joins: the user's `workload.prefill_records` as the
    least, sized for `records_per_s` (the fastest rate seen on this workload) when one is known,
    else a small first backlog that the warm-up's top-up grows; never past the byte cap."""
    fixed = spec.workload.prefill_records
    small = min(
        FIRST_BACKLOG_RECORDS, FIRST_BACKLOG_BYTES // max(spec.workload.mean_message_bytes, 1)
    )
    sized = backlog_for(spec, records_per_s) if records_per_s > 0 else max(small, 1)
    return min(max(sized, fixed or 0), max(cap_records(spec), fixed or 0))


def top_up(
    *, ahead: int, consumes_per_s: float, produces_per_s: float, seconds: float
) -> int | None:
    """Records to write now so that a group consuming `consumes_per_s` still has work after
    `seconds` (times `SAFETY`), with `ahead` records unread and a producer writing
    `produces_per_s` (0: not measured yet) while the group reads on; None when the producer is
    no faster than the group, so writing while it reads cannot get ahead of it.

    A deficit under `TOP_UP_SLACK` of what is needed is left (0): the safety factor covers it,
    and a small write costs the producer's start-up for little."""
    need = records_for(consumes_per_s, seconds)
    deficit = need - ahead
    if deficit <= TOP_UP_SLACK * need:
        return 0
    if produces_per_s <= 0:
        return deficit
    if consumes_per_s >= PRODUCER_LEAD * produces_per_s:
        return None
    return math.ceil(deficit / (1.0 - consumes_per_s / produces_per_s))


def chunk(records: int, *, produces_per_s: float, spec: StudySpec) -> int:
    """The next write of a top-up of `records`: at most `CHUNK_S` of the producer's rate (or
    `CHUNK_BYTES` while it is not known), so that both rates are measured again before the
    rest is written (the producer slows the group it writes beside, and itself)."""
    most = CHUNK_BYTES // max(spec.workload.mean_message_bytes, 1)
    if produces_per_s > 0:
        most = min(most, math.ceil(produces_per_s * CHUNK_S))
    return max(min(records, most), 1)


def top_up_limit_s(spec: StudySpec) -> float:
    """How long the warm-up may be extended to top the backlog up."""
    return max(TOP_UP_LIMIT_S, 2 * spec.trial.measure_s)


def out_of_time(spec: StudySpec, *, consumed_per_s: float, ahead: int) -> str:
    """Words for a top-up that did not get the group's window ahead of it in time."""
    return (
        f"topping up for {top_up_limit_s(spec):g} s left {ahead:,} records ahead of a group at "
        f"{consumed_per_s:,.0f} records/s; {backlog_for(spec, consumed_per_s):,} records "
        "written before it joins would do"
    )


def peak_rate(result: TrialResult) -> float:
    """The fastest second of the window: the rate a backlog must be sized for."""
    return max((*result.intervals_records_per_s, result.throughput_records_per_s))


def seen_rate(spec: StudySpec, result: TrialResult) -> float:
    """The least the group can consume, from a window that may have seen nothing: its fastest
    second, or every record it consumed since it joined over warm-up and window (a window
    that opened on a drained backlog still shows what the warm-up read); at least 1."""
    since_join = result.offsets.consumed_total / max(spec.trial.warmup_s + result.window_s, 1.0)
    return max(peak_rate(result), since_join, 1.0)


def needed(spec: StudySpec, result: TrialResult, records_per_s: float = 0.0) -> int:
    """The `workload.prefill_records` that would have kept the window capacity-bound, from
    the fastest rate seen (`records_per_s`, or what `result` shows); never 0."""
    return max(backlog_for(spec, max(records_per_s, seen_rate(spec, result))), 1)


def producer_too_slow(spec: StudySpec, *, consumed_per_s: float, produced_per_s: float) -> str:
    """Words for a group that reads as fast as the prefill producer writes."""
    return (
        f"the prefill producer wrote {produced_per_s:,.0f} records/s, no faster than the group "
        f"read ({consumed_per_s:,.0f}/s), so topping up while it reads cannot get ahead of it; "
        f"{backlog_for(spec, consumed_per_s):,} records written before it joins would do"
    )


def over_cap(spec: StudySpec, records_per_s: float) -> str:
    """Words for a backlog the byte cap does not allow, and the window that would fit."""
    t, cap = spec.trial, cap_records(spec)
    need = backlog_for(spec, records_per_s)
    fits_s = cap / max(records_per_s * SAFETY, 1.0) - JOIN_ALLOWANCE_S - t.warmup_s - MARGIN_S
    instead = (
        f"trial.measure_s: {math.floor(fits_s):d} would fit"
        if fits_s >= 1
        else "a larger per-record cost or live load (workload.producer) would"
    )
    return (
        f"a {t.measure_s:g} s window at {records_per_s:,.0f} records/s needs {need:,} records "
        f"({need * spec.workload.mean_message_bytes / 1e9:,.1f} GB), over the "
        f"{MAX_BACKLOG_BYTES >> 30} GiB a trial's topic may hold ({cap:,} records); {instead}"
    )
