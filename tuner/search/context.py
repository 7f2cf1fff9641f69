"""What every trial of one `optimize` call shares, and the time budget's plan it keeps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from prometheus_client import CollectorRegistry

from tuner.config import StudySpec
from tuner.search import budget, lease
from tuner.trial.backlog import Rates
from tuner.trial.result import TrialResult
from tuner.trial.run import Observer


@dataclass(slots=True, kw_only=True)
class StudyContext:
    """What every trial of one `optimize` call shares."""

    spec: StudySpec
    bootstrap: str
    registry: CollectorRegistry
    backlog_records: int
    rates: Rates
    """The fastest rates seen in this study: each trial's backlog is sized for them."""
    on_phase: Observer | None
    coordinator: lease.Coordinator
    started: float
    """When the study's clock started (`time.monotonic()`): its budget counts from there."""
    budget_s: float | None = None
    before: int = 0
    """Trials the study held (finished or running) before this call: a resume's."""
    plan: budget.Plan | None = None
    """The budget's plan, made again after each trial from what trials took."""
    walls_s: list[float] = field(default_factory=list)
    """Each trial's wall time in this call, from its ask to its tell."""
    results: dict[int, TrialResult] = field(default_factory=dict)
    """What each trial of this call measured, by number: the outcome's, never read back."""

    @property
    def total(self) -> int:
        """The trials the study will have when the search ends (as planned)."""
        if self.plan is None:
            return self.spec.search.trials
        return self.before + self.plan.trials

    def replan(self) -> None:
        """The budget's plan from the time left and what this call's trials took."""
        if self.budget_s is None:
            return
        left = replace(self.spec.search, trials=max(self.spec.search.trials - self.before, 0))
        self.plan = budget.plan(
            replace(self.spec, search=left), self.budget_s,
            elapsed_s=time.monotonic() - self.started, trial_walls_s=self.walls_s,
        )  # fmt: skip

    def eta_s(self) -> float:
        """Seconds to the end of the trials and the recommendation after them."""
        done = len(self.walls_s)
        if self.plan is not None:
            return self.plan.eta_s(done=done)
        left = self.total - self.before
        return budget.eta_s(self.spec, total=left, done=done, trial_walls_s=self.walls_s)
