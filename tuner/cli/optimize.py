"""`tuner optimize` and `tuner report`: the study, the recommendation after it, its files."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from optuna.trial import FrozenTrial

from tuner import broker, report
from tuner.cli import advise as cli_advise
from tuner.cli.common import cluster_mismatch, load_spec, ports_free, say, say_broker_start
from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from tuner.cli.exits import broker_failed as _broker_failed
from tuner.cli.exits import err as _err
from tuner.cli.render import StudyProgress, ablation_line, confirm_line
from tuner.cluster.admin import ClusterError, Connection
from tuner.cluster.sample import with_topic_sample
from tuner.config import StudySpec
from tuner.recommend.recommendation import Recommendation, recommend
from tuner.search import budget, space
from tuner.search import study as stored
from tuner.search.events import StudyOutcome
from tuner.search.objective import Constraint
from tuner.search.optimize import StudyExistsError, optimize
from tuner.search.study import is_feasible, study_url, violations
from tuner.trial.run import TrialError


def optimize_command(args: argparse.Namespace) -> int:
    started = time.monotonic()  # a budget counts from here: the broker's start is in it
    spec = load_spec(args.config, [*args.set, *_budget_set(args.budget)])
    if spec is None or not ports_free(spec):
        return EXIT_BAD_INPUT
    planned = _first_plan(spec)
    if isinstance(planned, str):
        _err(planned)
        return EXIT_BAD_INPUT
    if planned is not None and not args.quiet:
        print(f"budget {spec.study.budget}: {planned.describe()}; "
              f"ETA {planned.eta_s(done=0) / 60:.1f} min", file=sys.stderr)  # fmt: skip
    out_dir = args.out or Path("tuner-out") / spec.study.name
    total = spec.search.trials if planned is None else planned.trials
    progress = StudyProgress(total, stream=sys.stderr, live=sys.stderr.isatty())
    note = space.search_space(
        spec.search.parameters, spec.consumer.settings, client=spec.consumer.client
    ).note()
    if note and not args.quiet:
        print(note, file=sys.stderr)
    try:
        field = "--storage" if args.storage else "study.storage"
        stored.reach_storage(study_url(spec, out_dir, args.storage), field=field)  # before all
        say_broker_start(spec, args.quiet)
        # One broker for the study and the runs after it (an embedded one started here would
        # otherwise start again, on fresh storage, for the ablation and the confirmation).
        with broker.for_cluster(spec.cluster) as bootstrap:
            spec = replace(spec, cluster=replace(spec.cluster, bootstrap_servers=bootstrap))
            conn = Connection(bootstrap_servers=bootstrap, cluster=spec.cluster)
            spec = with_topic_sample(spec, conn, out_dir)  # sampled once, kept for a resume
            resume = (
                f"tuner optimize {args.config} --storage "
                f"'{study_url(spec, out_dir, args.storage)}' --resume"
            )
            try:
                outcome = optimize(
                    spec, out_dir=out_dir, storage=args.storage, resume=args.resume or args.worker,
                    on_trial=None if args.quiet else progress.trial,
                    on_phase=None if args.quiet else progress.phase, started=started,
                )  # fmt: skip
            except KeyboardInterrupt:  # while the study's topic was made or removed
                outcome = None
            if outcome is None or outcome.interrupted:
                _err(f"interrupted; the study is saved. Resume with:\n  {resume}")
                return EXIT_INTERRUPTED
            if args.worker:
                print(f"worker done; the study is in {outcome.storage}")
                return EXIT_OK
            code = _recommend(spec, outcome, out_dir, confirm=True, quiet=args.quiet)
            if outcome.plan is not None:
                took = (time.monotonic() - started) / 60
                print(f"budget {spec.study.budget}: the study took {took:.1f} min; planned "
                      f"{outcome.plan.describe()}")  # fmt: skip
            return code
    except budget.BudgetTooSmall as exc:  # the broker's start left too little of it
        _err(f"study.budget: {exc}")
        return EXIT_BAD_INPUT
    except stored.StorageUnreachableError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    except (StudyExistsError, stored.StorageError) as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    except broker.BrokerError as exc:
        return _broker_failed(exc)
    except ClusterError as exc:
        return cluster_mismatch(exc, debug=args.debug)


def _recommend(
    spec: StudySpec,
    outcome: StudyOutcome,
    out_dir: Path,
    *,
    confirm: bool,
    number: int | None = None,
    quiet: bool = False,
    advised: bool = True,
) -> int:
    """Write the files of `outcome`'s recommended trial (or trial `number`), after ablating and
    confirming it when `confirm`: from what `optimize` held, or what `read_outcome` read."""
    best = outcome.best
    if best is None:
        _err(_no_feasible(outcome))
        return EXIT_FAILURE
    if number is not None:
        chosen = _feasible_trial(outcome, number)
        if chosen is None:
            name = outcome.study_name
            _err(f"trial {number} is not a complete, feasible trial of study {name!r}")
            return EXIT_BAD_INPUT
        best = chosen
    done = Recommendation(best=best)
    if outcome.plan is not None:  # what the budget's last plan left the recommendation
        spec = replace(spec, confirm=replace(
            spec.confirm, ablation_pairs=outcome.plan.ablation_pairs,
            repeats=outcome.plan.confirm_repeats,
        ))  # fmt: skip
    if confirm:
        try:
            done = recommend(
                spec, outcome, best,
                max_pairs=None if outcome.plan is None else outcome.plan.ablation_pairs + 1,
                on_step=None if quiet else say,
                on_change=None if quiet else lambda *a: say(ablation_line(*a)),
                on_run=None if quiet else lambda *a: say(confirm_line(*a)),
            )  # fmt: skip
        except TrialError as exc:
            _err(
                f"a run after the study failed: {exc}\nThe study is saved; write its files "
                "without new runs with:\n  tuner report --storage "
                f"'{outcome.storage}' --study {outcome.study_name}"
            )
            return EXIT_FAILURE
    files = report.write(
        out_dir, outcome, done,
        advice=cli_advise.study_advice_of(spec, outcome, done) if advised else None,
    )  # fmt: skip
    print(files.summary)
    names = ", ".join(f.name for f in files.paths if f.suffix != ".png")
    print(f"\nThe whole report: {out_dir / 'report.html'}\nWritten to {out_dir}: {names}")
    return EXIT_OK


def _budget_set(given: str | None) -> list[str]:
    """`--budget 10m` as the `--set` it is: validated with the config, named `study.budget`."""
    return [] if given is None else [f"study.budget={given}"]


def _first_plan(spec: StudySpec) -> budget.Plan | str | None:
    """The budget's plan before any trial (None: no budget), or why the budget is too small."""
    budget_s = budget.budget_of(spec)
    if budget_s is None:
        return None
    try:
        return budget.plan(spec, budget_s, elapsed_s=0.0, trial_walls_s=())
    except budget.BudgetTooSmall as exc:
        return f"study.budget: {exc}"


def _feasible_trial(outcome: StudyOutcome, number: int) -> FrozenTrial | None:
    return next((t for t in outcome.trials if t.number == number and is_feasible(t)), None)


ADVICE: dict[str, str] = {
    Constraint.REBALANCES: "widen max.poll.interval.ms / session.timeout.ms, "
    "or narrow max.poll.records",
    Constraint.MAX_POLL_INTERVAL_HEADROOM: "narrow max.poll.records or widen max.poll.interval.ms",
    Constraint.P99_LATENCY_MS: "loosen objective.constraints.p99_latency_ms or lower the load",
    Constraint.ERRORS: "read the trials' errors in trials.csv",
    "failed": "read fail_reason in trials.csv",
    "pruned": "use search.pruner: none or more trials",
}
"""What to change, per reason trials were not feasible: each Constraint, failed, pruned."""


def _no_feasible(outcome: StudyOutcome) -> str:
    counts = violations(outcome.study)
    if not counts:
        return f"no feasible trial among {len(outcome.trials)}: none finished"
    worst, n = counts.most_common(1)[0]
    others = ", ".join(f"{k} {v}" for k, v in counts.most_common()[1:])
    then = f"; then {others}" if others else ""
    return (
        f"no feasible trial among {len(outcome.trials)}; most common reason: {worst} "
        f"({n} trials{then}). Try: {ADVICE.get(worst, 'more trials')}."
    )


def report_command(args: argparse.Namespace) -> int:
    spec = load_spec(args.config) if args.config else StudySpec()
    if spec is None:
        return EXIT_BAD_INPUT
    try:
        outcome = stored.read_outcome(args.storage, args.study)
    except stored.StorageUnreachableError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    except stored.StorageError as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    return _recommend(
        spec, outcome, args.out, confirm=False, number=args.trial,
        advised=args.config is not None,
    )  # fmt: skip
