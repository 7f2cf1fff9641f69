"""What the search loop tells its caller: one event per finished trial, and the outcome."""

from __future__ import annotations

from dataclasses import dataclass

from optuna.trial import FrozenTrial

from tuner.config import SettingValue
from tuner.metrics.phases import Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialEvent:
    """What one finished trial did, for a progress line."""

    number: int
    done: int
    total: int
    state: Outcome
    changed: dict[str, SettingValue]
    """Settings that differ from aiokafka's defaults."""
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


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyOutcome:
    study_name: str
    storage: str
    best: FrozenTrial | None
    """The recommended trial (see `recommended`), or None."""
    interrupted: bool
