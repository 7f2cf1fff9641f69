"""Is the load generator ever the bottleneck? Locust with our user class vs a plain producer.

Same client (confluent-kafka), same records and producer settings, same run: one Locust
process (headless, unpaced users) against a plain produce loop in one process, interleaved,
median of several runs; then a paced Locust run: achieved vs requested rate and its CPU share.
Run:  python benchmarks/bench_producer.py [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from tuner.broker import bootstrap_for
from tuner.cluster.admin import Connection, ensure_topic
from tuner.config import EMBEDDED, ClusterSpec, TopicSpec
from tuner.load.runner import locustfile

RESULTS = Path(__file__).parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_EVERY = 100


def plain_loop(bootstrap: str, topic: str, message_bytes: int, seconds: float) -> float:
    """Records/s a bare produce loop delivers: the locustfile's records (uniform keys, creation
    timestamps) and producer settings (acks=1, linger 5 ms)."""
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5, "batch.size": 65536,
        "queue.buffering.max.messages": 500_000,
    })  # fmt: skip
    value = os.urandom(message_bytes)
    keys = [b"k%d" % i for i in range(10_000)]
    next_key = itertools.cycle(random.Random(1).choices(keys, k=1 << 17)).__next__
    delivered = 0

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1

    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(POLL_EVERY):  # serving delivery reports per record costs more
            try:
                producer.produce(
                    topic, value, key=next_key(), on_delivery=on_delivery,
                    timestamp=int(time.time() * 1000),
                )  # fmt: skip
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    producer.flush(30)
    return delivered / (time.perf_counter() - started)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def locust_run(
    bootstrap: str, topic: str, message_bytes: int, seconds: float, *, users: int, rate: float
) -> tuple[float, float]:
    """(records/s delivered, CPU share of one core) of one Locust process, ramp-up excluded."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.jsonl"
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(locustfile()), "--headless",
             "-u", str(users), "-r", str(users), "-t", f"{seconds + 3:.0f}s", "--only-summary",
             "--kafka-bootstrap", bootstrap, "--kafka-topic", topic,
             "--message-bytes", str(message_bytes), "--rate-per-user", str(rate),
             "--stats-file", str(stats)],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2.0)  # spawn + ramp
        lines = stats.read_text().splitlines()
        first, cpu0 = json.loads(lines[-1]), _cpu_s(proc.pid)
        time.sleep(seconds)
        last, cpu1 = json.loads(stats.read_text().splitlines()[-1]), _cpu_s(proc.pid)
        proc.wait(60)
    wall = last["t"] - first["t"]
    return (last["sent"] - first["sent"]) / wall, (cpu1 - cpu0) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster (default: the embedded one)")
    parser.add_argument("--message-bytes", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--users", type=int, default=4)
    args = parser.parse_args()
    with bootstrap_for(args.bootstrap or EMBEDDED) as bootstrap:
        conn = Connection(bootstrap_servers=bootstrap, cluster=ClusterSpec())
        topic = f"tuner.bench.producer.{uuid.uuid4().hex[:8]}"
        asyncio.run(ensure_topic(conn, TopicSpec(name=topic, partitions=6)))
        plain: list[float] = []
        locust: list[float] = []
        for i in range(args.runs):
            plain.append(plain_loop(bootstrap, topic, args.message_bytes, args.seconds))
            rate, _ = locust_run(
                bootstrap, topic, args.message_bytes, args.seconds, users=args.users, rate=0
            )
            locust.append(rate)
            print(f"run {i + 1}: plain {plain[-1]:,.0f}/s  locust {locust[-1]:,.0f}/s")
        requested = 0.25 * statistics.median(locust)
        paced, cpu_share = locust_run(
            bootstrap, topic, args.message_bytes, args.seconds, users=args.users,
            rate=requested / args.users,
        )  # fmt: skip
    ratio = statistics.median(locust) / statistics.median(plain)
    paired = statistics.median(b / a for a, b in zip(plain, locust, strict=True))
    result = {
        "benchmark": "producer load generator",
        "message_bytes": args.message_bytes,
        "seconds_per_run": args.seconds,
        "runs_each": args.runs,
        "locust_users": args.users,
        "plain_records_per_s": plain,
        "locust_records_per_s": locust,
        "plain_median": statistics.median(plain),
        "locust_median": statistics.median(locust),
        "ratio_of_medians": ratio,
        "ratio_paired_median": paired,
        "paced_requested_records_per_s": requested,
        "paced_achieved_records_per_s": paced,
        "paced_locust_cpu_share_of_one_core": cpu_share,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "producer.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "producer.md").write_text(
        "| producer (one process, 512-byte records) | median records/s |\n|---|---|\n"
        f"| plain confluent-kafka loop | {result['plain_median']:,.0f} |\n"
        f"| Locust, our user class, {args.users} unpaced users | {result['locust_median']:,.0f} |\n"
        f"| Locust / plain | {ratio:.2f} (paired runs: {paired:.2f}) |\n"
        f"| Locust paced at {requested:,.0f}/s: achieved | {paced:,.0f}/s, "
        f"{cpu_share:.0%} of one core |\n"
    )
    print(
        f"plain {result['plain_median']:,.0f}/s, locust {result['locust_median']:,.0f}/s, "
        f"ratio {ratio:.2f}; paced {requested:,.0f}/s requested -> {paced:,.0f}/s achieved "
        f"at {cpu_share:.0%} CPU"
    )


if __name__ == "__main__":
    main()
