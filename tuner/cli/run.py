"""`tuner run`: one trial with the config's settings, and what it measured."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from tuner import broker
from tuner.cli.common import cluster_mismatch, load_spec, ports_free, say_broker_start
from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK
from tuner.cli.exits import broker_failed as _broker_failed
from tuner.cli.exits import err as _err
from tuner.cli.render import render_result
from tuner.cluster.admin import ClusterError
from tuner.trial import supply
from tuner.trial.measure import run_standalone
from tuner.trial.run import Phase, TrialError


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


def run_command(args: argparse.Namespace) -> int:
    spec = load_spec(args.config, args.set)
    if spec is None or not ports_free(spec):
        return EXIT_BAD_INPUT
    say_broker_start(spec, args.quiet)
    try:
        result = run_standalone(spec, observer=_progress(args.quiet))
    except broker.BrokerError as exc:
        return _broker_failed(exc)
    except ClusterError as exc:
        return cluster_mismatch(exc, debug=args.debug)
    except TrialError as exc:
        _err(f"the trial failed: {exc}")
        return EXIT_FAILURE
    needed = supply.needed(spec, result)
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
    if result.coarse is not None:
        _err(f"the window cannot be scored: {result.coarse}")
        return EXIT_FAILURE
    return EXIT_OK if not result.errors else EXIT_FAILURE
