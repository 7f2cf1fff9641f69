"""The warm-up and the per-second window loop both phases of a trial measure with (capacity
and steady state).

The warm-up lasts `trial.warmup_s` at least, then until the group is measurable
(`tuner.trial.measurable`), at most `extra_warmup_s` more.

Each second it snapshots the group's instruments, hands the second to the phase, and checks
that the window still measures the configuration: no member killed from outside, the user's
handler has not raised, the producer is alive. One loop, so a check added here holds in both
phases (the steady copy once lacked the handler check, and a handler raising there made the
trial merely infeasible instead of failing it with the handler's traceback).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from prometheus_client import CollectorRegistry

from tuner.consumer import Group, GroupError
from tuner.consumer.messages import Progress
from tuner.load.runner import LocustLoad
from tuner.metrics import PREFIX, GroupWindow, RegistrySnapshot
from tuner.trial import measurable

log = logging.getLogger(__name__)
MEASURABLE_POLL_S = 0.05

Second = Callable[[RegistrySnapshot, RegistrySnapshot, RegistrySnapshot], None]
"""Called after each second with the window's start, the second's start and its end."""


def snapshot(registry: CollectorRegistry, group_id: str) -> RegistrySnapshot:
    """The group's instruments now, stamped with `time.monotonic()`."""
    return RegistrySnapshot.of(registry.collect(), group=group_id, at=time.monotonic())


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """A measured window: its two ends and the problems the group reported during it."""

    start: RegistrySnapshot
    end: RegistrySnapshot
    errors: tuple[str, ...]
    progress: Mapping[str, Progress] = field(default_factory=lambda: MappingProxyType({}))
    """Each member's progress when the window opened (its batches so far)."""


def _partitions(snap: RegistrySnapshot) -> dict[str, int]:
    """Each member's assigned partitions in `snap`."""
    return {m: int(n) for m, n in snap.per_member(f"{PREFIX}assigned_partitions").items()}


def idle(snap: RegistrySnapshot) -> set[str]:
    """Members with nothing to consume: no partitions, or no lag and an empty poll."""
    lag = snap.per_member(f"{PREFIX}lag_records")
    empty = snap.per_member(f"{PREFIX}empty_polls_total")
    return {
        m for m, n in _partitions(snap).items()
        if n <= 0 or (lag.get(m) == 0 and empty.get(m, 0) > 0)
    }  # fmt: skip


async def warm_up(
    group: Group,
    *,
    registry: CollectorRegistry,
    group_id: str,
    min_s: float,
    window_s: float,
) -> float:
    """Wait `min_s`, then until the group is measurable (`measurable.unmeasurable`); returns
    the seconds it took. Raises `GroupError` naming each member's batches when the group is
    not measurable `measurable.extra_warmup_s(window_s)` past `min_s`, or a member was killed
    or its handler raised meanwhile."""
    started = time.monotonic()
    await asyncio.sleep(min_s)
    limit_s = min_s + measurable.extra_warmup_s(window_s)
    while True:
        group.check_not_killed()
        group.check_handlers()
        progress = group.progress()
        seen = {spec.member: progress.get(spec.member) for spec in group.members}
        why = measurable.unmeasurable(seen, idle(snapshot(registry, group_id)))
        waited = time.monotonic() - started
        if why is None:
            if waited > min_s + 0.5:
                log.info("warm-up: %.1f s (trial.warmup_s %g) until every member had "
                         "finished a batch", waited, min_s)  # fmt: skip
            return waited
        if waited >= limit_s:
            raise GroupError(
                f"the group was not measurable after a warm-up of {waited:.1f} s "
                f"(trial.warmup_s {min_s:g} s and at most {limit_s - min_s:g} s more): {why} "
                f"(batches finished: {measurable.batches_line(seen)}); its batches take "
                "longer than the window could measure: make them shorter (max.poll.records) or "
                "lengthen trial.measure_s"
            )
        await asyncio.sleep(MEASURABLE_POLL_S)


async def each_second(
    window_s: float,
    *,
    group: Group,
    load: LocustLoad | None,
    registry: CollectorRegistry,
    group_id: str,
    second: Second,
    lengthen: bool = False,
) -> Window:
    """Measure `window_s` seconds, one snapshot a second; with `lengthen`, whole seconds more
    while the window holds too few batches (`measurable.lengthen`). Raises `GroupError` if a
    member was killed or the user's handler raised, and `LoadError` if the producer died: the
    window no longer measured the configuration. Other problems the group reports are
    returned."""
    start = previous = snapshot(registry, group_id)
    progress = group.progress()
    errors: list[str] = []

    def more(elapsed: float) -> bool:
        if elapsed < window_s:
            return True
        if GroupWindow(start, previous).rebalances:
            return False  # infeasible whatever the window holds: no use measuring on
        return lengthen and measurable.lengthen(
            progress, group.progress(), elapsed_s=elapsed, window_s=window_s,
            idle=idle(previous),
        )  # fmt: skip

    while more(elapsed := previous.at - start.at):
        await asyncio.sleep(min(1.0, window_s - elapsed) if elapsed < window_s else 1.0)
        now = snapshot(registry, group_id)
        second(start, previous, now)
        previous = now
        group.check_not_killed()
        group.check_handlers()
        errors.extend(map(str, group.errors()))
        if load:
            load.check()
    if previous.at - start.at > window_s + 0.5:
        log.info("window lengthened to %.0f s to hold enough batches", previous.at - start.at)
    return Window(
        start=start, end=previous, errors=tuple(errors), progress=MappingProxyType(progress)
    )
