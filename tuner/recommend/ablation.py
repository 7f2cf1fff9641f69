"""Ablation: from the best trial back towards the baseline, keeping only changes that pay.

The best trial sets every searched setting, most of them to values with no measurable effect,
and each carries risk (a 57 s session timeout stalls a dead member's partitions for 57 s).
Following Fawcett & Hoos (J. Heuristics 2016), each setting that differs from the baseline
is put back in turn and kept only if putting it back brings back trouble (a rebalance, an
error, a broken constraint of the config) or costs throughput clear of the noise, with an
interval (`tuner.recommend.judge`). Among equals the baseline wins: a value the search happened
to draw is no reason to change a setting, a shorter timeout included (a failover time the team
needs is a goal to state, not a side effect of a draw). "The baseline" is the measured client's
defaults: a confluent-kafka session of 10 s is a change from librdkafka's 45 s, although it is
aiokafka's default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from tuner import librdkafka
from tuner import settings as catalogue
from tuner.config import ObjectiveSpec, SettingValue
from tuner.recommend.bench import Bench
from tuner.recommend.confirmation import Gain
from tuner.recommend.judge import LIVENESS, MAX_PAIRS, TOLERANCE, Judged, Verdict, judge
from tuner.settings import PARTNERS, REVERT_ORDER, WHY
from tuner.trial.run import TrialError, TrialResult

__all__ = ["MAX_PAIRS", "TOLERANCE", "Ablation", "Change", "Verdict", "ablate", "bench_run"]

Run = Callable[[Mapping[str, SettingValue]], TrialResult]
"""Measures one configuration (one fresh group, capacity-bound) and returns what it did."""

Effective = Callable[[Mapping[str, SettingValue]], Mapping[str, SettingValue | None]]
"""Java name → what a member of the measured client runs with: the given values over that
client's own defaults (`MeasuredClient.effective_settings`; aiokafka's
`tuner.settings.effective_settings`)."""

PARAM_SETTING = {
    "heartbeat.fraction": "heartbeat.interval.ms",
    "fetch.max.bytes.ratio": "fetch.max.bytes",
}
"""Optuna parameters that stand for a setting (the heartbeat is sampled as a fraction)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One setting where the best trial differs from the baseline, and what became of it."""

    name: str
    best: SettingValue | None
    baseline: SettingValue | None
    """Effective values in the measured client (None = aiokafka's unlimited)."""
    verdict: Verdict
    reverting: Gain | None
    """Throughput with the setting put back over the recommendation at that step (candidate /
    current - 1, geometric mean over the pairs); None when no comparison could be made."""
    reason: str
    """Why it was kept or put back, in words (the numbers are in `reverting`)."""
    together: tuple[str, ...] = ()
    """Partners put back with it (a rule of `catalogue.check_rules` binds them)."""

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
    """Pairs each step starts with (`confirm.ablation_pairs`)."""
    tolerance: float
    runs: int
    max_pairs: int = MAX_PAIRS
    """Pairs a step may grow to while its effect is close to the tolerance."""

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
    max_pairs: int = MAX_PAIRS,
    failover_goal: bool = False,
    on_change: Callable[[int, int, Change], None] | None = None,
    effective: Effective = catalogue.effective_settings,
) -> Ablation:
    """Put back each setting where `best` differs from `baseline`, least important first.

    Each step measures the current recommendation and the candidate (it with the setting, and
    any partner a rule needs, put back) in `pairs` interleaved pairs: current, candidate, ….
    The candidate replaces the current unless a run of it is not clean (a rebalance, an error,
    out of backlog, no records, or infeasible under `objective`'s constraints) or putting it
    back costs more than `tolerance` with its whole interval (`tuner.recommend.judge`); while
    a cost is suggested but not shown, the step adds pairs up to `max_pairs`. The liveness
    timeouts stay only for trouble, unless a run rebalanced or `failover_goal` (the study
    measures failovers). A run that raises `TrialError` keeps the change: nothing to compare.
    `on_change(done, total, change)` hears each decided setting. `effective` is the measured
    client's (aiokafka's by default): it decides what differs from the baseline and what a
    setting goes back to. Raises `ValueError` if the best settings over the baseline break a
    rule (`catalogue.check_rules`) or `pairs` < 1.
    """
    if pairs < 1:
        raise ValueError(f"ablation needs at least one pair of runs per setting, got {pairs}")
    max_pairs = max(pairs, max_pairs)
    current = {**baseline, **best}
    problems = _rule_problems(current, effective)
    if problems:
        raise ValueError("; ".join(f"{name}: {message}" for name, message in problems))
    differing = _differing(current, baseline, effective)
    changes: list[Change] = []
    runs = 0
    steps = [*_noise_groups(differing, importances, failover_goal)]
    steps += [(name,) for name in _order(differing, importances)]
    while steps:
        wanted = steps.pop(0)
        decided = {c.name for c in changes}
        names = tuple(n for n in wanted if n not in decided)
        if not names:
            continue
        before = current
        if len(names) > 1:  # a group the search's evidence calls noise: all back at once
            if _rule_problems(_reverted(current, baseline, names), effective):
                steps[:0] = _halves(names)
                continue
            judged, spent = _step(run, current, _reverted(current, baseline, names), names,
                                  pairs=pairs, max_pairs=max_pairs, objective=objective,
                                  tolerance=tolerance, failover_goal=failover_goal)  # fmt: skip
            runs += spent
            if judged[0].kept:  # something in it matters: halve it, as delta debugging does
                steps[:0] = _halves(names)
                continue
            group = names
        else:
            found = _group(current, baseline, names[0], decided, effective)
            if found is None:
                broken = _rule_problems(_reverted(current, baseline, names), effective)
                judged = (Verdict.UNMEASURED, None, f"cannot go back alone: {broken[0][1]}")
                group = names
            else:
                group = found
                judged, spent = _step(run, current, _reverted(current, baseline, group), group,
                                      pairs=pairs, max_pairs=max_pairs, objective=objective,
                                      tolerance=tolerance, failover_goal=failover_goal)  # fmt: skip
                runs += spent
        if not judged[0].kept:
            current = _reverted(current, baseline, group)
        for member in group:
            change = _change(before, baseline, member, judged=judged, effective=effective,
                             together=tuple(m for m in group if m != member))  # fmt: skip
            changes.append(change)
            if on_change is not None:
                on_change(len(changes), len(differing), change)
    return Ablation(
        settings=MappingProxyType(current),
        baseline=MappingProxyType(dict(baseline)),
        changes=tuple(changes),
        pairs=pairs,
        max_pairs=max_pairs,
        tolerance=tolerance,
        runs=runs,
    )


NOISE_IMPORTANCE = 0.05
"""A searched setting to which the study's importances give less than this share is noise by
the search's own evidence: such settings (with the liveness timeouts, when no failover is a
goal) are first put back all together, and the group is halved only when that costs."""


def _noise_groups(
    differing: Sequence[str], importances: Mapping[str, float] | None, failover_goal: bool
) -> list[tuple[str, ...]]:
    """The first step's group: the differing settings the importances call noise and the
    liveness timeouts (unless `failover_goal`), least important first; none when fewer than
    two (a group of one is an ordinary step)."""
    weight = {PARAM_SETTING.get(k, k): v for k, v in (importances or {}).items()}
    noise = [
        n for n in _order(differing, importances)
        if (importances and weight.get(n, 0.0) < NOISE_IMPORTANCE)
        or (n in LIVENESS and not failover_goal)
    ]  # fmt: skip
    return [tuple(noise)] if len(noise) > 1 else []


def _halves(names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """`names` split in two (least important half first), each a step of its own."""
    mid = len(names) // 2
    return [names[:mid], names[mid:]]


def _step(
    run: Run,
    current: Mapping[str, SettingValue],
    candidate: Mapping[str, SettingValue],
    group: tuple[str, ...],
    *,
    pairs: int,
    max_pairs: int,
    objective: ObjectiveSpec | None,
    tolerance: float,
    failover_goal: bool,
) -> tuple[Judged, int]:
    """One step: `current` against `candidate` (it with `group` put back) in `pairs` pairs,
    more while the judgement asks, up to `max_pairs`; the verdict and the runs it took."""
    ours: list[TrialResult] = []
    theirs: list[TrialResult] = []
    n = pairs
    while True:
        failed = _pairs(run, current, candidate, n, ours=ours, theirs=theirs)
        if failed is not None:
            return (Verdict.UNMEASURED, None, failed), len(ours) + len(theirs) + 1
        said = judge(ours, theirs, group=group, objective=objective, tolerance=tolerance,
                     more=n < max_pairs, failover_goal=failover_goal)  # fmt: skip
        if said is not None:
            return said, len(ours) + len(theirs)
        n += 1


def _pairs(
    run: Run,
    current: Mapping[str, SettingValue],
    candidate: Mapping[str, SettingValue],
    n: int,
    *,
    ours: list[TrialResult],
    theirs: list[TrialResult],
) -> str | None:
    """Measure pairs into `ours` and `theirs` until there are `n`, the order swapped each pair
    (current, candidate, candidate, current, …) so that a run's position (after which run, how
    warm the broker) favours neither side; stops at a run that raises `TrialError` and says
    which side failed and why."""
    for i in range(len(theirs), n):
        pair = ((ours, current), (theirs, candidate))
        for side, settings in pair if i % 2 == 0 else pair[::-1]:
            try:
                side.append(run(settings))
            except TrialError as exc:
                who = "the recommendation" if side is ours else "the candidate put back"
                return f"no comparison: a run of {who} failed: {exc}"
    return None


def bench_run(bench: Bench) -> Run:
    """The real `run`: one capacity-bound run on the bench's topic, a fresh group each time."""
    return lambda settings: bench.run(settings, "a")


def _differing(
    current: Mapping[str, SettingValue], baseline: Mapping[str, SettingValue], effective: Effective
) -> list[str]:
    """The settings whose value a member runs with differs, by the measured client's defaults."""
    now, base = effective(current), effective(baseline)
    own = sorted({*current, *baseline} - set(now))  # librdkafka's own, compared as given
    return [name for name in now if now[name] != base.get(name)] + [
        name for name in own if current.get(name) != baseline.get(name)
    ]


def _own_default(name: str) -> SettingValue | None:
    """librdkafka's default of one of its own settings (what putting it back runs with)."""
    own = librdkafka.LIBRDKAFKA_ONLY.get(name)
    return None if own is None else own.default


def _rule_problems(
    settings: Mapping[str, SettingValue], effective: Effective
) -> list[tuple[str, str]]:
    """The Java-named settings' values, then the rules on what the measured client runs with
    (a session left out is librdkafka's 45 s, not aiokafka's 10 s); librdkafka's own settings
    were checked with the config."""
    given = {n: v for n, v in settings.items() if n in catalogue.SETTINGS}
    problems = catalogue.validate_settings(given, rules=False)
    return problems or catalogue.check_rules(effective(settings), catalogue.BrokerLimits())


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
            out.pop(name, None)  # not set explicitly: the measured client's default
    return out


def _group(
    current: Mapping[str, SettingValue],
    baseline: Mapping[str, SettingValue],
    name: str,
    decided: set[str],
    effective: Effective,
) -> tuple[str, ...] | None:
    """`name` alone if putting it back keeps the rules, else with its undecided partners that
    differ; None if even that breaks a rule."""
    if not _rule_problems(_reverted(current, baseline, (name,)), effective):
        return (name,)
    differing = set(_differing(current, baseline, effective)) - decided
    group = (name, *(p for p in PARTNERS.get(name, ()) if p in differing))
    if len(group) > 1 and not _rule_problems(_reverted(current, baseline, group), effective):
        return group
    return None


def _change(
    current: Mapping[str, SettingValue],
    baseline: Mapping[str, SettingValue],
    name: str,
    *,
    judged: Judged,
    effective: Effective,
    together: tuple[str, ...] = (),
) -> Change:
    now, base = effective(current), effective(baseline)
    verdict, reverting, reason = judged
    return Change(
        name=name, best=now.get(name, current.get(name)),
        baseline=base.get(name, baseline.get(name, _own_default(name))), verdict=verdict,
        reverting=reverting, reason=reason, together=together,
    )  # fmt: skip
