"""What a second worker buys: the same study (same seed, same budget) with 1 and 2 workers.

Each worker is a `tuner optimize --worker` process with an embedded broker of its own; they
share one study storage. Reported per run: wall time, trials per minute, the best feasible
throughput, and each worker's trials. The workload costs a constant `PER_RECORD_MS` per record
on one member, so every trial whose batches are not tiny has the same analytical ceiling
(1000 / PER_RECORD_MS records/s): how far each worker's trials land from it, alone and with a
second worker sharing the CPU, is the isolation claim checked; and checked directly: the best
settings measured `--repeats` times by worker 1 alone and by workers 1 and 2 at once, each
with its 95% interval.
Run:  python benchmarks/bench_scale.py [--trials 6] [--repeats 3] [--storage URL]   (a few minutes)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from tuner.broker import EmbeddedBroker
from tuner.search.study import PRUNED_ATTR, WORKER_ATTR, fail_reason, open_storage, recommended

HERE = Path(__file__).parent
RESULTS = HERE / "results"
PER_RECORD_MS = 2.0
CEILING = 1000.0 / PER_RECORD_MS


def write_config(path: Path, study: str, trials: int, seed: int) -> None:
    path.write_text(
        f"topic: {{name: tuner.bench.scale.{uuid.uuid4().hex[:6]}, partitions: 2}}\n"
        "workload: {prefill_records: 8000, message_bytes: 100}\n"
        f"consumer: {{members: 1, processing: {{per_record_ms: {PER_RECORD_MS}, "
        "distribution: constant}}\n"
        "trial: {warmup_s: 1, measure_s: 4}\n"
        "metrics: {port: 0, producer_port: 0}\n"
        f"search: {{trials: {trials}, sampler: random, seed: {seed}, parameters: "
        "{max.poll.records: {low: 50, high: 1000, log: true}}}\n"
        f"study: {{name: {study}}}\n"
    )


def _why(trial: FrozenTrial, study_attrs: dict[str, object]) -> object:
    """What the study says about a trial that did not complete, as the report says it: its
    own fail reason, the one a killed worker's trial was left with, or why it was pruned."""
    return fail_reason(trial, study_attrs) or trial.user_attrs.get(PRUNED_ATTR)


def run(workers: int, trials: int, seed: int, storage: str | None, tmp: Path) -> dict[str, object]:
    """One study with `workers` workers, each on a broker of its own."""
    study = f"tuner.bench.scale.{workers}w.{uuid.uuid4().hex[:6]}"
    config = tmp / f"{workers}.yaml"
    write_config(config, study, trials, seed)
    url = storage or f"journal:{tmp / f'{workers}.journal'}"
    with contextlib.ExitStack() as stack:
        brokers = [stack.enter_context(EmbeddedBroker(heap="512m")) for _ in range(workers)]
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tuner.cli",
                    "optimize",
                    str(config),
                    "--storage",
                    url,
                    "--worker",
                    "--quiet",
                    "--out",
                    str(tmp / f"{workers}-{i}"),
                    "--set",
                    f"cluster.bootstrap_servers={b.bootstrap_servers}",
                ],
                stdout=subprocess.DEVNULL,
            )
            for i, b in enumerate(brokers)
        ]
        codes = [p.wait() for p in procs]
        wall_s = time.monotonic() - started
    loaded = optuna.load_study(study_name=study, storage=open_storage(url))
    done = [t for t in loaded.trials if t.state == TrialState.COMPLETE]
    best = recommended(loaded)
    by_worker: dict[str, list[float]] = {}
    for t in done:
        by_worker.setdefault(str(t.user_attrs[WORKER_ATTR]), []).append(float(t.values[0]))
    return {
        "workers": workers,
        "exit_codes": codes,
        "wall_s": round(wall_s, 1),
        "trials": len(loaded.trials),
        "complete": len(done),
        "not_complete": [
            f"{t.number} {t.state.name}: {_why(t, loaded.user_attrs)}"
            for t in loaded.trials
            if t.state != TrialState.COMPLETE
        ],
        "trials_per_min": round(len(done) / wall_s * 60, 2),
        "best_records_per_s": None if best is None else round(best.values[0], 1),
        "best_max_poll_records": None if best is None else best.params.get("max.poll.records"),
        "per_worker": {
            f"worker {i + 1}": {
                "trials": len(values),
                "mean_records_per_s": round(statistics.fmean(values), 1),
                "sd": round(statistics.stdev(values), 1) if len(values) > 1 else None,
                "mean_of_ceiling": round(statistics.fmean(values) / CEILING, 3),
            }
            for i, values in enumerate(by_worker.values())
        },
    }


def _interval(values: list[float]) -> dict[str, object]:
    """Mean and its 95% t-interval (n < 2: no interval)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"n": len(values), "mean_records_per_s": round(mean, 1), "ci95": None}
    half = (
        float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / len(values) ** 0.5
    )
    return {
        "n": len(values),
        "mean_records_per_s": round(mean, 1),
        "ci95": [round(mean - half, 1), round(mean + half, 1)],
        "mean_of_ceiling": round(mean / CEILING, 3),
    }


def _runs(config: Path, brokers: list[str], records: int, tmp: Path, tag: str) -> list[float]:
    """`tuner run` of the same settings on each broker at once; each one's throughput."""
    outs = [tmp / f"iso-{tag}-{i}.json" for i in range(len(brokers))]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tuner.cli",
                "run",
                str(config),
                "--quiet",
                "--json",
                str(out),
                "--set",
                f"cluster.bootstrap_servers={b}",
                "--set",
                f"consumer.settings.max.poll.records={records}",
            ],
            stdout=subprocess.DEVNULL,
        )
        for b, out in zip(brokers, outs, strict=True)
    ]
    if any(p.wait() for p in procs):
        raise SystemExit(f"a `tuner run` of the isolation check failed ({tag})")
    return [float(json.loads(out.read_text())["throughput_records_per_s"]) for out in outs]


def isolation(records: int, repeats: int, tmp: Path) -> dict[str, object]:
    """The same settings measured by worker 1 alone, then by workers 1 and 2 at the same time
    (each on its broker, as in a 2-worker study): if the intervals agree, a second worker on
    this machine does not move what a worker measures."""
    config = tmp / "isolation.yaml"
    write_config(config, "tuner.bench.scale.isolation", 1, 0)
    alone: list[float] = []
    together: list[list[float]] = [[], []]
    with contextlib.ExitStack() as stack:
        brokers = [
            stack.enter_context(EmbeddedBroker(heap="512m")).bootstrap_servers for _ in range(2)
        ]
        for r in range(repeats):  # interleaved, so a drift of the machine hits both alike
            alone += _runs(config, brokers[:1], records, tmp, f"alone{r}")
            for i, value in enumerate(_runs(config, brokers, records, tmp, f"both{r}")):
                together[i].append(value)
    return {
        "max.poll.records": records,
        "worker 1 alone": _interval(alone),
        "worker 1 beside worker 2": _interval(together[0]),
        "worker 2 beside worker 1": _interval(together[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--storage", help="a study storage URL (default: a journal file)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per worker of the isolation check"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuner-bench-scale-") as tmp:
        runs = [run(n, args.trials, args.seed, args.storage, Path(tmp)) for n in (1, 2)]
        best = runs[-1]["best_max_poll_records"]
        checked = isolation(int(best) if isinstance(best, int) else 500, args.repeats, Path(tmp))
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "ceiling_records_per_s": CEILING,
        "runs": runs,
        "isolation": checked,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
