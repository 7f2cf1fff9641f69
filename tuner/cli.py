"""The `tuner` command: parses, calls the library, prints, and sets the exit code.

Exit codes: 0 ok, 1 the work failed, 2 bad input (config, arguments, or a setup the tool
cannot use). Only this module prints; the library logs and raises.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import optuna

from tuner import (
    __version__,
    broker,
    cli_advise,
    cli_broker,
    cli_profile,
    metrics,
    plots,
    report,
    space,
)
from tuner import study as stored
from tuner.ablation import Ablation, ablate, bench_run
from tuner.access import AccessError, redact_in_logs
from tuner.bench import bench
from tuner.cli_render import StudyProgress, ablation_line, confirm_line, render_result, summary
from tuner.cli_signals import SigtermAsCtrlC
from tuner.cluster import ClusterError, Connection, UnreachableError
from tuner.config import EMBEDDED, ConfigError, StudySpec, describe_path, load_config
from tuner.confirm import confirm_on
from tuner.exits import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
)
from tuner.exits import broker_failed as _broker_failed
from tuner.exits import err as _err
from tuner.objective import Constraint
from tuner.optimize import StudyExistsError, optimize
from tuner.payloads.sample import with_topic_sample
from tuner.study import BACKLOG_ATTR, is_feasible, open_storage, recommended, study_url, violations
from tuner.trial import (
    Phase,
    TrialError,
    backlog_for,
    peak_rate,
    run_standalone,
)

Handler = Callable[[argparse.Namespace], int]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cluster_mismatch(exc: ClusterError, *, debug: bool) -> int:
    """The cluster disagrees with the config (a topic's partition count, a missing topic, too
    few brokers) or refuses its credentials, certificate or protocol: bad input. A cluster that
    did not answer at all is a failure. Under `--debug` the traceback comes first, with the
    client's own error that caused it."""
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, UnreachableError):
        _err(str(exc))
        return EXIT_FAILURE
    what = "refused the connection" if isinstance(exc, AccessError) else "does not match the config"
    _err(f"the cluster {what}: {exc}")
    return EXIT_BAD_INPUT


def _ports_free(spec: StudySpec) -> bool:
    """Whether the metrics ports are free (else says which is taken): checked before a broker,
    topic or process is started, since binding them comes after."""
    try:
        metrics.check_ports(spec.metrics, producer=spec.workload.producer.users > 0)
    except metrics.PortInUseError as exc:
        _err(str(exc))
        return False
    return True


# --- tuner run ------------------------------------------------------------------------------


def _progress(quiet: bool) -> Callable[[Phase, float | None], None]:
    measuring = False

    def show(phase: Phase, value: float | None) -> None:
        nonlocal measuring
        if quiet:
            return
        if value is None:
            print(("\n" if measuring else "") + f"  {phase.value} …", file=sys.stderr, flush=True)
            measuring = False
        else:
            doing = "steady state" if phase is Phase.STEADY else "measuring"
            print(f"\r  {doing}: {value:,.0f} records/s", end="", file=sys.stderr, flush=True)
            measuring = True

    return show


def _load(path: Path, overrides: Sequence[str] = ()) -> StudySpec | None:
    """The config, or None after printing every problem in it."""
    try:
        spec = load_config(path, overrides=overrides)
    except ConfigError as exc:
        _err(f"{path}: invalid config:\n{exc}")
        return None
    redact_in_logs(spec.cluster.security.password)
    return spec


def _run(args: argparse.Namespace) -> int:
    spec = _load(args.config, args.set)
    if spec is None or not _ports_free(spec):
        return EXIT_BAD_INPUT
    _say_broker_start(spec, args.quiet)
    try:
        result = run_standalone(spec, observer=_progress(args.quiet))
    except broker.BrokerError as exc:
        return _broker_failed(exc)
    except ClusterError as exc:
        return _cluster_mismatch(exc, debug=args.debug)
    except TrialError as exc:
        _err(f"the trial failed: {exc}")
        return EXIT_FAILURE
    needed = backlog_for(spec, peak_rate(result))
    print(render_result(result, backlog_needed=needed))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    if result.backlog_emptied:
        _err(
            f"the run measured the supply, not the group's capacity ({result.supply}); "
            f"set workload.prefill_records to {needed:,}"
        )
        return EXIT_FAILURE
    return EXIT_OK if not result.errors else EXIT_FAILURE


# --- tuner optimize / report -----------------------------------------------------------------


def _say_broker_start(spec: StudySpec, quiet: bool) -> None:
    """The embedded broker takes seconds to start (and a minute to fetch its jars the first
    time): say so rather than sit silent."""
    network = spec.cluster.network
    if (
        not quiet
        and spec.cluster.bootstrap_servers == EMBEDDED
        and broker.reusable(network) is None
    ):
        print(
            f"starting Apache Kafka {broker.KAFKA_VERSION} on 127.0.0.1 for this run "
            f"(network: {describe_path(network)}; `tuner broker up` keeps one running) …",
            file=sys.stderr,
            flush=True,
        )


def _optimize(args: argparse.Namespace) -> int:
    spec = _load(args.config, args.set)
    if spec is None or not _ports_free(spec):
        return EXIT_BAD_INPUT
    out_dir = args.out or Path("tuner-out") / spec.study.name
    progress = StudyProgress(spec.search.trials, stream=sys.stderr, live=sys.stderr.isatty())
    note = space.search_space(
        spec.search.parameters, spec.consumer.settings, client=spec.consumer.client
    ).note()
    if note and not args.quiet:
        print(note, file=sys.stderr)
    try:
        stored.check_storage(study_url(spec, out_dir, args.storage))  # before anything starts
        _say_broker_start(spec, args.quiet)
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
                spec, outcome.storage, outcome.study_name, out_dir, confirm=True, quiet=args.quiet
            )
    except (StudyExistsError, stored.StorageError) as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    except broker.BrokerError as exc:
        return _broker_failed(exc)
    except ClusterError as exc:
        return _cluster_mismatch(exc, debug=args.debug)


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
) -> int:
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:  # what Optuna's storages raise for a study name they do not hold
        _err(f"no study {name!r} in {storage}")
        return EXIT_BAD_INPUT
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
            ablation, confirmation = _ablate_and_confirm(spec, study, best, quiet=quiet)
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
    print(summary((out_dir / "report.md").read_text()))
    names = ", ".join(f.name for f in files if f.suffix != ".png")
    print(f"\nThe whole report: {out_dir / 'report.html'}\nWritten to {out_dir}: {names}")
    return EXIT_OK


def _ablate_and_confirm(
    spec: StudySpec, study: optuna.Study, best: optuna.trial.FrozenTrial, *, quiet: bool
) -> tuple[Ablation | None, report.Confirmation]:
    """On one bench: round the best trial's values as a person would write them, cut them back
    to the changes that pay (unless `confirm.ablation_pairs` is 0), then confirm that against
    the defaults: the rounded values are the ones measured. The config's fixed settings and
    values from the user's own `choices` are written already and stay as they are."""
    chosen = {n for n, p in (spec.search.parameters or {}).items() if p.choices}
    settings = space.rounded(report.best_settings(best), keep={*spec.consumer.settings, *chosen})
    ablation = None
    with (
        broker.for_cluster(spec.cluster) as bootstrap,
        bench(spec, bootstrap_servers=bootstrap,
              backlog_records=int(study.user_attrs.get(BACKLOG_ATTR, 0))) as runs,
    ):  # fmt: skip
        if spec.confirm.ablation_pairs > 0:
            if not quiet:
                print("ablation: putting each change back to the baseline …", file=sys.stderr)
            ablation = ablate(
                settings, spec.consumer.settings, run=bench_run(runs),
                pairs=spec.confirm.ablation_pairs, importances=plots.importances(study),
                objective=spec.objective,
                on_change=None if quiet else lambda *a: _say(ablation_line(*a)),
                defaults=report.Measured(
                    client=spec.consumer.client, protocol=spec.consumer.group_protocol
                ).defaults(),
            )  # fmt: skip
            settings = dict(ablation.settings)
        if not quiet:
            print("confirming the recommendation against the defaults …", file=sys.stderr)
        return ablation, confirm_on(
            runs, settings, on_run=None if quiet else lambda *a: _say(confirm_line(*a))
        )


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


def _report(args: argparse.Namespace) -> int:
    spec = _load(args.config) if args.config else StudySpec()
    if spec is None:
        return EXIT_BAD_INPUT
    return _recommend(
        spec, args.storage, args.study, args.out, confirm=False, number=args.trial,
        advised=args.config is not None,
    )  # fmt: skip


# --- the parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuner",
        description="Load-test and tune Kafka consumers (aiokafka) against a real cluster.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="log everything; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cli_broker.add_commands(sub)
    r = sub.add_parser(
        "run",
        help="run one trial with the config's consumer settings and print what it measured",
        description="Create the topic, fill the backlog, run the consumer group, measure, report.",
    )
    r.add_argument("config", type=Path, help="the YAML config (see configs/quickstart.yaml)")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set consumer.settings.max.poll.records=100",
    )
    r.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(handler=_run)

    o = sub.add_parser(
        "optimize",
        help="search consumer settings for throughput without rebalances; recommend the best",
        description="Run an Optuna study of trials, then confirm the best against the defaults.",
    )
    o.add_argument("config", type=Path, help="the YAML config (search, objective, confirm)")
    o.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set search.trials=10")  # fmt: skip
    o.add_argument("--storage", help="Optuna storage URL (default: SQLite in the output dir)")
    o.add_argument("--out", type=Path, help="output directory (default ./tuner-out/<study>)")
    o.add_argument("--resume", action="store_true", help="continue a stored study")
    o.add_argument(
        "--worker", action="store_true",
        help="join the study in --storage (create it if missing) and only run trials; "
        "several workers share one RDB or journal storage",
    )  # fmt: skip
    o.add_argument("--quiet", action="store_true", help="no progress lines")
    o.set_defaults(handler=_optimize)

    rp = sub.add_parser(
        "report",
        help="write the recommendation files from a stored study, without running trials",
    )
    rp.add_argument("--storage", required=True, help="Optuna storage URL")
    rp.add_argument("--study", required=True, help="study name")
    rp.add_argument("--out", type=Path, default=Path("tuner-out"), help="output directory")
    rp.add_argument("--config", type=Path, help="the study's config (for base settings)")
    rp.add_argument(
        "--trial", type=int, metavar="N",
        help="write the files for this feasible trial (e.g. another point of a Pareto front)",
    )  # fmt: skip
    rp.set_defaults(handler=_report)

    cli_advise.add_parser(sub)
    cli_profile.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    optuna.logging.set_verbosity(optuna.logging.DEBUG if args.debug else optuna.logging.WARNING)
    handler: Handler = args.handler
    sigterm = SigtermAsCtrlC()
    try:
        with sigterm:
            code = handler(args)
        return EXIT_TERMINATED if sigterm.received and code == EXIT_INTERRUPTED else code
    except KeyboardInterrupt:
        _err("terminated" if sigterm.received else "interrupted")
        return EXIT_TERMINATED if sigterm.received else EXIT_INTERRUPTED
    except metrics.PortInUseError as exc:  # bound after the check, by something else meanwhile
        _err(str(exc))
        return EXIT_BAD_INPUT
    except Exception as exc:  # anything a handler did not expect: one line, or the traceback
        if args.debug:
            traceback.print_exc()
        _err(
            f"failed: {type(exc).__name__}: {exc}"
            + ("" if args.debug else " (--debug shows where)")
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
