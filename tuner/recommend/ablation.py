"""Ablation: from the best trial back towards the baseline, keeping only changes that pay.

The best trial sets every searched setting, most of them to values with no measurable effect,
and each carries risk (a 57 s session timeout stalls a dead member's partitions for 57 s).
Following Fawcett & Hoos (J. Heuristics 2016), each setting that differs from the baseline
is put back in turn and kept only if putting it back costs measurably or brings back trouble
(a rebalance, an error, a broken constraint of the config). Among equals the baseline wins:
a value the search happened to draw is no reason to change a setting, a shorter timeout
included (a failover time the team needs is a goal to state, not a side effect of a draw).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from tuner import librdkafka
from tuner.config import ObjectiveSpec, SettingValue
from tuner.recommend.bench import Bench
from tuner.recommend.confirmation import Gain, paired_gain
from tuner.search import space
from tuner.search.objective import score, unusable
from tuner.settings import PARTNERS, REVERT_ORDER, WHY
from tuner.trial.run import TrialError, TrialResult

Run = Callable[[Mapping[str, SettingValue]], TrialResult]
"""Measures one configuration (one fresh group, capacity-bound) and returns what it did."""

TOLERANCE = 0.03
"""A revert that keeps at least 97% of the throughput (geometric mean) is not measurably slower."""

PARAM_SETTING = {
    "heartbeat.fraction": "heartbeat.interval.ms",
    "fetch.max.bytes.ratio": "fetch.max.bytes",
}
"""Optuna parameters that stand for a setting (the heartbeat is sampled as a fraction)."""


class Verdict(StrEnum):
    """What the runs said about one change, and so whether it stays."""

    COSTS = "costs"
    """Kept: putting it back cost more than the tolerance in throughput."""
    TROUBLE = "trouble"
    """Kept: putting it back brought back a rebalance, an error or a broken constraint."""
    UNMEASURED = "unmeasured"
    """Kept: no comparison could be made (a run failed, or it cannot go back alone)."""
    NO_EFFECT = "no effect"
    """Put back: throughput within the tolerance either way."""
    HURT = "hurt"
    """Put back: putting it back raised throughput by more than the tolerance."""

    @property
    def kept(self) -> bool:
        return self in (Verdict.COSTS, Verdict.TROUBLE, Verdict.UNMEASURED)

    @property
    def measured(self) -> bool:
        """Whether runs decided it (every verdict but UNMEASURED)."""
        return self is not Verdict.UNMEASURED


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One setting where the best trial differs from the baseline, and what became of it."""

    name: str
    best: SettingValue | None
    baseline: SettingValue | None
    """Effective values (None = aiokafka's unlimited)."""
    verdict: Verdict
    reverting: Gain | None
    """Throughput with the setting put back over the recommendation at that step (candidate /
    current - 1, geometric mean over the pairs); None when no comparison could be made."""
    reason: str
    """Why it was kept or put back, in words (the numbers are in `reverting`)."""
    together: tuple[str, ...] = ()
    """Partners put back with it (a rule of `space.check_rules` binds them)."""

    @property
    def kept(self) -> bool:
        return self.verdict.kept

    @property
    def why(self) -> str:
        return WHY.get(self.name, "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ablation:
    """The smallest change that keeps the gain: the baseline plus the changes kept."""

    settings: Mapping[str, SettingValue]
    """The recommendation: the baseline's explicit settings with the kept changes on top."""
    baseline: Mapping[str, SettingValue]
    changes: tuple[Change, ...]
    pairs: int
    tolerance: float
    runs: int

    @property
    def kept(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kept)

    @property
    def reverted(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.kept)

    @property
    def helped(self) -> bool:
        """Whether some change measurably paid (kept for its throughput or against trouble)."""
        return any(c.kept and c.verdict.measured for c in self.changes)


def ablate(
    best: Mapping[str, SettingValue],
    baseline: Mapping[str, SettingValue],
    *,
    run: Run,
    pairs: int,
    importances: Mapping[str, float] | None = None,
    objective: ObjectiveSpec | None = None,
    tolerance: float = TOLERANCE,
    on_change: Callable[[int, int, Change], None] | None = None,
    defaults: Mapping[str, SettingValue | None] | None = None,
) -> Ablation:
    """Put back each setting where `best` differs from `baseline`, least important first.

    Each step measures the current recommendation and the candidate (it with the setting, and
    any partner a rule needs, put back) in `pairs` interleaved pairs: current, candidate, ….
    The candidate replaces the current when it is clean in every run (no rebalance, no error,
    capacity-bound, records processed, and feasible under `objective`'s constraints) and the
    geometric mean of candidate/current is >= 1 - `tolerance`; otherwise the change is kept
    (also when a run raises `TrialError`: there is then nothing to compare). Among equals the
    baseline wins, whatever the setting: only measured throughput or trouble keeps a change.
    `on_change(done, total, change)` hears each decided setting; `defaults` (the measured
    client's own, aiokafka's when None) name what a setting goes back to. Raises `ValueError` if the
    best settings over the baseline break a rule (`space.validate_settings`) or `pairs` < 1.
    """
    if pairs < 1:
        raise ValueError(f"ablation needs at least one pair of runs per setting, got {pairs}")
    current = {**baseline, **best}
    problems = _rule_problems(current)
    if problems:
        raise ValueError("; ".join(f"{name}: {message}" for name, message in problems))
    differing = _differing(current, baseline)
    changes: list[Change] = []
    runs = 0
    for name in _order(differing, importances):
        if any(c.name == name for c in changes):
            continue
        decided = {c.name for c in changes}
        group = _group(current, baseline, name, decided)
        if group is None:
            broken = _rule_problems(_reverted(current, baseline, (name,)))
            step = [_change(current, baseline, name, verdict=Verdict.UNMEASURED, reverting=None,
                            reason=f"cannot go back alone: {broken[0][1]}",
                            defaults=defaults)]  # fmt: skip
        else:
            candidate = _reverted(current, baseline, group)
            ours, theirs, failed = _pairs(run, current, candidate, pairs)
            runs += len(ours) + len(theirs) + (failed is not None)
            if failed is None:
                verdict, reverting, reason = _judge(
                    ours, theirs, group=group, objective=objective, tolerance=tolerance
                )
            else:
                verdict, reverting, reason = Verdict.UNMEASURED, None, failed
            step = [
                _change(current, baseline, n, verdict=verdict, reverting=reverting,
                        reason=reason, together=tuple(m for m in group if m != n),
                        defaults=defaults)
                for n in group
            ]  # fmt: skip
            if not verdict.kept:
                current = candidate
        for change in step:
            changes.append(change)
            if on_change is not None:
                on_change(len(changes), len(differing), change)
    return Ablation(
        settings=MappingProxyType(current),
        baseline=MappingProxyType(dict(baseline)),
        changes=tuple(changes),
        pairs=pairs,
        tolerance=tolerance,
        runs=runs,
    )


def _pairs(
    run: Run, current: Mapping[str, SettingValue], candidate: Mapping[str, SettingValue], n: int
) -> tuple[list[TrialResult], list[TrialResult], str | None]:
    """`n` interleaved pairs, the order swapped each pair (current, candidate, candidate,
    current, …) so that a run's position (after which run, how warm the broker) favours
    neither side; stops at a run that raises `TrialError` and says which side failed and why."""
    ours: list[TrialResult] = []
    theirs: list[TrialResult] = []
    for i in range(n):
        pair = ((ours, current), (theirs, candidate))
        for side, settings in pair if i % 2 == 0 else pair[::-1]:
            try:
                side.append(run(settings))
            except TrialError as exc:
                who = "the recommendation" if side is ours else "the candidate put back"
                return ours, theirs, f"no comparison: a run of {who} failed: {exc}"
    return ours, theirs, None


def bench_run(bench: Bench) -> Run:
    """The real `run`: one capacity-bound run on the bench's topic, a fresh group each time."""
    return lambda settings: bench.run(settings, "a")


def _differing(
    current: Mapping[str, SettingValue], baseline: Mapping[str, SettingValue]
) -> list[str]:
    now, base = space.effective_settings(current), space.effective_settings(baseline)
    own = sorted({*current, *baseline} - set(now))  # librdkafka's own, compared as given
    return [name for name in now if now[name] != base[name]] + [
        name for name in own if current.get(name) != baseline.get(name)
    ]


def _own_default(name: str) -> SettingValue | None:
    """librdkafka's default of one of its own settings (what putting it back runs with)."""
    own = librdkafka.LIBRDKAFKA_ONLY.get(name)
    return None if own is None else own.default


def _rule_problems(settings: Mapping[str, SettingValue]) -> list[tuple[str, str]]:
    """The rules of the Java-named settings; librdkafka's own were checked with the config."""
    return space.validate_settings({n: v for n, v in settings.items() if n in space.SETTINGS})


def _order(names: Sequence[str], importances: Mapping[str, float] | None) -> list[str]:
    """Least important first; ties (and everything, without importances) in `REVERT_ORDER`."""
    weight = {PARAM_SETTING.get(k, k): v for k, v in (importances or {}).items()}
    risk = {name: i for i, name in enumerate(REVERT_ORDER)}
    return sorted(names, key=lambda n: (weight.get(n, 0.0), risk.get(n, len(risk))))


def _reverted(
    settings: Mapping[str, SettingValue], baseline: Mapping[str, SettingValue], names: Sequence[str]
) -> dict[str, SettingValue]:
    out = dict(settings)
    for name in names:
        if name in baseline:
            out[name] = baseline[name]
        else:
            out.pop(name, None)  # not set explicitly: aiokafka's default
    return out


def _group(
    current: Mapping[str, SettingValue],
    baseline: Mapping[str, SettingValue],
    name: str,
    decided: set[str],
) -> tuple[str, ...] | None:
    """`name` alone if putting it back keeps the rules, else with its undecided partners that
    differ; None if even that breaks a rule."""
    if not _rule_problems(_reverted(current, baseline, (name,))):
        return (name,)
    differing = set(_differing(current, baseline)) - decided
    group = (name, *(p for p in PARTNERS.get(name, ()) if p in differing))
    if len(group) > 1 and not _rule_problems(_reverted(current, baseline, group)):
        return group
    return None


def _trouble(result: TrialResult, objective: ObjectiveSpec | None) -> str | None:
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


def _judge(
    ours: Sequence[TrialResult],
    theirs: Sequence[TrialResult],
    *,
    group: Sequence[str],
    objective: ObjectiveSpec | None,
    tolerance: float,
) -> tuple[Verdict, Gain | None, str]:
    """(the verdict, candidate/current, the reason in words); see `ablate` for the rule."""
    back = "putting it back" if len(group) == 1 else f"putting back {' and '.join(group)}"
    troubles = [t for r in theirs if (t := _trouble(r, objective)) is not None]
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
    mine = [t for r in ours if (t := _trouble(r, objective)) is not None]
    if reverting is None or any(r.backlog_emptied for r in ours):
        return (
            Verdict.UNMEASURED,
            reverting,
            f"no comparison: the recommendation's own run: {mine[0]}",
        )
    if reverting.estimate < -tolerance:
        return Verdict.COSTS, reverting, f"{back} costs more than {tolerance:.0%} throughput"
    if reverting.estimate > tolerance:
        return (
            Verdict.HURT, reverting,
            f"{back} raised throughput by more than {tolerance:.0%}: the change cost throughput",
        )  # fmt: skip
    return Verdict.NO_EFFECT, reverting, f"{back} changes throughput by less than {tolerance:.0%}"


def _change(
    current: Mapping[str, SettingValue],
    baseline: Mapping[str, SettingValue],
    name: str,
    *,
    verdict: Verdict,
    reverting: Gain | None,
    reason: str,
    together: tuple[str, ...] = (),
    defaults: Mapping[str, SettingValue | None] | None = None,
) -> Change:
    now = space.effective_settings(current)
    base = space.effective_settings(baseline) if defaults is None else {**defaults, **baseline}
    return Change(
        name=name, best=now.get(name, current.get(name)),
        baseline=base.get(name, baseline.get(name, _own_default(name))), verdict=verdict,
        reverting=reverting,
        reason=reason, together=together,
    )  # fmt: skip
