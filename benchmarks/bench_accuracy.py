"""Is the measured throughput the real one? Measured against analytical throughput.

A group of 2 members on 4 partitions whose records cost a constant 3 ms each (async) can
process at most 2 x 1000/3 = 667 records/s, whatever the batch size. `max.poll.records` sets
the batch's duration from about 10 ms to 5 s; each configuration is measured several times,
interleaved, with the same trial code `tuner run` uses. Counting records when their batch
finishes would put a whole number of batches in a window (a 12 s window of 5 s batches
measures 2 or 3 of them: 555 or 833 records/s); crediting a batch pro rata over its
processing time lands on the ceiling.
Run:  python benchmarks/bench_accuracy.py [--runs 3] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import uuid
from pathlib import Path

from tuner.broker import bootstrap_for
from tuner.config import EMBEDDED, StudySpec, parse_config
from tuner.trial.measure import run_standalone

HERE = Path(__file__).parent
RESULTS = HERE / "results"
PER_RECORD_MS = 3.0
MEMBERS = 2
CEILING = MEMBERS * 1000.0 / PER_RECORD_MS
MAX_POLL_RECORDS = (4, 33, 333, 1667)
"""Batches of 12 ms, 100 ms, 1 s and 5 s."""


def spec_for(bootstrap: str, max_poll_records: int) -> StudySpec:
    """The constant-cost workload with one batch size."""
    return parse_config({
        "cluster": {"bootstrap_servers": bootstrap},
        "topic": {"name": f"tuner.bench.accuracy.{uuid.uuid4().hex[:8]}", "partitions": 4},
        "workload": {"message_bytes": 200, "prefill_records": 60000},
        "consumer": {
            "members": MEMBERS,
            "processing": {"per_record_ms": PER_RECORD_MS, "distribution": "constant"},
            "settings": {"max.poll.records": max_poll_records},
        },
        "trial": {"warmup_s": 2, "measure_s": 12},
        "metrics": {"port": 0, "producer_port": 0},
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", default=EMBEDDED)
    args = parser.parse_args()
    measured: dict[int, list[float]] = {n: [] for n in MAX_POLL_RECORDS}
    with bootstrap_for(args.bootstrap) as bootstrap:
        for run in range(args.runs):
            for n in MAX_POLL_RECORDS:
                result = run_standalone(spec_for(bootstrap, n))
                measured[n].append(result.throughput_records_per_s)
                print(f"  run {run + 1}: max.poll.records {n}: "
                      f"{result.throughput_records_per_s:,.1f} records/s", flush=True)  # fmt: skip
    rows = []
    for n, values in measured.items():
        median = statistics.median(values)
        rows.append({
            "max_poll_records": n,
            "batch_ms": n * PER_RECORD_MS,
            "runs": values,
            "median_records_per_s": median,
            "ratio_to_ceiling": median / CEILING,
            "worst_ratio": max(values, key=lambda v: abs(v / CEILING - 1)) / CEILING,
        })  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps({
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "ceiling_records_per_s": CEILING, "rows": rows,
    }, indent=2) + "\n")  # fmt: skip
    lines = [
        f"Accuracy benchmark ({MEMBERS} members, 4 partitions, {PER_RECORD_MS:g} ms per record, "
        f"constant; analytical ceiling {CEILING:,.0f} records/s; {args.runs} runs each)",
        "",
        "| batch (max.poll.records) | median records/s | median / ceiling | worst run / ceiling |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['batch_ms']:,.0f} ms ({r['max_poll_records']}) | {r['median_records_per_s']:,.1f} "
        f"| {r['ratio_to_ceiling']:.3f} | {r['worst_ratio']:.3f} |"
        for r in rows
    ]
    (RESULTS / "accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
