"""A trial's steady-state phase: end-to-end latency under live load at a set rate, no backlog.

The capacity window drains a backlog written before the group joined, so its record timestamps
measure the records' age. Here a fresh group joins at the topic's end (`auto_offset_reset:
latest`) once the capacity group has left, and sees only what Locust produces from then on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from prometheus_client import CollectorRegistry

from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.consumer import ConsumerGroup, MemberSpec
from tuner.load.runner import LocustLoad
from tuner.metrics import GroupWindow, RegistrySnapshot
from tuner.metrics.phases import Observer, Phase
from tuner.trial.result import LatencyMs, SteadyState
from tuner.trial.window import each_second, warm_up

KEEP_UP_SLACK_S = 1.0
"""A group kept up if it consumed what the window produced, less this many seconds of the set
rate: records in flight and in a member's hands, whose counts reach us every 0.5 s."""


def kept_up(*, produced: int, consumed: int, target_records_per_s: float) -> bool:
    """Whether the group consumed the window's production, give or take `KEEP_UP_SLACK_S`."""
    return consumed >= produced - target_records_per_s * KEEP_UP_SLACK_S


async def run_steady(
    members: Sequence[MemberSpec],
    *,
    registry: CollectorRegistry,
    isolation: Literal["process", "task"],
    conn: Connection,
    load: LocustLoad,
    warmup_s: float,
    window_s: float,
    observer: Observer,
) -> tuple[SteadyState, tuple[str, ...]]:
    """Join `members` (a fresh group reading from the end), warm up (at least `warmup_s`, then
    until the group is measurable, as the capacity window's), measure `window_s`;
    returns the steady state and the errors the group reported. Raises `GroupError` if a
    member was killed from outside or the user's handler raised, as the capacity window does
    (`tuner.trial.window`): the window no longer measured the configuration."""
    group_id, topic = members[0].group_id, members[0].topic
    p = load.workload.producer
    target = p.users * p.rate_per_user
    async with ConsumerGroup(members, registry=registry, isolation=isolation) as group:
        observer(Phase.STEADY_JOIN, None)
        await group.wait_until_assigned(timeout_s=60)
        observer(Phase.STEADY_WARMUP, None)
        await warm_up(
            group, registry=registry, group_id=group_id, min_s=warmup_s, window_s=window_s
        )
        observer(Phase.STEADY, None)
        before = sum((await cluster.end_offsets(conn, topic)).values())

        def second(start: RegistrySnapshot, _: RegistrySnapshot, now: RegistrySnapshot) -> None:
            observer(Phase.STEADY, GroupWindow(start, now).records_per_s)

        measured = await each_second(
            window_s, group=group, load=load, registry=registry, group_id=group_id, second=second
        )
        after = sum((await cluster.end_offsets(conn, topic)).values())
    errors = [*measured.errors, *map(str, group.errors())]
    window = GroupWindow(measured.start, measured.end)
    produced, consumed = after - before, int(window.records)
    state = SteadyState(
        group_id=group_id,
        window_s=window.seconds,
        target_records_per_s=target,
        produced=produced,
        consumed=consumed,
        latency_ms=LatencyMs.of(window),
        kept_up=kept_up(produced=produced, consumed=consumed, target_records_per_s=target),
        rebalances=window.rebalances,
    )
    return state, tuple(errors)
