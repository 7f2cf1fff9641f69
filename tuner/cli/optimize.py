"""`tuner optimize` and `tuner report`: the study, the recommendation after it, its files."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import optuna

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
from tuner.recommend.recommendation import recommend
from tuner.search import space
from tuner.search import study as stored
from tuner.search.objective import Constraint
from tuner.search.optimize import StudyExistsError, optimize
from tuner.search.study import is_feasible, open_storage, recommended, study_url, violations
from tuner.trial.run import TrialError


def optimize_command(args: argparse.Namespace) -> int:
    spec = load_spec(args.config, args.set)
    if spec is None or not ports_free(spec):
        return EXIT_BAD_INPUT
    out_dir = args.out or Path("tuner-out") / spec.study.name
    progress = StudyProgress(spec.search.trials, stream=sys.stderr, live=sys.stderr.isatty())
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
                    on_phase=None if args.quiet else progress.phase,
                )  # fmt: skip
            except KeyboardInterrupt:  # while the study's topic was made or removed
                outcome = None
            if outcome is None or outcome.interrupted:
                _err(f"interrupted; the study is saved. Resume with:\n  {resume}")
                return EXIT_INTERRUPTED
            if args.worker:
                print(f"worker done; the study is in {outcome.storage}")
                return EXIT_OK
            return _recommend(
                spec,
                outcome.storage,
                outcome.study_name,
                out_dir,
                confirm=True,
                quiet=args.quiet,
                field=field,
            )
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
    storage: str,
    name: str,
    out_dir: Path,
    *,
    confirm: bool,
    number: int | None = None,
    quiet: bool = False,
    advised: bool = True,
    field: str = "--storage",
) -> int:
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage, field=field))
    except KeyError:  # what Optuna's storages raise for a study name they do not hold
        _err(f"no study {name!r} in {storage}")
        return EXIT_BAD_INPUT
    except stored.StorageUnreachableError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    except stored.StorageError as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    best = recommended(study)
    if best is None:
        _err(_no_feasible(study))
        return EXIT_FAILURE
    if number is not None:
        chosen = _feasible_trial(study, number)
        if chosen is None:
            _err(f"trial {number} is not a complete, feasible trial of study {name!r}")
            return EXIT_BAD_INPUT
        best = chosen
    confirmation = ablation = None
    if confirm:
        try:
            done = recommend(
                spec, study, best,
                on_step=None if quiet else say,
                on_change=None if quiet else lambda *a: say(ablation_line(*a)),
                on_run=None if quiet else lambda *a: say(confirm_line(*a)),
            )  # fmt: skip
            ablation, confirmation = done.ablation, done.confirmation
        except TrialError as exc:
            _err(
                f"a run after the study failed: {exc}\nThe study is saved; write its files "
                f"without new runs with:\n  tuner report --storage '{storage}' --study {name}"
            )
            return EXIT_FAILURE
    files = report.write(
        out_dir, study, best, confirmation, ablation=ablation,
        advice=cli_advise.study_advice_of(spec, best, confirmation, ablation) if advised else None,
    )  # fmt: skip
    print(files.summary)
    names = ", ".join(f.name for f in files.paths if f.suffix != ".png")
    print(f"\nThe whole report: {out_dir / 'report.html'}\nWritten to {out_dir}: {names}")
    return EXIT_OK


def _feasible_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial | None:
    return next((t for t in study.trials if t.number == number and is_feasible(t)), None)


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


def _no_feasible(study: optuna.Study) -> str:
    counts = violations(study)
    if not counts:
        return f"no feasible trial among {len(study.trials)}: none finished"
    worst, n = counts.most_common(1)[0]
    others = ", ".join(f"{k} {v}" for k, v in counts.most_common()[1:])
    then = f"; then {others}" if others else ""
    return (
        f"no feasible trial among {len(study.trials)}; most common reason: {worst} "
        f"({n} trials{then}). Try: {ADVICE.get(worst, 'more trials')}."
    )


def report_command(args: argparse.Namespace) -> int:
    spec = load_spec(args.config) if args.config else StudySpec()
    if spec is None:
        return EXIT_BAD_INPUT
    return _recommend(
        spec, args.storage, args.study, args.out, confirm=False, number=args.trial,
        advised=args.config is not None,
    )  # fmt: skip
