"""`tuner optimize`: a synchronous Optuna ask/tell loop, one isolated trial at a time.

Each trial gets its own topic and consumer group (both under the tuner's prefix, deleted
after it) and runs in its own `asyncio.run`, so nothing leaks between trials. A failed trial is
told as FAIL with its reason and the study goes on; Ctrl-C tells the trial in flight as FAIL
("interrupted") so the stored study stays consistent and `--resume` continues it.

Workers sharing a study (`--worker`) claim each trial from the study's budget and measure it
in a turn on their cluster (`tuner.search.lease`): trials on one cluster never overlap, and each
trial records the cluster it ran on (user attribute `cluster`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState
from prometheus_client import CollectorRegistry

from tuner import metrics
from tuner.clients import client_named
from tuner.cluster import access
from tuner.cluster import admin as cluster
from tuner.config import SettingValue, StudySpec
from tuner.metrics.phases import Outcome
from tuner.search import budget, lease, space
from tuner.search.context import StudyContext
from tuner.search.events import StudyOutcome, TrialEvent
from tuner.search.objective import infeasible_reason, score
from tuner.search.samplers import AskTellGridSampler, make_pruner, make_sampler
from tuner.search.study import (
    BACKLOG_ATTR,
    CLIENT_ATTR,
    CLUSTER_ATTR,
    FAIL_REASON_ATTR,
    FIXED_ATTR,
    PRUNED_ATTR,
    RESULT_ATTR,
    SETTINGS_ATTR,
    TRIAL_BACKLOG_ATTR,
    WORKER_ATTR,
    abandoned_attr,
    client_attr,
    is_feasible,
    open_storage,
    outcome_of,
    study_url,
)
from tuner.trial import supply
from tuner.trial.backlog import Rates
from tuner.trial.connect import measuring_on
from tuner.trial.measure import Measured, measure
from tuner.trial.run import Observer, Phase, TrialError

log = logging.getLogger(__name__)


class StudyExistsError(Exception):
    """The storage already holds a study of this name and `--resume` was not given."""


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


def _finished(trials: Sequence[FrozenTrial]) -> int:
    return sum(1 for t in trials if t.state.is_finished())


def _taken(trials: Sequence[FrozenTrial]) -> int:
    """Finished plus running trials: the budget several workers share."""
    return sum(1 for t in trials if t.state.is_finished() or t.state == TrialState.RUNNING)


def _best_value(trials: Sequence[FrozenTrial]) -> float | None:
    """The recommended trial's throughput: the highest of the feasible trials (in a
    two-objective study the front's highest, which no other trial can dominate)."""
    return max((t.values[0] for t in trials if is_feasible(t)), default=None)


def _observers(*observers: Observer | None) -> Observer:
    def observe(phase: Phase, value: float | None) -> None:
        for o in observers:
            if o is not None:
                o(phase, value)

    return observe


def _budget_left(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    spec: StudySpec,
    sampler: optuna.samplers.BaseSampler,
    started: float,
    *,
    planned: int | None = None,
) -> bool:
    """Trials (`planned` by a time budget, else `search.trials`), time and (for a grid) points
    left; trials in flight elsewhere count as taken."""
    if _taken(trials) >= (spec.search.trials if planned is None else planned):
        return False
    if spec.search.timeout_s and time.monotonic() - started > spec.search.timeout_s:
        return False
    return not (isinstance(sampler, AskTellGridSampler) and sampler.is_exhausted(study))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Step:
    """One trial's end, ready for the single `study.tell`."""

    outcome: Outcome
    values: list[float] | None = None
    reason: str | None = None
    measured: Measured | None = None
    interrupted: bool = False

    @property
    def state(self) -> TrialState:
        if self.outcome is Outcome.PRUNED:
            return TrialState.PRUNED
        return TrialState.FAIL if self.values is None else TrialState.COMPLETE


def _run_one_trial(
    trial: optuna.Trial, settings: dict[str, SettingValue], ctx: StudyContext
) -> _Step:
    """Measure one configuration and judge it; never raises for a trial's own failure."""
    spec = ctx.spec
    try:
        c = spec.consumer
        problems = client_named(c.client).settings_problems(settings, protocol=c.group_protocol)
        if problems:
            raise TrialError("; ".join(f"{n}: {m}" for n, m in problems))
        measured = measure(
            spec,
            bootstrap_servers=ctx.bootstrap,
            settings=settings,
            group_id=f"{spec.cluster.topic_prefix}{spec.study.name}.t{trial.number}",
            registry=ctx.registry,
            backlog_records=ctx.backlog_records,
            rates=ctx.rates,
            observer=_observers(None if spec.objective.multi else _reporter(trial), ctx.on_phase),
        )
    except KeyboardInterrupt:
        return _Step(outcome=Outcome.FAILED, reason="interrupted", interrupted=True)
    except optuna.TrialPruned as exc:
        return _Step(outcome=Outcome.PRUNED, reason=str(exc))
    except Exception as exc:  # any trial failure is recorded and the study goes on
        log.exception("trial %d failed", trial.number)
        return _Step(outcome=Outcome.FAILED, reason=f"{type(exc).__name__}: {exc}")
    result = measured.result
    if not measured.capacity_bound:
        return _Step(
            outcome=Outcome.FAILED,
            measured=measured,
            reason=(
                f"not capacity-bound: it waited on the supply in {measured.attempts} runs (the "
                f"last on {measured.backlog_records:,} records: {result.supply}), so it measured "
                "the supply; set workload.prefill_records to "
                f"{supply.needed(spec, result, ctx.rates.consumed_per_s):,}"
            ),
        )
    if result.coarse is not None and not result.rebalances:
        # A rebalancing trial is infeasible whatever its window held: it is judged below.
        return _Step(outcome=Outcome.FAILED, measured=measured, reason=result.coarse)
    judged = score(result, spec.objective)
    for key, value in judged.constraints.items():
        trial.set_constraint(key, value)
    return _Step(
        outcome=Outcome.COMPLETE if judged.feasible else Outcome.INFEASIBLE,
        values=list(judged.values),
        reason=infeasible_reason(judged, result),
        measured=measured,
    )


def optimize(
    spec: StudySpec,
    *,
    out_dir: Path,
    storage: str | None = None,
    resume: bool = False,
    on_trial: Callable[[TrialEvent], None] | None = None,
    on_phase: Observer | None = None,
    started: float | None = None,
) -> StudyOutcome:
    """Run the study until `search.trials` trials have finished (or the timeout, or what
    `study.budget` holds, counted from `started`, default now); see module doc.

    With a budget, the plan (`tuner.search.budget`) is made before anything is stored — a
    budget too small raises `budget.BudgetTooSmall` — and again after each trial; the outcome
    carries the last one, whose pairs and repeats the recommendation then runs.

    Every trial reads one backlog topic of this call's own (its fresh group starts at the
    beginning), grown before a trial whenever the fastest rate seen so far could drain it.
    `on_trial` hears each finished trial; `on_phase` the phases and running throughput of the
    trial in flight.
    """
    access.check(spec.cluster)
    out_dir.mkdir(parents=True, exist_ok=True)
    url = study_url(spec, out_dir, storage)
    name = spec.study.name
    store = open_storage(url)
    existing = [s.study_name for s in optuna.get_all_study_summaries(store)]
    if name in existing and not resume:
        raise StudyExistsError(f"study {name!r} already exists in {url}: add --resume")
    started = time.monotonic() if started is None else started
    budget_s = budget.budget_of(spec)
    if budget_s is not None:  # refused before anything is stored or started
        budget.plan(spec, budget_s, elapsed_s=time.monotonic() - started, trial_walls_s=())
    sampler = make_sampler(spec)
    registry = CollectorRegistry()
    # Refused before the study is stored: a cluster that cannot run it leaves nothing behind.
    with measuring_on(spec, registry) as conn:
        study = optuna.create_study(
            study_name=name,
            storage=store,
            directions=["maximize", "minimize"] if spec.objective.multi else ["maximize"],
            sampler=sampler,
            pruner=make_pruner(spec),
            load_if_exists=True,
        )
        with cluster.owned_topic(spec, conn, f"{name}.{uuid.uuid4().hex[:6]}") as study_spec:
            ctx = StudyContext(
                spec=study_spec,
                bootstrap=conn.bootstrap_servers,
                registry=registry,
                backlog_records=max(
                    spec.workload.prefill_records or 0, int(study.user_attrs.get(BACKLOG_ATTR, 0))
                ),
                rates=Rates(),
                on_phase=on_phase,
                coordinator=lease.Coordinator(url, study=name),
                started=started,
                budget_s=budget_s,
                before=_taken(study.get_trials(deepcopy=False)),
            )
            ctx.replan()
            try:
                interrupted = _trials(study, sampler, ctx, on_trial)
            finally:
                ctx.coordinator.close()
    outcome = outcome_of(study, storage=url, held=ctx.results, interrupted=interrupted)
    return replace(outcome, plan=ctx.plan)


def _trials(
    study: optuna.Study,
    sampler: optuna.samplers.BaseSampler,
    ctx: StudyContext,
    on_trial: Callable[[TrialEvent], None] | None,
) -> bool:
    """Ask, run and tell trials while the study's budget lasts, each in a turn on the cluster
    (workers on one cluster take turns); True if Ctrl-C (or SIGTERM) ended it."""
    spec = ctx.spec
    searched = space.search_space(
        spec.search.parameters, spec.consumer.settings, client=spec.consumer.client
    )
    study_metrics = metrics.StudyMetrics(ctx.registry, study=study.study_name)
    pending: optuna.Trial | None = None
    claimed = False
    try:
        # Read once per trial: workers sharing the study change it between two reads.
        trials = study.get_trials(deepcopy=False)
        while _budget_left(study, trials, spec, sampler, ctx.started, planned=ctx.total):
            if not ctx.coordinator.claim(budget=ctx.total, taken=_taken(trials)):
                break
            claimed = True
            with ctx.coordinator.turn(ctx.bootstrap) as turn:
                if turn.taken_over is not None:
                    _fail_abandoned(study, turn.taken_over, ctx.bootstrap)
                pending = trial = study.ask()
                asked = time.monotonic()
                claimed = False
                turn.measuring(trial.number)
                trial.set_user_attr(CLUSTER_ATTR, ctx.bootstrap)
                trial.set_user_attr(WORKER_ATTR, ctx.coordinator.holder)
                settings = searched.suggest(trial)
                trial.set_user_attr(SETTINGS_ATTR, settings)
                study_metrics.started(trial.number, settings)
                step = _run_one_trial(trial, settings, ctx)
                _record(study, trial, step, ctx)
            pending = None
            if step.interrupted:
                raise KeyboardInterrupt
            ctx.walls_s.append(time.monotonic() - asked)
            ctx.replan()
            trials = study.get_trials(deepcopy=False)
            _emit(on_trial, study_metrics, trials, spec, ctx.started, trial.number, settings, step,
                  total=ctx.total, eta_s=ctx.eta_s())  # fmt: skip
    except KeyboardInterrupt:
        if claimed:  # while waiting for the cluster: the trial was never asked
            ctx.coordinator.unclaim()
        # Ctrl-C may land between two trials as well as inside one: a trial asked but not
        # told would stay RUNNING in the storage for ever, so it is told as FAIL here.
        if pending is not None and _running(study, pending.number):
            pending.set_user_attr(FAIL_REASON_ATTR, "interrupted")
            study.tell(pending, state=TrialState.FAIL)
        return True
    return False


def _fail_abandoned(study: optuna.Study, taken: lease.TakenOver, cluster: str) -> None:
    """Tell as FAIL the trial a killed worker left running: it would count as running for ever."""
    if taken.study != study.study_name or not _running(study, taken.trial_number):
        return
    reason = f"its worker ({taken.holder}) stopped renewing the lease on {cluster} mid-trial"
    # Only a trial's own worker writes the trial's attributes (Optuna's rule): the reason is
    # the study's, under the trial's number, and `fail_reason` reads it back.
    study.set_user_attr(abandoned_attr(taken.trial_number), reason)
    study.tell(taken.trial_number, state=TrialState.FAIL)


def _running(study: optuna.Study, number: int) -> bool:
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return any(t.number == number for t in running)


def _record(study: optuna.Study, trial: optuna.Trial, step: _Step, ctx: StudyContext) -> None:
    """Store one trial's end (reason, result, the backlog it needed) and tell it, once."""
    if step.reason:
        trial.set_user_attr(PRUNED_ATTR if step.outcome is Outcome.PRUNED else FAIL_REASON_ATTR,
                            step.reason)  # fmt: skip
    if step.measured is not None:
        ctx.results[trial.number] = step.measured.result
        trial.set_user_attr(RESULT_ATTR, step.measured.result.to_dict())
        trial.set_user_attr(TRIAL_BACKLOG_ATTR, step.measured.backlog_records)
        # The next trial's backlog: for the fastest rate seen so far (the settings change it).
        ctx.backlog_records = max(
            step.measured.backlog_records,
            supply.first_backlog(ctx.spec, ctx.rates.consumed_per_s),
            ctx.backlog_records,
        )
        study.set_user_attr(BACKLOG_ATTR, ctx.backlog_records)
        study.set_user_attr(FIXED_ATTR, dict(ctx.spec.consumer.settings))
        study.set_user_attr(CLIENT_ATTR, client_attr(ctx.spec.consumer))
    study.tell(trial, step.values, state=step.state)


def _emit(  # noqa: PLR0917 - a private step of optimize, called once
    on_trial: Callable[[TrialEvent], None] | None,
    study_metrics: metrics.StudyMetrics,
    trials: Sequence[FrozenTrial],
    spec: StudySpec,
    started: float,
    number: int,
    settings: dict[str, SettingValue],
    step: _Step,
    *,
    total: int | None = None,
    eta_s: float | None = None,
) -> None:
    """Tell the study's metrics and `on_trial` of one finished trial; `total` is the trials
    planned (default `search.trials`), `eta_s` the time to the study's end as planned."""
    best = _best_value(trials)
    value = None if step.values is None else step.values[0]
    study_metrics.finished(step.outcome, value, best)
    if on_trial is None:
        return
    result = None if step.measured is None else step.measured.result
    on_trial(
        TrialEvent(
            number=number,
            done=_finished(trials),
            total=spec.search.trials if total is None else total,
            state=step.outcome,
            changed=client_named(spec.consumer.client).changed(
                settings, protocol=spec.consumer.group_protocol
            ),
            value=value,
            p99_ms=None if result is None or result.steady is None else result.steady.p99_ms,
            record_age_p99_ms=None if result is None else result.record_age_ms.p99,
            rebalances=None if result is None else result.rebalances,
            reason=step.reason,
            best_value=best,
            elapsed_s=time.monotonic() - started,
            eta_s=eta_s,
        )
    )
