"""`tuner profile`: a study config from a group's Prometheus metrics or `tuner run --json`
results. Part of the command (it prints and sets the exit code); the work is `tuner.profile`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tuner import advice, profile
from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_OK
from tuner.cli.exits import err as _err
from tuner.trial.result import TrialResult


def _usage(args: argparse.Namespace) -> str | None:
    if (args.prometheus is None) == (not args.run):
        return "profile needs --prometheus URL --group G, or --run FILE (one of them)"
    if args.prometheus is not None and (bad := advice.url_problem(args.prometheus)):
        return f"--prometheus: {bad}"
    if args.prometheus is not None and not args.group:
        return "--prometheus needs --group: the consumer group to profile"
    for flag, text in (("--window", args.window), ("--step", args.step)):
        try:
            advice.parse_duration(text)
        except ValueError as exc:
            return f"{flag}: {exc}"
    return None


def _read_runs(paths: list[Path]) -> list[TrialResult] | None:
    results = []
    for path in paths:
        try:
            results.append(TrialResult.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            _err(f"--run {path}: not a result written by `tuner run --json` ({exc})")
            return None
    return results


def run(args: argparse.Namespace) -> int:
    """`tuner profile`: read, fit, write the config, say what it holds."""
    usage = _usage(args)
    if usage is not None:
        _err(usage)
        return EXIT_BAD_INPUT
    try:
        if args.run:
            results = _read_runs(args.run)
            if results is None:
                return EXIT_BAD_INPUT
            found = profile.from_runs(results, names=[str(p) for p in args.run])
        else:
            found = profile.from_prometheus(
                args.prometheus, group=args.group, names=args.names, mode=args.mode,
                window_s=advice.parse_duration(args.window),
                step_s=advice.parse_duration(args.step),
            )  # fmt: skip
        text = profile.render(found, fix_current=args.fix_current)
    except (profile.ProfileError, advice.PrometheusError) as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    args.out.write_text(text)
    c = found.cost
    print(f"wrote {args.out}: group {found.group}, {c.samples} samples")
    print(f"  per record {c.per_record_ms.value:.4g} ms ({c.per_record_ms.sure})")
    print(f"  per batch  {c.per_batch_ms.value:.4g} ms ({c.per_batch_ms.sure})")
    print(f"  {c.distribution}, mode {c.mode} ({c.mode_estimate.source})")
    print(f"check it: tuner advise {args.out}; study it: tuner optimize {args.out}")
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`tuner profile` and its options, on the `tuner` command's subparsers."""
    p = sub.add_parser(
        "profile",
        help="a study config from a consumer group's metrics or from `tuner run --json` results",
        description="Profile a consumer group: members, partitions, record size, load and the "
        "processing model (per-record and per-batch cost, spread, async or cpu), written as a "
        "study config with each number's source.",
    )
    p.add_argument("--prometheus", metavar="URL", help="a Prometheus scraping the consumers")
    p.add_argument("--group", help="the consumer group (Java names: client ids containing it)")
    p.add_argument("--names", choices=("auto", "tuner", "java"), default="auto",
                   help="metric names to read (auto: ours if present)")  # fmt: skip
    p.add_argument("--window", default="1h", help="how far back to read Prometheus (1h)")
    p.add_argument("--step", default="30s", help="one sample per member per step (30s)")
    p.add_argument("--mode", choices=("async", "cpu"),
                   help="the handler's mode, if the metrics cannot tell")  # fmt: skip
    p.add_argument("--run", type=Path, action="append", default=[], metavar="FILE",
                   help="a `tuner run --json` result; repeat to pool runs (other batch sizes "
                   "separate per-record from per-batch cost)")  # fmt: skip
    p.add_argument("--fix-current", action="store_true",
                   help="also fix the searched settings at their current values")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="the study config to write")
    p.set_defaults(handler=run)
