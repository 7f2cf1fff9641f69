"""One broker or three: the same workload, the same consumer settings, side by side.

A single embedded broker (topic RF 1) and a 3-broker embedded cluster (a KRaft controller and
three brokers; topic RF 3, min.insync.replicas 2) run at the same time; `tuner run` measures the
same light-processing workload (6 partitions, 3 members, aiokafka's defaults) on each,
interleaved (1, 3, 3, 1, 1, 3, …) so a drift of the machine hits both alike. Reported per
cluster: median throughput, fetch latency p50/p99 and records per fetch, with every run's value.
Every run is capacity-bound: `tuner run` re-runs one that drained its backlog on a larger one,
and fails (stopping the benchmark) if it still does.
On a small machine the brokers' JVMs share the cores with the consumers: the 3-broker numbers
say what replication and three leaders cost here, not what more hardware would give.
Run:  python benchmarks/bench_brokers.py [--repeats 5] [--measure-s 10]
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

from tuner.broker import EmbeddedBroker, EmbeddedCluster

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MEMBERS = 3
PER_RECORD_MS = 0.1
CEILING = MEMBERS * 1000.0 / PER_RECORD_MS
FIELDS = {
    "throughput_records_per_s": ("throughput_records_per_s",),
    "throughput_mb_per_s": ("throughput_mb_per_s",),
    "fetch_latency_ms_p50": ("fetch", "latency_ms_p50"),
    "fetch_latency_ms_p99": ("fetch", "latency_ms_p99"),
    "records_per_fetch": ("fetch", "records_per_fetch_avg"),
}


def write_config(path: Path, *, measure_s: float, prefill: int) -> None:
    path.write_text(
        "topic: {partitions: 6}\n"
        f"workload: {{message_bytes: 512, prefill_records: {prefill}}}\n"
        f"consumer: {{members: {MEMBERS}, processing: {{per_record_ms: {PER_RECORD_MS}}}}}\n"
        f"trial: {{warmup_s: 2, measure_s: {measure_s:g}}}\n"
        "metrics: {port: 0, producer_port: 0}\n"
    )


def _field(result: dict[str, object], path: tuple[str, ...]) -> float | None:
    value: object = result
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return None if value is None else float(str(value))


def one_run(
    config: Path, bootstrap: str, topic: str, replicas: int, out: Path
) -> dict[str, object]:
    """`tuner run` on one cluster; its result as `tuner run --json` writes it."""
    extra = [] if replicas == 1 else ["--set", "topic.min_insync_replicas=2"]
    argv = [
        sys.executable, "-m", "tuner.cli", "run", str(config), "--quiet", "--json", str(out),
        "--set", f"cluster.bootstrap_servers={bootstrap}", "--set", f"topic.name={topic}",
        "--set", f"topic.replication_factor={replicas}", *extra,
    ]  # fmt: skip
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`tuner run` on {bootstrap} failed:\n{done.stderr.decode()[-2000:]}")
    result: dict[str, object] = json.loads(out.read_text())
    return result


def summary(results: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {"runs": len(results)}
    for name, path in FIELDS.items():
        values = [v for r in results if (v := _field(r, path)) is not None]
        out[name] = {
            "median": round(statistics.median(values), 1) if values else None,
            "values": [round(v, 1) for v in values],
        }
    return out


def markdown(out: dict[str, object]) -> str:
    by = out["clusters"]
    assert isinstance(by, dict)  # noqa: S101 - built just above in main()
    rows = [
        "| | 1 broker (RF 1) | 3 brokers (RF 3, min ISR 2) |",
        "|---|---|---|",
    ]
    for name in FIELDS:
        cells = [by[key][name]["median"] for key in ("1", "3")]
        rows.append(f"| {name} (median) | {cells[0]} | {cells[1]} |")
    rows.append(f"| runs (each capacity-bound) | {by['1']['runs']} | {by['3']['runs']} |")
    return (
        f"# One broker or three\n\n{out['workload']}\n\nMachine: {out['machine']}; "
        f"{out['wall_s']} s in all. Command: `{out['command']}`\n\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per cluster")
    parser.add_argument("--measure-s", type=float, default=10.0)
    parser.add_argument("--prefill", type=int, default=500000)
    args = parser.parse_args()
    started = time.monotonic()
    results: dict[str, list[dict[str, object]]] = {"1": [], "3": []}
    with tempfile.TemporaryDirectory(prefix="tuner-bench-brokers-") as tmp, contextlib.ExitStack(
    ) as stack:  # fmt: skip
        config = Path(tmp) / "brokers.yaml"
        write_config(config, measure_s=args.measure_s, prefill=args.prefill)
        one = stack.enter_context(EmbeddedBroker(heap="384m")).bootstrap_servers
        three = stack.enter_context(EmbeddedCluster(brokers=3)).bootstrap_servers
        topics = {k: f"tuner.bench.brokers.{k}.{uuid.uuid4().hex[:6]}" for k in results}
        targets = {"1": (one, 1), "3": (three, 3)}
        for r in range(args.repeats):
            order = ("1", "3") if r % 2 == 0 else ("3", "1")
            for key in order:
                bootstrap, replicas = targets[key]
                path = Path(tmp) / f"{key}-{r}.json"
                results[key].append(one_run(config, bootstrap, topics[key], replicas, path))
    out: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "workload": (
            "6 partitions, 512 B records, 3 members (processes), 0.1 ms per record, aiokafka "
            f"defaults; {args.measure_s:g} s windows after 2 s warm-up; a backlog of "
            f"{args.prefill} records per topic; analytical ceiling {CEILING:,.0f} records/s "
            "(3 members x 1 / 0.1 ms)"
        ),
        "ceiling_records_per_s": CEILING,
        "command": f"python benchmarks/bench_brokers.py --repeats {args.repeats} "
        f"--measure-s {args.measure_s:g} --prefill {args.prefill}",
        "wall_s": round(time.monotonic() - started, 1),
        "clusters": {key: summary(values) for key, values in results.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "brokers.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "brokers.md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
