"""`tuner advise`: its options, reading the facts it is given, and printing or serving the
findings. Part of the command (it prints and sets the exit code); the advisor is `tuner.advice`.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

from tuner import advice, report
from tuner.advice import Finding, Severity
from tuner.advice.serve import DEFAULT_PORT, AdviceService, Round, serving, watch
from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK
from tuner.cli.exits import err as _err
from tuner.config import ConfigError, StudySpec, load_config
from tuner.search.events import StudyOutcome
from tuner.trial.result import TrialResult


def _usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, if anything."""
    if args.config is None and args.run is None and args.prometheus is None:
        return "advise needs a CONFIG, --run FILE or --prometheus URL (any of them together)"
    if args.prometheus is not None and (bad := advice.url_problem(args.prometheus)):
        return f"--prometheus: {bad}"
    if args.set and args.config is None:
        return "--set overrides a config value: give the CONFIG too"
    if args.prometheus is None:
        for flag, given in (("--group", args.group), ("--every", args.every),
                            ("--names", args.names != "auto")):  # fmt: skip
            if given:
                return f"{flag} reads a live Prometheus: give --prometheus URL too"
    if args.every is not None and args.fail_on is not None:
        return "--fail-on ends with an exit code; --every keeps serving: use one of them"
    for flag, text in (("--window", args.window), ("--every", args.every)):
        if text is not None:
            try:
                advice.parse_duration(text)
            except ValueError as exc:
                return f"{flag}: {exc}"
    if not 0 <= args.port <= 65535:
        return f"--port must be in [0, 65535], got {args.port}"
    return None


def _base(args: argparse.Namespace) -> tuple[advice.Facts | None, bool]:
    """The facts of the config and the run (None without either); False after printing why
    one cannot be read."""
    base = None
    if args.config is not None:
        try:
            spec = load_config(args.config, overrides=args.set, rules=False)
        except ConfigError as exc:
            _err(f"{args.config}: invalid config:\n{exc}")
            return None, False
        base = advice.from_config(spec)
    if args.run is not None:
        try:
            result = TrialResult.from_dict(json.loads(args.run.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            _err(f"--run {args.run}: not a result written by `tuner run --json` ({exc})")
            return None, False
        run = advice.from_run(result)
        base = run if base is None else advice.merge(base, run)
    return base, True


def run(args: argparse.Namespace) -> int:
    """`tuner advise`: parse, gather the facts, check, print (or serve), exit code."""
    usage = _usage(args)
    if usage is not None:
        _err(usage)
        return EXIT_BAD_INPUT
    base, ok = _base(args)
    if not ok:
        return EXIT_BAD_INPUT
    sources = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("config", args.config),
            ("run", args.run),
            ("Prometheus", args.prometheus),
        )
        if value is not None
    )
    window_s = advice.parse_duration(args.window)

    def check() -> tuple[advice.Finding, ...]:
        return advice.check(
            base, prometheus_url=args.prometheus, names=args.names, group=args.group,
            window_s=window_s,
        )  # fmt: skip

    if args.every is not None:
        return _service(args, check, sources)
    try:
        findings = check()
    except advice.PrometheusError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    if args.json:
        print(json.dumps({"sources": sources, "findings": [f.to_dict() for f in findings]},
                         indent=2))  # fmt: skip
    else:
        print(render_advice(findings, sources=sources))
    if args.fail_on is not None and advice.at_least(findings, advice.Severity(args.fail_on)):
        return EXIT_FAILURE
    return EXIT_OK


def _service(
    args: argparse.Namespace, check: Callable[[], tuple[advice.Finding, ...]], sources: str
) -> int:
    """Check every --every and serve the findings until Ctrl-C."""
    service = AdviceService()
    stop = threading.Event()

    def said(done: Round) -> None:
        if done.error is not None:
            _err(f"check failed (the last findings stay served): {done.error}")
        elif not args.quiet:
            counts = ", ".join(
                f"{sum(1 for f in done.findings if f.severity is s)} {s.value}"
                for s in advice.Severity
            )
            print(f"checked {sources}: {counts}", flush=True)

    with serving(service, host=args.host, port=args.port) as port:
        print(f"serving findings on http://{args.host}:{port}/metrics and /findings "
              f"every {args.every}; Ctrl-C stops", flush=True)  # fmt: skip
        try:
            watch(service, check, every_s=advice.parse_duration(args.every), stop=stop,
                  on_round=said)  # fmt: skip
        except KeyboardInterrupt:
            stop.set()
    return EXIT_OK


def render_advice(findings: tuple[Finding, ...], *, sources: str) -> str:
    """The advisor's findings, worst first, grouped by consumer group, with a count line."""
    lines = [f"advice from {sources}"]
    group: str | None = None
    for f in findings:
        if f.group != group and f.group:
            lines += ["", f"group {f.group}"]
        group = f.group
        lines += ["", f"{f.severity.value.upper():<8} {f.code} {f.rule}: {f.title}"]
        for label, body in (("numbers", f.arithmetic), ("why", f.semantics), ("change", f.change)):
            lines += textwrap.wrap(
                body, width=100, initial_indent=f"{'':9}{label + ':':<9}",
                subsequent_indent=" " * 18, break_on_hyphens=False,
            )  # fmt: skip
    counts = ", ".join(f"{sum(1 for f in findings if f.severity is s)} {s.value}" for s in Severity)
    lines += ["", f"{len(findings)} finding{'' if len(findings) == 1 else 's'}: {counts}"]
    return "\n".join(lines)


def study_advice_of(
    spec: StudySpec, outcome: StudyOutcome, recommendation: report.Recommendation
) -> advice.StudyAdvice:
    """The advisor on the defaults and on the recommendation, with the runs measured of each
    (the confirmation's, else the best trial's own)."""
    confirmation = recommendation.confirmation
    runs = confirmation.runs if confirmation is not None else {}
    best_run = outcome.result(recommendation.best)
    return advice.study_advice(
        spec, recommendation.settings,
        default_runs=runs.get(report.Candidate.AIOKAFKA_DEFAULTS, ()),
        recommended_runs=runs.get(report.Candidate.BEST, ()) or ((best_run,) if best_run else ()),
    )  # fmt: skip


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`tuner advise` and its options, on the `tuner` command's subparsers."""
    a = sub.add_parser(
        "advise",
        help="what is risky in a consumer group's settings, why, and what to change",
        description="Findings from a config, a run's result (--run) and/or a live Prometheus "
        "(--prometheus): each with a code, a severity, the numbers, and the change to make.",
    )
    a.add_argument("config", type=Path, nargs="?", help="a YAML config (workload and settings)")
    a.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value")  # fmt: skip
    a.add_argument("--run", type=Path, metavar="FILE", help="a result from `tuner run --json`")
    a.add_argument("--prometheus", metavar="URL", help="a Prometheus scraping the consumers")
    a.add_argument("--group", help="only this consumer group (Java names: client ids with it)")
    a.add_argument(
        "--names", choices=("auto", "tuner", "java"), default="auto",
        help="metric names to read: tuner_consumer_*, the Java client's kafka_consumer_*, or "
        "auto (ours if present)",
    )  # fmt: skip
    a.add_argument("--window", default="5m", help="how far back to look in Prometheus (5m)")
    a.add_argument("--json", action="store_true", help="print the findings as JSON")
    a.add_argument("--fail-on", choices=("risk", "warning"),
                   help="exit 1 when a finding at this severity or worse exists")  # fmt: skip
    a.add_argument("--every", metavar="DURATION",
                   help="keep checking this often (e.g. 60s) and serve the findings")  # fmt: skip
    a.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"with --every: where to serve ({DEFAULT_PORT})")  # fmt: skip
    a.add_argument("--host", default="127.0.0.1", help="with --every: address to bind")
    a.add_argument("--quiet", action="store_true", help="with --every: no line per check")
    a.set_defaults(handler=run)
