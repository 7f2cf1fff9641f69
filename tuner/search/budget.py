"""A study that fits its time: how many trials, ablation pairs and confirmation repeats a
budget holds, from what a run costs on this workload.

A user can say how long they can wait (`tuner optimize --budget 10m`, `study.budget`), not
how many trials that is. After the search, the recommendation costs runs of its own: the
ablation's interleaved pairs (a group of the changes the search calls noise, then each change
that matters, `ABLATION_STEPS` steps are reserved) and the confirmation's repeats of each
candidate. Every one of those runs costs about what a trial does (the same warm-up, window and
overhead on the same topic), so the plan is in runs: what is left of the budget after the
trials so far, less the recommendation's reserve, divided by the median trial's wall time.
Before any trial has run, a trial is estimated from its warm-up and window plus
`OVERHEAD_GUESS_S`; the plan is made again after each trial, from what trials took.

When the budget cannot hold `MIN_TRIALS` trials and the full reserve, the reserve shrinks first
(ablation pairs to 1, then repeats to `MIN_REPEATS`), then the trials; a budget too small even
for that is refused with the budget that would do.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.config import StudySpec
from tuner.config.duration import duration_s

ABLATION_STEPS = 3
"""Ablation steps the plan reserves runs for: the noise group and two changes that matter, each
with one pair more than `confirm.ablation_pairs` (a step whose effect is close measures more)."""
CANDIDATES = 3
"""What the confirmation runs `confirm.repeats` times each: the recommendation, the client's
defaults, and the config's own settings (`tuner.recommend.confirmation.Candidate`)."""
MIN_TRIALS = 3
MIN_REPEATS = 2
"""The fewest confirmation repeats that still give an interval (two pairs)."""
OVERHEAD_GUESS_S = 3.0
"""A trial's cost beyond its warm-up and window before one was measured (topic, backlog,
join, leave), from `benchmarks/bench_overhead.py`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What the budget holds: trials in all, the recommendation's pairs and repeats, the run
    cost it was planned from, and what the budget left out (None: nothing)."""

    budget_s: float
    trials: int
    ablation_pairs: int
    confirm_repeats: int
    run_s: float
    """One run's wall time: the median trial's, or the estimate before any finished."""
    measured: bool
    """Whether `run_s` is measured (False: estimated from warm-up and window)."""
    left_out: tuple[str, ...] = ()

    @property
    def reserve_runs(self) -> int:
        """Runs the recommendation is planned to take: ablation steps and confirmation."""
        return reserve(self.ablation_pairs, self.confirm_repeats)

    def eta_s(self, *, done: int) -> float:
        """Seconds from now to the end of the plan after `done` trials, at `run_s` a run."""
        return (max(self.trials - done, 0) + self.reserve_runs) * self.run_s

    def describe(self) -> str:
        how = "measured" if self.measured else "estimated"
        return (
            f"{self.trials} trials, then the ablation (≤ {self.ablation_pairs} pair(s) a step) "
            f"and {self.confirm_repeats} confirmation repeats, at {self.run_s:.0f} s a run "
            f"({how})"
        )


class BudgetTooSmall(ValueError):
    """The budget holds not even `MIN_TRIALS` trials and the smallest recommendation."""


def run_estimate(spec: StudySpec, trial_walls_s: Sequence[float]) -> tuple[float, bool]:
    """A run's wall time: the median of the trials so far, else warm-up, window and
    `OVERHEAD_GUESS_S`; and whether it was measured."""
    if trial_walls_s:
        return statistics.median(trial_walls_s), True
    return spec.trial.warmup_s + spec.trial.measure_s + OVERHEAD_GUESS_S, False


def plan(
    spec: StudySpec, budget_s: float, *, elapsed_s: float, trial_walls_s: Sequence[float]
) -> Plan:
    """The plan for a study `elapsed_s` into `budget_s`, after trials that took
    `trial_walls_s` each (see the module doc). Raises `BudgetTooSmall` before the first
    trial only: once trials ran, the plan stops the search and says what it left out."""
    run_s, measured = run_estimate(spec, trial_walls_s)
    done = len(trial_walls_s)
    runs_left = math.floor(max(budget_s - elapsed_s, 0.0) / run_s)
    pairs = spec.confirm.ablation_pairs
    repeats = spec.confirm.repeats
    wanted = spec.search.trials
    left_out: list[str] = []

    least = min(MIN_TRIALS, wanted)
    floor = max(least, done)  # the trials that have run stay; the reserve shrinks first
    if done + runs_left - reserve(pairs, repeats) < floor and pairs > 1:
        left_out.append(
            f"the ablation starts each step on 1 pair, not confirm.ablation_pairs {pairs}"
        )
        pairs = 1
    if done + runs_left - reserve(pairs, repeats) < floor and repeats > MIN_REPEATS:
        left_out.append(
            f"the confirmation runs {MIN_REPEATS} repeats, not confirm.repeats {repeats}"
        )
        repeats = MIN_REPEATS
    trials = min(wanted, done + runs_left - reserve(pairs, repeats))
    if done >= least and trials <= done:
        # Mid-study, past the fewest trials: the search stops here, the recommendation runs.
        trials = done
        if runs_left < reserve(pairs, repeats):
            left_out.append(
                f"the recommendation's {reserve(pairs, repeats)} runs take about "
                f"{_minutes(reserve(pairs, repeats) * run_s)}, past the budget's "
                f"{_minutes(max(budget_s - elapsed_s, 0.0))} left"
            )
    elif trials < least and done:
        # Trials cost more than planned: the fewest still run, and the study says so.
        trials = least
        left_out.append(
            f"runs take {run_s:.0f} s: the fewest trials ({least}) and the recommendation "
            f"take the study past its budget of {_minutes(budget_s)}"
        )
    elif trials < least:
        need = elapsed_s + (max(least - done, 0) + reserve(pairs, repeats)) * run_s
        raise BudgetTooSmall(
            f"a budget of {_minutes(budget_s)} holds {max(trials, 0)} trials at "
            f"{run_s:.0f} s a run after the recommendation's {reserve(pairs, repeats)} runs; "
            f"{least} trials take about {_minutes(need)}"
        )
    if trials < wanted:
        left_out.insert(
            0,
            f"{trials} of search.trials {wanted} trials: a longer budget would have searched more",
        )
    return Plan(
        budget_s=budget_s, trials=trials, ablation_pairs=pairs, confirm_repeats=repeats,
        run_s=run_s, measured=measured, left_out=tuple(left_out),
    )  # fmt: skip


def budget_of(spec: StudySpec) -> float | None:
    """`study.budget` in seconds (validated with the config), or None."""
    return None if spec.study.budget is None else duration_s(spec.study.budget)


def eta_s(spec: StudySpec, *, total: int, done: int, trial_walls_s: Sequence[float]) -> float:
    """Seconds to the end of a study without a budget: the trials left and the
    recommendation's runs (`confirm`), at the median trial's wall time."""
    run_s, _ = run_estimate(spec, trial_walls_s)
    runs = max(total - done, 0) + reserve(spec.confirm.ablation_pairs, spec.confirm.repeats)
    return runs * run_s


def reserve(pairs: int, repeats: int) -> int:
    """Runs the recommendation takes: `ABLATION_STEPS` steps of `pairs` + 1 pairs, and the
    confirmation's `repeats` of each candidate."""
    return ABLATION_STEPS * 2 * (pairs + 1) * (pairs > 0) + CANDIDATES * repeats


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
