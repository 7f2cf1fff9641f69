"""After the study, one call: the best trial's settings rounded, ablated, and confirmed.

`recommend` is the step between the search and the report. On one bench (a backlog topic of
its own) it rounds the best trial's values as a person would write them, cuts them back to the
changes that pay (unless `confirm.ablation_pairs` is 0), then confirms what is left against
the defaults: the rounded values are the ones measured. The caller writes the report from the
returned `Recommendation`; progress reaches it only through the callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from optuna.trial import FrozenTrial

from tuner import broker
from tuner.config import SettingValue, StudySpec
from tuner.recommend.ablation import MAX_PAIRS, Ablation, Change, ablate, bench_run
from tuner.recommend.bench import bench
from tuner.recommend.confirm import OnRun, confirm_on
from tuner.recommend.confirmation import Confirmation
from tuner.recommend.measured import MeasuredClient
from tuner.search.events import StudyOutcome
from tuner.search.study import best_settings, importances
from tuner.settings import rounded


class Step(StrEnum):
    """The two steps `recommend` announces through `on_step`, in this order."""

    ABLATION = "ablation: putting each change back to the baseline …"
    CONFIRMATION = "confirming the recommendation against the defaults …"


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    """What the study recommends and what backs it: the trial it came from, the ablation that
    cut its changes back (None when `confirm.ablation_pairs` is 0) and the confirmation runs of
    the settings it ends with (`confirmation.settings`). `tuner report` runs nothing: both are
    None there, and the recommendation is the trial as it ran."""

    best: FrozenTrial
    ablation: Ablation | None = None
    confirmation: Confirmation | None = None

    @property
    def settings(self) -> dict[str, SettingValue]:
        """What is recommended: the ablated settings when there are some, else what the
        confirmation ran (rounded), else the best trial's as it ran them."""
        if self.ablation is not None:
            return dict(self.ablation.settings)
        if self.confirmation is not None and self.confirmation.settings is not None:
            return dict(self.confirmation.settings)
        return best_settings(self.best)


def recommend(
    spec: StudySpec,
    outcome: StudyOutcome,
    best: FrozenTrial,
    *,
    on_step: Callable[[Step], None] | None = None,
    on_change: Callable[[int, int, Change], None] | None = None,
    on_run: OnRun | None = None,
    max_pairs: int | None = None,
) -> Recommendation:
    """Ablate and confirm `best` of the study on one bench. The config's fixed settings and values
    from the user's own `choices` are written already and stay as they are; `max_pairs` bounds
    the pairs an ablation step may add (a time budget's). Raises `TrialError`
    if a run fails; `broker.BrokerError` and `ClusterError` as the trials do."""
    chosen = {n for n, p in (spec.search.parameters or {}).items() if p.choices}
    settings = rounded(best_settings(best), keep={*spec.consumer.settings, *chosen})
    ablation = None
    with (
        broker.for_cluster(spec.cluster) as bootstrap,
        bench(spec, bootstrap_servers=bootstrap,
              backlog_records=outcome.backlog_records) as runs,
    ):  # fmt: skip
        if spec.confirm.ablation_pairs > 0:
            if on_step is not None:
                on_step(Step.ABLATION)
            measured = MeasuredClient.of_consumer(spec.consumer)
            ablation = ablate(
                settings, spec.consumer.settings, run=bench_run(runs),
                pairs=spec.confirm.ablation_pairs, importances=importances(outcome.study),
                objective=spec.objective, on_change=on_change,
                failover_goal=bool(spec.trial.faults) and spec.trial.measure_through_faults,
                effective=measured.effective_settings,
                max_pairs=MAX_PAIRS if max_pairs is None else max_pairs,
            )  # fmt: skip
            settings = dict(ablation.settings)
        if on_step is not None:
            on_step(Step.CONFIRMATION)
        confirmation = confirm_on(runs, settings, on_run=on_run)
    return Recommendation(best=best, ablation=ablation, confirmation=confirmation)
