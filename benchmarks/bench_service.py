"""What the injection costs a service: the same service with and without the tuner's bootstrap.

`benchmarks/services/orders_worker.py` (aiokafka, a getmany loop of 500 records that checks
each record's signature, PBKDF2 of 20 rounds, and commits after each batch: a light per-record
cost, so the per-poll cost of the injection weighs much, while the consumers, not the broker,
bound the rate on a small machine) runs as `--members` processes on one prefilled topic,
each run in a group of its own from the topic's start:

- **plain**: started as a team starts it, its cluster, group and topic from its environment;
- **injected**: started as a trial starts it (`tuner.consumer.service.ServiceGroup`: the
  bootstrap first on PYTHONPATH, the plan, the report pipe read by the tuner), its group and
  topic replaced by the same ones the plain run would use.

Both are measured the same way, from outside: the group's committed offsets on the broker,
sampled every 0.25 s, over `--window-s` seconds that start `--warmup-s` after the group's
first commit. A run whose members reached the topic's end is refused (it measured the backlog).
Runs alternate plain, injected, injected, plain, …; the result is the paired ratio's median
and its 95% t-interval over `--pairs` pairs.
Run:  python benchmarks/bench_service.py [--pairs 5] [--members 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from tuner.broker import EmbeddedBroker
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection, ensure_topic
from tuner.cluster.prefill import prefill
from tuner.config import ClusterSpec, ServiceSpec, TopicSpec, WorkloadSpec
from tuner.consumer.service.group import ServiceGroup, ServiceGroupSpec
from tuner.recommend.confirmation import paired_gain

HERE = Path(__file__).parent
RESULTS = HERE / "results"
WORKER = HERE / "services" / "orders_worker.py"
RECORD_BYTES = 200
SAMPLE_S = 0.25


async def committed(conn: Connection, group: str, topic: str) -> int:
    return sum((await cluster.committed_offsets(conn, group, topic)).values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """What every run shares: the cluster, the prefilled topic and its end, the members, the
    window."""

    conn: Connection
    topic: str
    end: int
    members: int
    warmup_s: float
    window_s: float


async def measure(setup: Setup, group: str) -> float:
    """Records/s the group committed over the window (after its first commit and the warm-up);
    raises if it reached the topic's end (the backlog, not the service, was measured)."""
    conn, topic, end = setup.conn, setup.topic, setup.end
    deadline = time.monotonic() + 120
    while await committed(conn, group, topic) == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"group {group} committed nothing in 120 s")
        await asyncio.sleep(SAMPLE_S)
    await asyncio.sleep(setup.warmup_s)
    start_at, start = time.monotonic(), await committed(conn, group, topic)
    await asyncio.sleep(setup.window_s)
    end_at, last = time.monotonic(), await committed(conn, group, topic)
    if last >= end:
        raise SystemExit(f"group {group} reached the topic's end: prefill more records")
    return (last - start) / (end_at - start_at)


async def plain_run(setup: Setup) -> float:
    group = f"tuner.bench.service.plain.{uuid.uuid4().hex[:8]}"
    conn = setup.conn
    env = {**os.environ, "KAFKA_BOOTSTRAP": conn.bootstrap_servers, "ORDERS_GROUP": group,
           "ORDERS_TOPIC": setup.topic}  # fmt: skip
    quiet = asyncio.subprocess.DEVNULL
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), env=env, stdin=quiet, stdout=quiet, stderr=quiet
        )
        for _ in range(setup.members)
    ]
    try:
        return await measure(setup, group)
    finally:
        for proc in procs:  # Ctrl-C: the worker stops its consumer, which leaves the group
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            await proc.wait()
        await cluster.delete_groups_of_run(setup.conn, (group,))


async def injected_run(setup: Setup) -> float:
    group = f"tuner.bench.service.injected.{uuid.uuid4().hex[:8]}"
    service = ServiceSpec(command=(sys.executable, str(WORKER)), topic="orders", cwd=str(HERE))
    spec = ServiceGroupSpec(
        service=service, bootstrap_servers=setup.conn.bootstrap_servers, group_id=group,
        topic=setup.topic, members=setup.members, settings={}, record_bytes=RECORD_BYTES,
    )  # fmt: skip
    try:
        async with ServiceGroup(spec, registry=CollectorRegistry()):
            return await measure(setup, group)
    finally:
        await cluster.delete_groups_of_run(setup.conn, (group,))


async def bench(args: argparse.Namespace, bootstrap: str) -> dict[str, object]:
    conn = Connection(bootstrap_servers=bootstrap, cluster=ClusterSpec())
    topic = f"tuner.bench.service.{uuid.uuid4().hex[:8]}"
    await ensure_topic(conn, TopicSpec(name=topic, partitions=6))
    written = await prefill(
        conn, topic, WorkloadSpec(message_bytes=RECORD_BYTES), records=args.records
    )
    plain: list[float] = []
    injected: list[float] = []
    setup = Setup(
        conn=conn, topic=topic, end=written, members=args.members, warmup_s=args.warmup_s,
        window_s=args.window_s,
    )  # fmt: skip
    for i in range(args.pairs):
        order = (plain_run, injected_run) if i % 2 == 0 else (injected_run, plain_run)
        for run in order:
            rate = await run(setup)
            (plain if run is plain_run else injected).append(rate)
            print(f"  pair {i + 1}/{args.pairs} {run.__name__}: {rate:,.0f} records/s", flush=True)
    await cluster.delete_topic(conn, topic)
    gain = paired_gain(injected, plain)
    return {
        "plain_records_per_s": plain, "injected_records_per_s": injected,
        "median_plain": statistics.median(plain), "median_injected": statistics.median(injected),
        "ratio": 1 + gain.estimate, "interval": gain.interval, "pairs": gain.pairs,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--records", type=int, default=3_000_000)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--window-s", type=float, default=8.0)
    args = parser.parse_args()
    started = time.monotonic()
    with EmbeddedBroker(heap="512m") as broker:
        out = asyncio.run(bench(args, broker.bootstrap_servers))
    interval = out["interval"]
    assert isinstance(interval, tuple)  # noqa: S101 - 5 pairs give one
    cost = f"{1 - float(str(out['ratio'])):+.1%}".replace("+", "")
    text = (
        "# What the injection costs a service\n\n"
        f"`benchmarks/services/orders_worker.py` (aiokafka, getmany of 500, PBKDF2 of 20 "
        f"rounds over each {RECORD_BYTES} B record, a commit per batch), {args.members} "
        "processes, 6 partitions; "
        f"committed offsets on the broker over {args.window_s:g} s after a "
        f"{args.warmup_s:g} s warm-up; {out['pairs']} interleaved pairs.\n\n"
        "| | plain (its own environment) | injected (as a trial runs it) |\n|---|---|---|\n"
        f"| median records/s | {out['median_plain']:,.0f} | {out['median_injected']:,.0f} |\n\n"
        f"Injected / plain: {float(str(out['ratio'])):.3f} "
        f"[{interval[0] + 1:.3f}, {interval[1] + 1:.3f}] (95% t-interval on log ratios): the "
        f"injection costs {cost} of the service's throughput.\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; "
        f"{time.monotonic() - started:.0f} s in all.\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "service.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "service.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
