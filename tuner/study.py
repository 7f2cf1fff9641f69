"""What a stored study holds: where it lives, what each trial measured, which trials count,
and the one it recommends. Read by the loop, the report, the plots and the advisor alike.
"""

from __future__ import annotations

import collections
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from tuner.config import StudySpec
from tuner.result import TrialResult

RESULT_ATTR = "result"
"""Trial attribute: the trial's `TrialResult.to_dict()`."""
FIXED_ATTR = "fixed_settings"
CLIENT_ATTR = "client"
"""The measured client and group protocol: `{"client": ..., "group_protocol": ...}`."""
"""Study attribute: the config's `consumer.settings`, which the study kept fixed."""
BACKLOG_ATTR = "backlog_records"
"""Study attribute: the largest backlog any trial needed, so a resumed study starts there."""


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{out_dir / 'study.db'}"


def study_url(spec: StudySpec, out_dir: Path, storage: str | None = None) -> str:
    """Where `optimize` keeps the study: `storage`, else the config's, else under `out_dir`."""
    return storage or spec.study.storage or default_storage(out_dir)


def open_storage(url: str) -> str | optuna.storages.BaseStorage:
    """An SQLAlchemy URL as is; `journal:PATH` is Optuna's journal file (for several workers)."""
    if url.startswith("journal:"):
        backend = JournalFileBackend(url.removeprefix("journal:"))
        return optuna.storages.JournalStorage(backend)
    return url


def recommended(study: optuna.Study) -> FrozenTrial | None:
    """The best feasible trial; in a two-objective study, the front's highest throughput.

    Optuna (>= 5) picks among feasible trials only, for `best_trial` and the Pareto front alike.
    """
    if len(study.directions) > 1:
        return max(study.best_trials, key=lambda t: t.values[0], default=None)
    try:
        return study.best_trial
    except ValueError:
        return None


def stored_result(trial: FrozenTrial) -> TrialResult | None:
    """What the trial measured, as `optimize` stored it (None: it measured nothing)."""
    stored = trial.user_attrs.get(RESULT_ATTR)
    return None if stored is None else TrialResult.from_dict(stored)


def is_feasible(trial: FrozenTrial) -> bool:
    """A complete trial whose every constraint value is <= 0 (Optuna's convention)."""
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values())


def violations(study: optuna.Study) -> collections.Counter[str]:
    """Why trials were not feasible: each violated constraint, plus `failed` and `pruned`."""
    counts: collections.Counter[str] = collections.Counter()
    for t in study.trials:
        if t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.COMPLETE:
            counts.update(name for name, value in t.constraints.items() if value > 0)
    return counts


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The feasible trials no other trial beats on both objectives, fastest first."""
    if len(study.directions) == 1:
        return []
    return sorted(study.best_trials, key=lambda t: -t.values[0])
