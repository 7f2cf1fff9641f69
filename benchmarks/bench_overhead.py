"""Where a trial's time goes: seconds per phase, and what a trial costs beyond its measurement.

A study's trial is the measurement (its warm-up, as long as the group needed, and its window)
plus what is not: creating the topic, writing the backlog, starting the members and joining
the group, stopping them, deleting the group. This benchmark runs trials as a study does (one
topic shared by the trials, the backlog sized for the fastest rate seen, a fresh group each) on
two workloads: the quickstart's (`configs/quickstart.yaml`, its consumer at 1,000 records per
poll) and one under live Locust load. Each phase is timed from the trial's own phase changes;
`overhead_s` is a trial's wall time less its warm-up and window. Trials that had to write more
backlog before their window (a resize) or run again on a larger one (a regrow) are counted.

With `--fresh-clone`, it also times what a new user waits for: `git clone` of this repository,
the install README gives, and README's first command to its summary (the broker's jars come
from the cache when it has them, as on a second clone; `--cold` clears that cache first).

Run:  python benchmarks/bench_overhead.py [--trials 5] [--fresh-clone]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from tuner.broker import EmbeddedBroker
from tuner.config import StudySpec, load_config, parse_config
from tuner.metrics.phases import Phase
from tuner.trial.backlog import Rates
from tuner.trial.measure import measure

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
QUICKSTART = ROOT / "configs" / "quickstart.yaml"


@dataclass(slots=True)
class Clock:
    """Each phase's first change, then each trial's seconds per phase."""

    marks: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, phase: Phase, value: float | None) -> None:
        if value is None:
            self.marks.append((phase.value, time.monotonic()))

    def phases(self, ended: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for (name, at), (_, until) in zip(
            self.marks, [*self.marks[1:], ("end", ended)], strict=True
        ):
            out[name] = out.get(name, 0.0) + until - at
        return out


def _workloads(broker: str) -> dict[str, StudySpec]:
    quick = load_config(QUICKSTART, overrides=[f"cluster.bootstrap_servers={broker}"])
    quick = replace(
        quick,
        consumer=replace(
            quick.consumer, settings={**quick.consumer.settings, "max.poll.records": 1000}
        ),
    )
    live = parse_config({
        "cluster": {"bootstrap_servers": broker},
        "topic": {"name": "tuner.bench-overhead-live", "partitions": 6},
        "workload": {
            "message_bytes": 512,
            "producer": {"users": 2, "rate_per_user": 2000},
        },
        "consumer": {"members": 3, "processing": {"per_record_ms": 0.2}},
        "trial": {"warmup_s": 1.5, "measure_s": 4},
        "metrics": {"port": 0, "producer_port": 0},
    })  # fmt: skip
    return {"quickstart": quick, "live load": live}


def run_trials(spec: StudySpec, broker: str, trials: int) -> dict[str, Any]:
    """`trials` trials of `spec` on one fresh topic, as a study runs them."""
    spec = replace(
        spec, topic=replace(spec.topic, name=f"tuner.bench-overhead.{uuid.uuid4().hex[:8]}")
    )
    rates, registry, backlog = Rates(), CollectorRegistry(), 0
    rows: list[dict[str, Any]] = []
    for n in range(trials):
        clock = Clock()
        started = time.monotonic()
        measured = measure(
            spec, bootstrap_servers=broker, settings=spec.consumer.settings,
            group_id=f"{spec.topic.name}.t{n}", registry=registry,
            backlog_records=backlog, rates=rates, observer=clock,
        )  # fmt: skip
        ended = time.monotonic()
        backlog = max(backlog, measured.backlog_records)
        result = measured.result
        warm = result.warmup_s or spec.trial.warmup_s
        rows.append({
            "wall_s": round(ended - started, 2),
            "overhead_s": round(ended - started - warm - result.window_s, 2),
            "phases_s": {k: round(v, 2) for k, v in clock.phases(ended).items()},
            "warmup_s": round(warm, 2),
            "window_s": round(result.window_s, 2),
            "attempts": measured.attempts,
            "resized": measured.resized,
            "capacity_bound": not result.backlog_emptied,
            "records_per_s": round(result.throughput_records_per_s, 1),
        })  # fmt: skip
    names = sorted({k for r in rows for k in r["phases_s"]})
    return {
        "trials": rows,
        "median_overhead_s": statistics.median(r["overhead_s"] for r in rows),
        "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        "median_phase_s": {
            k: round(statistics.median(r["phases_s"].get(k, 0.0) for r in rows), 2) for k in names
        },
        "regrown": sum(r["attempts"] > 1 for r in rows),
        "resized": sum(r["resized"] > 0 for r in rows),
        "capacity_bound": sum(r["capacity_bound"] for r in rows),
    }


def fresh_clone(*, cold: bool) -> dict[str, float]:
    """Seconds for clone, install and README's first command, in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="tuner-bench-clone-") as tmp:
        where = Path(tmp) / "kafka-tuner"
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if cold:
            env["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        steps = {
            "clone": ["git", "clone", "-q", str(ROOT), str(where)],
            "install": [
                "bash", "-c",
                "python3 -m venv .venv && .venv/bin/pip install -q -e .",  # README's, quiet
            ],
            "first command": [".venv/bin/tuner", "optimize", "configs/quickstart.yaml"],
        }  # fmt: skip
        out = {}
        for name, argv in steps.items():
            started = time.monotonic()
            subprocess.run(
                argv, cwd=where if name != "clone" else tmp, env=env, check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            out[f"{name}_s"] = round(time.monotonic() - started, 1)
        out["total_s"] = round(sum(out.values()), 1)
        return out


def _line(name: str, summary: Mapping[str, Any]) -> str:
    phases = ", ".join(f"{k} {v:g}" for k, v in summary["median_phase_s"].items())
    return (
        f"{name}: {summary['median_overhead_s']:g} s per trial beyond warm-up and window "
        f"(wall {summary['median_wall_s']:g} s; {phases}); regrown {summary['regrown']}, "
        f"resized {summary['resized']}, capacity-bound {summary['capacity_bound']} of "
        f"{len(summary['trials'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per workload (default 5)")
    parser.add_argument("--fresh-clone", action="store_true", help="also time a fresh clone")
    parser.add_argument("--cold", action="store_true", help="fresh clone with no jar cache")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workloads": {},
    }
    with EmbeddedBroker(heap="512m") as broker:
        for name, spec in _workloads(broker.bootstrap_servers).items():
            out["workloads"][name] = summary = run_trials(
                spec, broker.bootstrap_servers, args.trials
            )
            print(_line(name, summary), file=sys.stderr)
    if args.fresh_clone:
        out["fresh_clone"] = fresh_clone(cold=args.cold)
        print(f"fresh clone: {out['fresh_clone']}", file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
