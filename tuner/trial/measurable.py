"""When a group can be measured, and whether a window held enough batches to be measured.

A member's records count when its batch finishes; the parent credits the batch in flight pro
rata over the time expected at its start (`tuner.consumer.messages.Progress`). That credit is
only known once the member has finished a batch: a user's handler has no expected time before
it, and its first batch is credited whole at its start. A window opened during such a batch
counted the rest of it before the window (a run of 1.5 ms records in ~5 s batches read
`[0, 0, 975, …]` and `[0, 0, 7454, …]` records/s in two runs of the same settings). So the
window opens only when every member has finished a batch, or is in one whose time is known
(`unmeasurable`), however long the warm-up had to be.

A window's two edges each cut a batch. Credited at its end, a batch moves the window's count
by a whole batch; credited pro rata, by the share its expected time missed. So a window must
hold `MIN_BATCHES` batches per member, or `MIN_PREDICTED_BATCHES` whose expected times held
(`coarse`). Measured (1.5 ms blocking handler, batches of 2.25 s and ~6 s): windows of 2-3
batches whose times were predicted land within 1% of the ceiling and of each other.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from tuner.consumer.messages import MISS_SHARE, Progress

MIN_BATCHES = 10
"""Batches per member a window needs when their expected times did not hold: then an edge may
be off by a whole batch, at most 1/10 of the window."""
MIN_PREDICTED_BATCHES = 2
"""Batches per member a window needs when every one of them took its expected time (within
`MISS_SHARE`): its edges were credited right, and two batches show that the rate held."""
LENGTHEN_FACTOR = 2.0
"""A coarse window is lengthened to at most this many times `trial.measure_s`."""
EXTRA_WARMUP_MIN_S = 10.0
"""The warm-up waits past `trial.warmup_s` for a measurable group at most the window's length,
and at least this long."""


def extra_warmup_s(window_s: float) -> float:
    """How long past `trial.warmup_s` the warm-up may wait for the group to become measurable:
    a member that has finished no batch within a window's length of it has batches longer
    than the window, which could not be measured anyway."""
    return max(window_s, EXTRA_WARMUP_MIN_S)


def unmeasurable(progress: Mapping[str, Progress | None], idle: Collection[str]) -> str | None:
    """Why the group cannot be measured yet, naming the members; None when it can: every member
    has finished a batch or is in one whose expected time is known (the model's draw), and none
    is in a first batch without one (a batch without one after others finished is one of no
    cost: the model at 0 ms a record, credited whole at its start). A member in `idle` has
    nothing to consume (no partitions, or empty polls with no lag) and is not waited for."""
    waiting = []
    for member, p in sorted(progress.items()):
        if member in idle:
            continue
        if p is not None and p.batch and p.batch_s <= 0 and p.batches < 1:
            waiting.append(f"member {member}'s batch in flight has no expected time")
        elif p is None or (p.batches < 1 and not p.batch):
            waiting.append(f"member {member} has finished no batch")
    return "; ".join(waiting) or None


def batches_line(progress: Mapping[str, Progress | None]) -> str:
    """`m0 0, m1 3`: each member's finished batches, for a message."""
    return ", ".join(f"{m} {p.batches if p else 0}" for m, p in sorted(progress.items()))


def coarse(
    start: Mapping[str, Progress],
    end: Mapping[str, Progress],
    *,
    window_s: float,
    idle: Collection[str],
) -> str | None:
    """Why the window from `start` to `end` (each member's progress at either edge) held too
    few batches to be scored, naming each member's numbers and the window it needed; None when
    it held enough (see the module doc). A member in `idle` had nothing to consume: whether
    that measured the supply is `tuner.trial.supply`'s judgement."""
    short = []
    needed = window_s
    for member, last in sorted(end.items()):
        first = start.get(member)
        if member in idle:
            continue
        batches = last.batches - (first.batches if first else 0)
        missed = last.missed - (first.missed if first else 0)
        if batches >= MIN_BATCHES or (missed == 0 and batches >= MIN_PREDICTED_BATCHES):
            continue
        need = MIN_PREDICTED_BATCHES if missed == 0 else MIN_BATCHES
        needed = max(needed, window_s * need / max(batches, 1))
        short.append(
            f"member {member} finished {batches} batches in the {window_s:.1f} s window, "
            f"{missed} of them {MISS_SHARE:.0%} off their expected time (it needs "
            f"{MIN_PREDICTED_BATCHES} batches that keep to it, or {MIN_BATCHES})"
        )
    if not short:
        return None
    return (
        "; ".join(short)
        + f": its edges may be off by a whole batch; set trial.measure_s to {math.ceil(needed)}"
        " or more, or make the batches shorter (max.poll.records)"
    )


def lengthen(
    start: Mapping[str, Progress],
    now: Mapping[str, Progress],
    *,
    elapsed_s: float,
    window_s: float,
    idle: Collection[str],
) -> bool:
    """Whether a window `elapsed_s` long (at least `window_s`) measures on: it is still coarse
    and shorter than `LENGTHEN_FACTOR` times `window_s`."""
    return elapsed_s < LENGTHEN_FACTOR * window_s and (
        coarse(start, now, window_s=elapsed_s, idle=idle) is not None
    )
