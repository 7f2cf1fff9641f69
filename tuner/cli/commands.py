"""The `tuner` command's parser and `main`: each subcommand's handler lives in its own module
(`run`, `optimize`, `advise`, `broker`, `clean`, `profile`) and calls one library function.

Exit codes: 0 ok, 1 the work failed, 2 bad input (config, arguments, or a setup the tool
cannot use). Only this package prints; the library logs and raises.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna

from tuner import __version__, metrics
from tuner.cli import advise as cli_advise
from tuner.cli import broker as cli_broker
from tuner.cli import profile as cli_profile
from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED
from tuner.cli.exits import err as _err
from tuner.cli.optimize import optimize_command, report_command
from tuner.cli.run import run_command
from tuner.cli.signals import SigtermAsCtrlC

Handler = Callable[[argparse.Namespace], int]


# --- tuner run ------------------------------------------------------------------------------


# --- tuner optimize / report -----------------------------------------------------------------


# --- the parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuner",
        description="Load-test and tune Kafka consumers (aiokafka, confluent-kafka) against a "
        "real cluster.",
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
    r.set_defaults(handler=run_command)

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
        "--budget", metavar="DURATION",
        help="end the whole study within this time (e.g. 10m, 1h30m): trials, ablation pairs "
        "and confirmation repeats are planned from what a trial costs (study.budget)",
    )  # fmt: skip
    o.add_argument(
        "--worker", action="store_true",
        help="join the study in --storage (create it if missing) and only run trials; "
        "several workers share one RDB or journal storage",
    )  # fmt: skip
    o.add_argument("--quiet", action="store_true", help="no progress lines")
    o.set_defaults(handler=optimize_command)

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
    rp.set_defaults(handler=report_command)

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
