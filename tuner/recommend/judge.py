"""The ablation's judgement of one step: does a change stay, from the runs of putting it back?

Runs of one configuration vary by 3-5% on ordinary workloads, so a point estimate over two
pairs keeps noise: a study of large records kept `max.poll.interval.ms=580000` for a "4.8%
cost" over 2 pairs that four independent re-runs put at -2.2% [-5.4%, +1.1%]. A change is
therefore kept for throughput only when the whole 95% interval of putting it back lies beyond
the tolerance; while the estimate says it costs but the interval does not (or there are too
few pairs for one), the step measures another pair, up to `MAX_PAIRS`; then the baseline wins.
The liveness timeouts cannot move throughput unless a member is evicted or stuck, so without a
rebalance in the step's runs (or a failover goal) they stay only for trouble they prevent.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from tuner.config import ObjectiveSpec
from tuner.recommend.confirmation import CONFIDENCE, MIN_PAIRS, Gain, paired_gain
from tuner.search.objective import score, unusable
from tuner.trial.run import TrialResult

TOLERANCE = 0.03
"""A revert that keeps at least 97% of the throughput (geometric mean) is not measurably slower."""
MAX_PAIRS = 6
"""The most pairs one step measures while its effect is close (a cost suggested, not shown).
Simulated with 4% run-to-run noise and steps starting at 2 pairs: 0.9% of changes with no
effect are kept, a true 15% cost is kept 99.6% of the time, 2.5 pairs per step on average."""
LIVENESS = frozenset({"max.poll.interval.ms", "session.timeout.ms", "heartbeat.interval.ms"})
"""Settings that change throughput only through trouble: an eviction or a stuck member (a
rebalance), never while every member polls and heartbeats in time."""


class Verdict(StrEnum):
    """What the runs said about one change, and so whether it stays."""

    COSTS = "costs"
    """Kept: putting it back cost more than the tolerance, its whole interval beyond it."""
    TROUBLE = "trouble"
    """Kept: putting it back brought back a rebalance, an error or a broken constraint."""
    UNMEASURED = "unmeasured"
    """Kept: no comparison could be made (a run failed, or it cannot go back alone)."""
    NO_EFFECT = "no effect"
    """Put back: no throughput difference clear of the tolerance either way."""
    HURT = "hurt"
    """Put back: putting it back raised throughput, its whole interval beyond the tolerance."""
    NO_TROUBLE = "no trouble"
    """Put back: a liveness setting that prevented no trouble (no run rebalanced)."""

    @property
    def kept(self) -> bool:
        return self in (Verdict.COSTS, Verdict.TROUBLE, Verdict.UNMEASURED)

    @property
    def measured(self) -> bool:
        """Whether runs decided it (every verdict but UNMEASURED)."""
        return self is not Verdict.UNMEASURED


Judged = tuple[Verdict, Gain | None, str]
"""(the verdict, candidate/current over the pairs or None, the reason in words)."""


def throughput(
    reverting: Gain,
    *,
    tolerance: float = TOLERANCE,
    more: bool = False,
    back: str = "putting it back",
) -> tuple[Verdict, str] | None:
    """The verdict on throughput alone from `reverting` (candidate / current - 1), or None to
    measure another pair: when putting it back seems to cost more than `tolerance` but its
    interval does not show it (`more`: pairs are left to measure). Among equals the baseline
    wins: only a cost clear of the tolerance keeps a change."""
    estimate, interval, pairs = reverting.estimate, reverting.interval, reverting.pairs
    if interval is not None and interval[1] < -tolerance:
        return Verdict.COSTS, (
            f"{back} costs more than {tolerance:.0%} throughput, its whole {CONFIDENCE:.0%} "
            "interval beyond the tolerance"
        )
    if interval is not None and interval[0] > tolerance:
        return Verdict.HURT, (
            f"{back} raised throughput by more than {tolerance:.0%}, its whole {CONFIDENCE:.0%} "
            "interval beyond the tolerance: the change cost throughput"
        )
    if estimate < -tolerance and more:
        return None
    if abs(estimate) > tolerance:
        unclear = (
            f"no interval from {pairs} pair{'s' if pairs != 1 else ''}; it takes {MIN_PAIRS}"
            if interval is None
            else f"its {CONFIDENCE:.0%} interval reaches within the tolerance"
        )
        seemed = "cost more than" if estimate < 0 else "raise throughput by more than"
        return Verdict.NO_EFFECT, (
            f"{back} seemed to {seemed} {tolerance:.0%}{' throughput' if estimate < 0 else ''}, "
            f"but not clear of the tolerance ({unclear}): the baseline wins"
        )
    return Verdict.NO_EFFECT, f"{back} changes throughput by less than {tolerance:.0%}"


def judge(
    ours: Sequence[TrialResult],
    theirs: Sequence[TrialResult],
    *,
    group: Sequence[str],
    objective: ObjectiveSpec | None = None,
    tolerance: float = TOLERANCE,
    more: bool = False,
    failover_goal: bool = False,
) -> Judged | None:
    """The step's verdict from the current recommendation's runs (`ours`) and the candidate's
    with `group` put back (`theirs`), or None to measure another pair (see `throughput`).

    Trouble in the candidate's runs keeps the change; a group of liveness settings with no
    rebalance in any run (and no `failover_goal`) is put back whatever the throughput said;
    a run of ours out of backlog leaves nothing to compare; else `throughput` decides."""
    back = "putting it back" if len(group) == 1 else f"putting back {' and '.join(group)}"
    troubles = [t for r in theirs if (t := trouble(r, objective)) is not None]
    rebalances = sum(r.rebalances for r in theirs)
    comparable = all(r.throughput_records_per_s > 0 for r in (*ours, *theirs))
    reverting = None
    if comparable:
        reverting = paired_gain(
            [r.throughput_records_per_s for r in theirs],
            [r.throughput_records_per_s for r in ours],
        )
    if troubles:
        what = f"{rebalances} rebalances" if rebalances else troubles[0]
        return (
            Verdict.TROUBLE,
            reverting,
            f"{back} brings back trouble: {what} in {len(theirs)} runs",
        )
    if liveness_only(group, ours, theirs, failover_goal=failover_goal):
        return (
            Verdict.NO_TROUBLE,
            reverting,
            (
                f"{back} brought back no trouble in {len(theirs)} runs, and no run rebalanced: "
                f"{' and '.join(group)} can change throughput only through a rebalance (an evicted "
                "or stuck member), so it is kept only for trouble it prevents, never for a "
                "throughput difference"
            ),
        )
    mine = [t for r in ours if (t := trouble(r, objective)) is not None]
    if reverting is None or any(unusable(r) is not None for r in ours):
        return (
            Verdict.UNMEASURED,
            reverting,
            f"no comparison: the recommendation's own run: {mine[0]}",
        )
    said = throughput(reverting, tolerance=tolerance, more=more, back=back)
    return None if said is None else (said[0], reverting, said[1])


def liveness_only(
    group: Sequence[str],
    ours: Sequence[TrialResult],
    theirs: Sequence[TrialResult],
    *,
    failover_goal: bool = False,
) -> bool:
    """Whether `group` is liveness settings that could not have moved these runs' throughput:
    no run rebalanced and the study states no failover goal."""
    return (
        not failover_goal
        and all(name in LIVENESS for name in group)
        and not any(r.rebalances for r in (*ours, *theirs))
    )


def trouble(result: TrialResult, objective: ObjectiveSpec | None) -> str | None:
    """Why a run is not clean, or None."""
    if result.rebalances:
        return "rebalances"
    if result.errors:
        return "errors"
    reason = unusable(result)
    if reason is not None:
        return reason.value
    if objective is not None:
        violated = score(result, objective).violated()
        if violated:
            return "infeasible (" + ", ".join(violated) + ")"
    return None
