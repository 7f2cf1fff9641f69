"""The per-second window loop both phases of a trial measure with (capacity and steady state).

Each second it snapshots the group's instruments, hands the second to the phase, and checks
that the window still measures the configuration: no member killed from outside, the user's
handler has not raised, the producer is alive. One loop, so a check added here holds in both
phases (the steady copy once lacked the handler check, and a handler raising there made the
trial merely infeasible instead of failing it with the handler's traceback).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from tuner.consumer import ConsumerGroup
from tuner.load.runner import LocustLoad
from tuner.metrics import RegistrySnapshot

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


async def each_second(
    window_s: float,
    *,
    group: ConsumerGroup,
    load: LocustLoad | None,
    registry: CollectorRegistry,
    group_id: str,
    second: Second,
) -> Window:
    """Measure `window_s` seconds, one snapshot a second. Raises `GroupError` if a member was
    killed or the user's handler raised, and `LoadError` if the producer died: the window no
    longer measured the configuration. Other problems the group reports are returned."""
    start = previous = snapshot(registry, group_id)
    errors: list[str] = []
    while (elapsed := previous.at - start.at) < window_s:
        await asyncio.sleep(min(1.0, window_s - elapsed))
        now = snapshot(registry, group_id)
        second(start, previous, now)
        previous = now
        group.check_not_killed()
        group.check_handlers()
        errors.extend(map(str, group.errors()))
        if load:
            load.check()
    return Window(start=start, end=previous, errors=tuple(errors))
