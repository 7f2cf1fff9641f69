"""What the search loop tells its caller: one event per finished trial, and the outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial

from tuner.config import SettingValue
from tuner.metrics.phases import Outcome
from tuner.protocol import GroupProtocol
from tuner.search.budget import Plan
from tuner.trial.result import TrialResult


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialEvent:
    """What one finished trial did, for a progress line."""

    number: int
    done: int
    total: int
    state: Outcome
    changed: dict[str, SettingValue]
    """Settings that differ from the measured client's defaults (`ConsumerClient.changed`)."""
    value: float | None
    """Records/s; None for a failed or pruned trial."""
    p99_ms: float | None
    """The steady state's p99 end-to-end latency, as scored (inf: the group fell behind the
    load); None without a steady state."""
    record_age_p99_ms: float | None = None
    """The capacity window's p99 record age: the backlog's age, not a latency."""
    rebalances: int | None
    reason: str | None
    best_value: float | None
    elapsed_s: float
    eta_s: float | None = None
    """Seconds to the end of the search and the recommendation after it, as planned."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyOutcome:
    """A study as the recommendation and the report take it, read from its storage once (by
    `study.outcome_of`): after `optimize` with the results the loop held, for `tuner report`
    from what the trials stored. Nothing downstream reads the storage again."""

    study_name: str
    storage: str
    """Where the study lives ("" for one held in memory)."""
    study: optuna.Study
    """An in-memory copy of the study's trials as read (Optuna's plots, importances and
    Pareto front take a `Study`); never the storage, and not to be told anything."""
    best: FrozenTrial | None
    """The recommended trial (see `recommended`), or None."""
    results: Mapping[int, TrialResult] = field(default_factory=dict)
    """What each trial measured, by trial number; a trial that measured nothing is absent."""
    fail_reasons: Mapping[int, str] = field(default_factory=dict)
    """Why a trial has no measurement, in words, by trial number (see `fail_reason`)."""
    fixed: Mapping[str, SettingValue] = field(default_factory=dict)
    """The config's `consumer.settings`, which the study kept out of the search."""
    client: str = "aiokafka"
    """The client every trial measured (a study from before the choice existed: aiokafka)."""
    group_protocol: GroupProtocol = "classic"
    service: str | None = None
    """The service command every trial ran as the group's members (None: the tuner's own
    members): its own settings, not the client's defaults, are then the baseline."""
    backlog_records: int = 0
    """The largest backlog a trial needed: where the runs after the study start."""
    interrupted: bool = False
    plan: Plan | None = None
    """The time budget's last plan (None: no budget, or read back by `tuner report`)."""

    @property
    def trials(self) -> Sequence[FrozenTrial]:
        """Every trial, by number (from the copy in memory)."""
        return self.study.get_trials(deepcopy=False)

    def result(self, trial: FrozenTrial) -> TrialResult | None:
        """What `trial` measured (None: nothing)."""
        return self.results.get(trial.number)

    @property
    def kafka_version(self) -> str | None:
        """The embedded broker's release the trials measured (None: an external cluster, or
        trials stored before it was recorded)."""
        return next((r.kafka_version for r in self.results.values() if r.kafka_version), None)
