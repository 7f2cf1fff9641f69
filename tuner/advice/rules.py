"""The rules, one small function each (facts in, a finding or none out), and `advise`, which
runs them all. Each rule states its Kafka semantics once; thresholds are named constants, so
a finding's arithmetic and the tests read the same numbers."""

from __future__ import annotations

from collections.abc import Callable

from tuner.advice.blocked import loop_blocked_past_session
from tuner.advice.facts import Facts
from tuner.advice.fetching import (
    auto_commit_async,
    fetch_max_below_partitions,
    fetch_min_unfillable,
    idle_members,
    partition_fetch_below_message,
)
from tuner.advice.findings import Finding
from tuner.advice.liveness import (
    HEADROOM,
    heartbeat_vs_session,
    long_failover,
    poll_work,
    poll_work_over_interval,
    session_outside_bounds,
    slow_stuck_detection,
)
from tuner.advice.observed import (
    IDLE_RATIO,
    lag_growing,
    poll_gap_near_limit,
    poll_idle,
    rebalancing,
    starved_fetches,
)
from tuner.advice.prefetch import prefetch_memory
from tuner.advice.protocol import kip848_client_settings

Rule = Callable[[Facts], Finding | None]

RULES: tuple[Rule, ...] = (
    poll_work_over_interval, loop_blocked_past_session, heartbeat_vs_session,
    session_outside_bounds, long_failover, slow_stuck_detection, fetch_min_unfillable,
    partition_fetch_below_message, fetch_max_below_partitions, idle_members, auto_commit_async,
    poll_gap_near_limit, starved_fetches, rebalancing, lag_growing, poll_idle, prefetch_memory,
    kip848_client_settings,
)  # fmt: skip

__all__ = [
    "HEADROOM", "IDLE_RATIO", "RULES", "Rule", "advise", "auto_commit_async",
    "fetch_max_below_partitions", "fetch_min_unfillable", "heartbeat_vs_session", "idle_members",
    "kip848_client_settings",
    "lag_growing", "long_failover", "loop_blocked_past_session", "partition_fetch_below_message",
    "poll_gap_near_limit", "poll_idle", "poll_work", "poll_work_over_interval",
    "prefetch_memory", "rebalancing",
    "session_outside_bounds", "slow_stuck_detection", "starved_fetches",
]  # fmt: skip


def advise(facts: Facts) -> tuple[Finding, ...]:
    """Every rule's finding for one group, worst first (then by code)."""
    found = [f for rule in RULES if (f := rule(facts)) is not None]
    return tuple(sorted(found, key=lambda f: (-f.severity.rank, f.code)))
