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

    lag: float
    """Records behind the partitions' ends, summed over its partitions."""
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

    @classmethod
    def between(cls, before: RegistrySnapshot, now: RegistrySnapshot) -> Second:
        """The second from `before` to `now`; a member without a lag reading yet is left out."""
        window = GroupWindow(before, now)
        idle = now.per_member(f"{PREFIX}poll_idle_ratio")
        empty = window.per_member_delta(f"{PREFIX}empty_polls_total")
        polls = window.per_member_delta(f"{PREFIX}poll_records_count")
        partitions = now.per_member(f"{PREFIX}assigned_partitions")
        members = {
            member: MemberSecond(
                lag=lag,
                idle_ratio=idle.get(member),
                empty_polls=empty.get(member, 0.0),
                polls=polls.get(member, 0.0),
                partitions=int(partitions.get(member, 0)),
            )
            for member, lag in now.per_member(f"{PREFIX}lag_records").items()
        }
        return cls(records_per_s=window.records_per_s, members=MappingProxyType(members))


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
) -> str | None:
    """Why the window measured the supply rather than the group, in words naming the first
    second that shows it; None when every second was capacity-bound.

    `produced_per_s` is the producer's rate over the window (None or 0: no live load).
    """
    for number, second in enumerate(seconds, 1):
        why = _waiting(second, settings, record_bytes, produced_per_s)
        if why is not None:
            return f"in second {number} of {len(seconds)}, {why}"
    return None


def _waiting(
    second: Second,
    settings: Mapping[str, object],
    record_bytes: float,
    produced_per_s: float | None,
) -> str | None:
    near_end = True
    for name, m in sorted(second.members.items()):
        carries = fetch_carries(settings, partitions=m.partitions, record_bytes=record_bytes)
        if m.lag <= 0 and m.empty_polls > 0:
            return (
                f"member {name} had nothing left to fetch (lag 0, {m.empty_polls:.0f} empty polls)"
            )
        polled = m.polls > 0 and m.idle_ratio is not None
        if m.lag <= carries and polled and (m.idle_ratio or 0.0) >= IDLE_WAITING:
            return (
                f"member {name} waited in poll {m.idle_ratio:.0%} of the time with {m.lag:,.0f} "
                f"records left to fetch, fewer than one fetch carries ({carries:,})"
            )
        near_end = near_end and m.lag <= carries
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

BACKLOG_MARGIN = 2.0
JOIN_ALLOWANCE_S = 5.0
"""Records consumed while the group joins, on top of warm-up and window, when sizing a backlog."""
MAX_BACKLOG_BYTES = 8 << 30


def backlog_for(spec: StudySpec, records_per_s: float) -> int:
    """The backlog that keeps a group at `records_per_s` busy through join, warm-up and window,
    with a margin (a member with a small share of the partitions runs dry first)."""
    seconds = JOIN_ALLOWANCE_S + spec.trial.warmup_s + spec.trial.measure_s
    return math.ceil(records_per_s * seconds * BACKLOG_MARGIN)


def peak_rate(result: TrialResult) -> float:
    """The fastest second of the window: the rate a backlog must be sized for."""
    return max((*result.intervals_records_per_s, result.throughput_records_per_s))


def grown_backlog(spec: StudySpec, result: TrialResult, records: int) -> int:
    """The next backlog after `result` waited on the supply with `records`: at least double,
    capped in bytes."""
    cap = max(MAX_BACKLOG_BYTES // spec.workload.mean_message_bytes, records)
    return min(max(2 * records, backlog_for(spec, peak_rate(result))), cap)
