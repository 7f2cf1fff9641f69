"""The Optuna sampler and pruner a study's `search` section asks for.

The sampler decides what the next trial tries; the pruner may stop a trial early when its
running throughput falls behind earlier trials'.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.config import StudySpec
from tuner.search import space


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler for an ask/tell loop: it calls `study.stop()` once the grid is
    covered, which raises outside `study.optimize`; the loop checks `is_exhausted` instead."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    s = spec.search
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    if s.sampler == "gp":
        return optuna.samplers.GPSampler(seed=s.seed, n_startup_trials=s.n_startup_trials)
    if s.sampler == "grid":
        params = space.search_space(
            s.parameters, spec.consumer.settings, client=spec.consumer.client
        ).parameters
        grid = {name: list(p.choices) for name, p in params.items() if p.choices}
        return AskTellGridSampler(grid, seed=s.seed)
    return optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=s.n_startup_trials)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """Compares a trial's running throughput, reported each second, with earlier trials'."""
    s = spec.search
    if spec.objective.multi:
        return optuna.pruners.NopPruner()  # Optuna prunes single-objective studies only
    if s.pruner == "median":
        warmup = max(2, int(spec.trial.measure_s / 3))
        return optuna.pruners.MedianPruner(
            n_startup_trials=s.n_startup_trials, n_warmup_steps=warmup
        )
    if s.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()
