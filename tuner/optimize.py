"""`tuner optimize`: a synchronous Optuna ask/tell loop, one isolated trial at a time.

Each trial gets its own topic and consumer group (both under the tuner's prefix, deleted
after it) and runs in its own `asyncio.run`, so nothing leaks between trials. A failed trial is
told as FAIL with its reason and the study goes on; Ctrl-C tells the trial in flight as FAIL
("interrupted") so the stored study stays consistent and `--resume` continues it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from prometheus_client import CollectorRegistry

from tuner import broker, cluster, metrics, space
from tuner.cluster import Connection
from tuner.config import SettingValue, StudySpec
from tuner.objective import score
from tuner.trial import Observer, Phase, TrialError, run_trial

log = logging.getLogger(__name__)


class StudyExistsError(Exception):
    """The storage already holds a study of this name and `--resume` was not given."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialEvent:
    """What one finished trial did, for a progress line."""

    number: int
    done: int
    total: int
    state: str
    """complete, infeasible, failed."""
    changed: dict[str, SettingValue]
    """Settings that differ from aiokafka's defaults."""
    value: float | None
    """Records/s; None for a failed or pruned trial."""
    p99_ms: float | None
    """The trial's p99 end-to-end latency (the second objective, when there is one)."""
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


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{out_dir / 'study.db'}"


def open_storage(url: str) -> str | optuna.storages.BaseStorage:
    """An SQLAlchemy URL as is; `journal:PATH` is Optuna's journal file (for several workers)."""
    if url.startswith("journal:"):
        backend = JournalFileBackend(url.removeprefix("journal:"))
        return optuna.storages.JournalStorage(backend)
    return url


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
        params = s.parameters or space.DEFAULT_SEARCH
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


def _reporter(trial: optuna.Trial) -> Observer:
    """Feed the measure phase's running throughput to Optuna; raise TrialPruned when told."""
    step = 0

    def observe(phase: Phase, value: float | None) -> None:
        nonlocal step
        if phase is not Phase.MEASURE or value is None:
            return
        trial.report(value, step)
        step += 1
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at second {step} ({value:,.0f} records/s)")

    return observe


def _finished(study: optuna.Study) -> int:
    return sum(1 for t in study.trials if t.state.is_finished())


def _taken(study: optuna.Study) -> int:
    """Finished plus running trials: the budget several workers share."""
    return sum(1 for t in study.trials if t.state.is_finished() or t.state == TrialState.RUNNING)


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


def _observers(*observers: Observer | None) -> Observer:
    def observe(phase: Phase, value: float | None) -> None:
        for o in observers:
            if o is not None:
                o(phase, value)

    return observe


def _budget_left(
    study: optuna.Study, spec: StudySpec, sampler: optuna.samplers.BaseSampler, started: float
) -> bool:
    """Trials, time and (for a grid) points left; trials in flight elsewhere count as taken."""
    if _taken(study) >= spec.search.trials:
        return False
    if spec.search.timeout_s and time.monotonic() - started > spec.search.timeout_s:
        return False
    return not (isinstance(sampler, AskTellGridSampler) and sampler.is_exhausted(study))


def _changed(settings: dict[str, SettingValue]) -> dict[str, SettingValue]:
    defaults = space.aiokafka_defaults()
    return {k: v for k, v in settings.items() if defaults.get(k) != v}


@contextlib.contextmanager
def own_topic(spec: StudySpec, conn: Connection, suffix: str) -> Iterator[StudySpec]:
    """The spec with a topic of its own (`<topic>.<suffix>`), deleted afterwards, so each run
    starts from its own backlog and nothing is left behind in the cluster."""
    topic = replace(spec.topic, name=f"{spec.topic.name}.{suffix}", create=True)
    try:
        yield replace(spec, topic=topic)
    finally:
        with contextlib.suppress(Exception):  # best effort: a broker that is gone keeps it
            asyncio.run(cluster.delete_topic(conn, topic.name))


def optimize(
    spec: StudySpec,
    *,
    out_dir: Path,
    storage: str | None = None,
    resume: bool = False,
    on_trial: Callable[[TrialEvent], None] | None = None,
    on_phase: Observer | None = None,
) -> StudyOutcome:
    """Run the study until `search.trials` trials have finished (or the timeout); see module doc.

    `on_trial` hears each finished trial; `on_phase` the phases and running throughput of the
    trial in flight.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    url = storage or spec.study.storage or default_storage(out_dir)
    name = spec.study.name
    store = open_storage(url)
    existing = [s.study_name for s in optuna.get_all_study_summaries(store)]
    if name in existing and not resume:
        raise StudyExistsError(f"study {name!r} already exists in {url}: add --resume")
    sampler = make_sampler(spec)
    study = optuna.create_study(
        study_name=name,
        storage=store,
        directions=["maximize", "minimize"] if spec.objective.multi else ["maximize"],
        sampler=sampler,
        pruner=make_pruner(spec),
        load_if_exists=True,
    )
    params = spec.search.parameters or space.DEFAULT_SEARCH
    registry = CollectorRegistry()
    study_metrics = metrics.StudyMetrics(registry, study=name)
    started = time.monotonic()
    with (
        broker.bootstrap_for(spec.cluster.bootstrap_servers) as bootstrap,
        metrics.serve(
            metrics.exposed(registry, java_compatible=spec.metrics.java_compatible),
            host=spec.metrics.host,
            port=spec.metrics.port,
        ),
    ):
        conn = Connection(bootstrap_servers=bootstrap, cluster=spec.cluster)
        while _budget_left(study, spec, sampler, started):
            trial = study.ask()
            settings = {**spec.consumer.settings, **space.suggest(trial, params)}
            trial.set_user_attr("settings", settings)
            study_metrics.started(trial.number, settings)
            try:
                problems = space.validate_settings(settings)
                if problems:
                    raise TrialError("; ".join(f"{n}: {m}" for n, m in problems))
                with own_topic(spec, conn, f"t{trial.number}") as trial_spec:
                    result = asyncio.run(
                        run_trial(
                            trial_spec,
                            bootstrap_servers=bootstrap,
                            settings=settings,
                            group_id=f"{spec.cluster.topic_prefix}{name}.t{trial.number}",
                            registry=registry,
                            observer=_observers(
                                None if spec.objective.multi else _reporter(trial), on_phase
                            ),
                        )
                    )
            except KeyboardInterrupt:
                trial.set_user_attr("fail_reason", "interrupted")
                study.tell(trial, state=TrialState.FAIL)
                return StudyOutcome(
                    study_name=name, storage=url, best=recommended(study), interrupted=True
                )
            except optuna.TrialPruned as exc:
                trial.set_user_attr("pruned", str(exc))
                study.tell(trial, state=TrialState.PRUNED)
                _emit(
                    on_trial, study_metrics, study, spec, started,
                    number=trial.number, settings=settings, state="pruned", reason=str(exc),
                )  # fmt: skip
                continue
            except Exception as exc:  # any trial failure is recorded and the study goes on
                reason = f"{type(exc).__name__}: {exc}"
                trial.set_user_attr("fail_reason", reason)
                study.tell(trial, state=TrialState.FAIL)
                _emit(
                    on_trial, study_metrics, study, spec, started,
                    number=trial.number, settings=settings, state="failed", reason=reason,
                )  # fmt: skip
                continue
            result_score = score(result, spec.objective)
            for key, value in result_score.constraints.items():
                trial.set_constraint(key, value)
            trial.set_user_attr("result", result.to_dict())
            study.tell(trial, list(result_score.values))
            _emit(
                on_trial, study_metrics, study, spec, started,
                state="complete" if result_score.feasible else "infeasible",
                value=result_score.value, rebalances=result.rebalances,
                p99_ms=result.e2e_latency_ms.p99,
                reason=", ".join(result_score.violated()) or None,
                number=trial.number, settings=settings,
            )  # fmt: skip
    return StudyOutcome(study_name=name, storage=url, best=recommended(study), interrupted=False)


def _emit(
    on_trial: Callable[[TrialEvent], None] | None,
    study_metrics: metrics.StudyMetrics,
    study: optuna.Study,
    spec: StudySpec,
    started: float,
    *,
    number: int,
    settings: dict[str, SettingValue],
    state: str,
    value: float | None = None,
    p99_ms: float | None = None,
    rebalances: int | None = None,
    reason: str | None = None,
) -> None:
    best = recommended(study)
    study_metrics.finished(state, value, None if best is None else best.values[0])
    if on_trial is None:
        return
    on_trial(
        TrialEvent(
            number=number,
            done=_finished(study),
            total=spec.search.trials,
            state=state,
            changed=_changed(settings),
            value=value,
            p99_ms=p99_ms,
            rebalances=rebalances,
            reason=reason,
            best_value=None if best is None else best.values[0],
            elapsed_s=time.monotonic() - started,
        )
    )
