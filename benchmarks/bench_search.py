"""Does TPE earn its keep? TPE against random search on the same reference workload and budget.

Each sampler runs the study of `search-reference.yaml` with the same seeds, studies interleaved
(TPE seed 1, random seed 1, TPE seed 2, …) on one broker, so drift hits both alike. Reported per
sampler: the best feasible throughput reached (median over seeds) and the trials needed to get
within 5% of the best feasible throughput any study saw.
Run:  python benchmarks/bench_search.py [--trials 30] [--seeds 3] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from tuner.broker import bootstrap_for
from tuner.config import EMBEDDED, load_config
from tuner.search.events import TrialEvent
from tuner.search.optimize import optimize
from tuner.search.study import is_feasible

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SAMPLERS = ("tpe", "random")


def run_study(config: Path, bootstrap: str, sampler: str, seed: int, trials: int) -> list[float]:
    """Each trial's feasible throughput in trial order (0 for infeasible, failed or pruned)."""
    spec = load_config(config)
    spec = replace(
        spec,
        cluster=replace(spec.cluster, bootstrap_servers=bootstrap),
        search=replace(spec.search, sampler=sampler, seed=seed, trials=trials),  # type: ignore[arg-type]
        study=replace(spec.study, name=f"bench-{sampler}-{seed}-{int(time.time())}"),
    )

    def progress(e: TrialEvent) -> None:
        value = "-" if e.value is None else f"{e.value:,.0f}/s"
        print(
            f"  {sampler} seed {seed} trial {e.number}: {e.state} {value} ({e.elapsed_s:.0f} s)",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/study.db"
        optimize(spec, out_dir=Path(tmp), storage=storage, on_trial=progress)
        study = optuna.load_study(study_name=spec.study.name, storage=storage)
        values = []
        for t in sorted(study.trials, key=lambda t: t.number):
            values.append(t.values[0] if is_feasible(t) else 0.0)
        return values


def trials_to_reach(values: list[float], target: float) -> int | None:
    """1-based number of the first trial at or above `target`, or None."""
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster (default: the embedded one)")
    parser.add_argument("--config", type=Path, default=HERE / "search-reference.yaml")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs: dict[str, dict[int, list[float]]] = {s: {} for s in SAMPLERS}
    started = time.monotonic()
    with bootstrap_for(args.bootstrap or EMBEDDED) as bootstrap:
        for seed in range(1, args.seeds + 1):
            for sampler in SAMPLERS:
                runs[sampler][seed] = run_study(args.config, bootstrap, sampler, seed, args.trials)
    best_ever = max(max(v) for per_seed in runs.values() for v in per_seed.values())
    target = 0.95 * best_ever
    summary = {}
    for sampler, per_seed in runs.items():
        bests = [max(v) for v in per_seed.values()]
        reach = [trials_to_reach(v, target) for v in per_seed.values()]
        summary[sampler] = {
            "best_median": statistics.median(bests),
            "best_per_seed": bests,
            "trials_to_95pct_per_seed": reach,
            "reached_95pct": sum(r is not None for r in reach),
            "trials_to_95pct_median": statistics.median(
                [r if r is not None else args.trials + 1 for r in reach]
            ),
        }
    result: dict[str, Any] = {
        "benchmark": "search: TPE vs random",
        "config": args.config.name,
        "trials": args.trials,
        "seeds": args.seeds,
        "best_ever": best_ever,
        "target_95pct": target,
        "samplers": summary,
        "per_trial": {s: {str(k): v for k, v in d.items()} for s, d in runs.items()},
        "wall_s": round(time.monotonic() - started),
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "search.md").write_text(_markdown(result))
    print(_markdown(result))


def _markdown(r: dict[str, Any]) -> str:
    samplers = r["samplers"]
    trials = r["trials"]
    lines = [
        f"Search benchmark ({r['config']}, {trials} trials, {r['seeds']} seeds per sampler; "
        f"best feasible throughput any study saw: {r['best_ever']:,.0f} records/s)",
        "",
        "| sampler | best throughput, median of seeds | per seed | trials to within 5% of best "
        "(median; not reached = budget+1) | per seed |",
        "|---|---|---|---|---|",
    ]
    for name, s in samplers.items():
        per_seed = ", ".join(f"{b:,.0f}" for b in s["best_per_seed"])
        reach = ", ".join("-" if x is None else str(x) for x in s["trials_to_95pct_per_seed"])
        lines.append(
            f"| {name} | {s['best_median']:,.0f}/s | {per_seed} | "
            f"{s['trials_to_95pct_median']:g} | {reach} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
