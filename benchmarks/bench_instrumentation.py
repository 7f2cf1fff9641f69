"""What the instrumentation costs: InstrumentedConsumer vs a plain AIOKafkaConsumer.

Both drain the same prefilled backlog from the beginning (a fresh group id per run), with the
same settings and no processing, one consumer in this process; runs alternate A B A B … and
the medians are compared. Run:  python benchmarks/bench_instrumentation.py [--bootstrap H:P]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from tuner.broker import bootstrap_for
from tuner.cluster.admin import Connection, ensure_topic
from tuner.cluster.prefill import prefill
from tuner.config import EMBEDDED, ClusterSpec, TopicSpec, WorkloadSpec
from tuner.consumer import InstrumentedConsumer
from tuner.metrics import ConsumerMetrics

RESULTS = Path(__file__).parent / "results"


Run = tuple[float, float]
"""(records per wall-clock second, CPU microseconds of this process per record)."""


def _rates(total: int, wall: float, cpu: float) -> Run:
    return total / wall, cpu / total * 1e6


async def drain_plain(bootstrap: str, topic: str, total: int) -> Run:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"tuner.bench.{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        seen, started, cpu = 0, time.perf_counter(), time.process_time()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=200)
            seen += sum(len(records) for records in batch.values())
        return _rates(total, time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await consumer.stop()


async def drain_instrumented(bootstrap: str, topic: str, total: int) -> Run:
    group = f"tuner.bench.{uuid.uuid4().hex[:8]}"
    metrics = ConsumerMetrics(CollectorRegistry(), group=group, member="m0")
    consumer = InstrumentedConsumer(
        topic, metrics=metrics, bootstrap_servers=bootstrap, group_id=group,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        seen, started, cpu = 0, time.perf_counter(), time.process_time()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=200)
            consumer.processed(batch, 0.0)
            seen += sum(len(records) for records in batch.values())
        return _rates(total, time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster (default: start the embedded one)")
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--message-bytes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5, help="runs of each, interleaved")
    args = parser.parse_args()
    with bootstrap_for(args.bootstrap or EMBEDDED) as bootstrap:
        conn = Connection(bootstrap_servers=bootstrap, cluster=ClusterSpec())
        topic = f"tuner.bench.{uuid.uuid4().hex[:8]}"
        asyncio.run(ensure_topic(conn, TopicSpec(name=topic, partitions=6)))
        workload = WorkloadSpec(message_bytes=args.message_bytes)
        asyncio.run(prefill(conn, topic, workload, records=args.records))
        asyncio.run(drain_plain(bootstrap, topic, args.records))  # warm the broker's page cache
        plain: list[Run] = []
        instrumented: list[Run] = []
        for i in range(args.runs):
            plain.append(asyncio.run(drain_plain(bootstrap, topic, args.records)))
            instrumented.append(asyncio.run(drain_instrumented(bootstrap, topic, args.records)))
            print(
                f"run {i + 1}: plain {plain[-1][0]:,.0f}/s {plain[-1][1]:.2f} µs CPU/record, "
                f"instrumented {instrumented[-1][0]:,.0f}/s {instrumented[-1][1]:.2f} µs CPU/record"
            )
    p_rate = statistics.median(r for r, _ in plain)
    i_rate = statistics.median(r for r, _ in instrumented)
    p_cpu = statistics.median(c for _, c in plain)
    i_cpu = statistics.median(c for _, c in instrumented)
    ratio = i_rate / p_rate
    # Runs drift together (CPU frequency, the broker's page cache), so the pairs A_i/B_i are
    # the fairer comparison; their median is the headline number.
    paired = statistics.median(i[0] / p[0] for p, i in zip(plain, instrumented, strict=True))
    result = {
        "benchmark": "instrumentation overhead",
        "records": args.records,
        "message_bytes": args.message_bytes,
        "runs_each": args.runs,
        "plain_runs": [{"records_per_s": r, "cpu_us_per_record": c} for r, c in plain],
        "instrumented_runs": [
            {"records_per_s": r, "cpu_us_per_record": c} for r, c in instrumented
        ],
        "plain_median_records_per_s": p_rate,
        "instrumented_median_records_per_s": i_rate,
        "throughput_ratio_of_medians": ratio,
        "throughput_ratio_paired_median": paired,
        "plain_median_cpu_us_per_record": p_cpu,
        "instrumented_median_cpu_us_per_record": i_cpu,
        "cpu_overhead_percent": (i_cpu / p_cpu - 1) * 100,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "instrumentation.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "instrumentation.md").write_text(
        "| consumer | median records/s | median CPU µs per record |\n|---|---|---|\n"
        f"| plain AIOKafkaConsumer | {p_rate:,.0f} | {p_cpu:.2f} |\n"
        f"| InstrumentedConsumer | {i_rate:,.0f} | {i_cpu:.2f} |\n"
        f"| instrumented / plain (ratio of medians) | {ratio:.3f} | {i_cpu / p_cpu:.3f} |\n"
        f"| instrumented / plain (median of paired runs) | {paired:.3f} | |\n"
    )
    print(
        f"median plain {p_rate:,.0f}/s ({p_cpu:.2f} µs CPU/record), instrumented "
        f"{i_rate:,.0f}/s ({i_cpu:.2f} µs CPU/record): throughput ratio {ratio:.3f} "
        f"(paired {paired:.3f}), "
        f"CPU overhead {(i_cpu / p_cpu - 1) * 100:+.1f}%"
    )


if __name__ == "__main__":
    main()
