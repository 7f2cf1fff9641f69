"""Locust as the producer: headless inside a trial, its counts against the broker's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import unique
from tuner.broker import free_port
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import (
    ClusterSpec,
    LocustSpec,
    PayloadsSpec,
    ProducerSpec,
    SizeSpec,
    TopicSpec,
    WorkloadSpec,
)
from tuner.load.runner import LoadError, LocustLoad, ProducerStats, locustfile

pytestmark = pytest.mark.integration


def _workload(**producer: object) -> WorkloadSpec:
    return WorkloadSpec(
        message_bytes=100,
        prefill_records=0,
        producer=ProducerSpec(**{"users": 2, "spawn_rate": 10, **producer}),  # type: ignore[arg-type]
    )


async def _topic(bootstrap_servers: str, partitions: int = 3) -> tuple[Connection, str]:
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    name = unique("load")
    await cluster.ensure_topic(conn, TopicSpec(name=name, partitions=partitions))
    return conn, name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_records_on_the_topic_equal_locust_successes(bootstrap_servers: str) -> None:
    """Locust's delivered count is what the topic holds; its exporter serves it; no orphans."""

    metrics_port = free_port()
    exported: list[str] = []

    async def main() -> tuple[int, int, ProducerStats, int]:
        conn, topic = await _topic(bootstrap_servers)
        async with LocustLoad(
            _workload(rate_per_user=500),
            bootstrap_servers=bootstrap_servers,
            topic=topic,
            metrics_port=metrics_port,
        ) as load:
            first = load.snapshot()
            await asyncio.sleep(3)
            exported.append(await asyncio.to_thread(_scrape, metrics_port))
            last = load.snapshot()
            assert first is not None
            assert last is not None
            window = ProducerStats.between(first, last)
            assert load.proc is not None
            pid = load.proc.pid
        final = load.final
        assert final is not None
        ends = await cluster.end_offsets(conn, topic)
        return sum(ends.values()), final.sent, window, pid

    on_topic, sent, window, pid = asyncio.run(main())
    assert sent > 0
    assert on_topic == sent
    assert window.failures == 0
    assert 500 <= window.records_per_s <= 1100  # two users paced at 500/s each
    assert window.send_latency_ms_p99 is not None
    assert not _alive(pid)
    families = {f.name: f for f in text_string_to_metric_families(exported[0])}
    sent_family = families["tuner_producer_records_sent"]
    assert any(s.value > 0 and s.labels.get("topic") for s in sent_family.samples)
    assert "tuner_producer_send_latency_seconds" in families
    assert "tuner_producer_errors" in families


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_unreachable_broker_fails_clearly_without_hanging() -> None:
    """Against a closed port Locust's deliveries fail and the load ends with LoadError."""

    async def main() -> None:
        async with LocustLoad(
            _workload(), bootstrap_servers=f"127.0.0.1:{free_port()}", topic="tuner.nowhere"
        ):
            pass  # pragma: no cover - entering must fail

    started = time.monotonic()
    with pytest.raises(LoadError) as err:
        asyncio.run(main())
    assert time.monotonic() - started < 60
    assert "deliver" in str(err.value)


def test_master_and_two_workers_share_the_load(bootstrap_servers: str, tmp_path: Path) -> None:
    """Distributed mode: the master's aggregated count equals the records on the topic."""
    conn, topic = asyncio.run(_topic(bootstrap_servers))
    port = free_port()
    common = [
        sys.executable, "-m", "locust", "-f", str(locustfile()),
        "--kafka-bootstrap", bootstrap_servers, "--kafka-topic", topic,
        "--message-bytes", "100", "--rate-per-user", "200",
    ]  # fmt: skip
    csv = tmp_path / "run"
    master = subprocess.Popen(
        [*common, "--master", "--master-bind-port", str(port), "--headless", "-u", "4",
         "-r", "4", "-t", "6s", "--expect-workers", "2", "--csv", str(csv), "--only-summary"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker_argv = [*common, "--worker", "--master-port", str(port)]
    workers = [
        subprocess.Popen(
            worker_argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    try:
        master.wait(timeout=90)
        for worker in workers:
            worker.wait(timeout=30)
    finally:
        for proc in (master, *workers):
            proc.kill()
    rows = (tmp_path / "run_stats.csv").read_text().splitlines()
    header = rows[0].split(",")
    produce = next(r.split(",") for r in rows[1:] if r.startswith("produce,"))
    requests = int(produce[header.index("Request Count")])
    failures = int(produce[header.index("Failure Count")])
    ends = asyncio.run(cluster.end_offsets(conn, topic))
    assert requests > 0
    assert failures == 0
    assert sum(ends.values()) == requests


def test_master_mode_counts_what_its_workers_deliver(bootstrap_servers: str) -> None:
    """`workload.locust.mode: master`: the trial's Locust waits for a worker, whose deliveries
    reach the master's window statistics and the topic alike."""
    port = free_port()

    async def main() -> tuple[int, int, ProducerStats]:
        conn, topic = await _topic(bootstrap_servers)
        workload = WorkloadSpec(
            message_bytes=100,
            prefill_records=0,
            producer=ProducerSpec(users=2, spawn_rate=10, rate_per_user=300),
            locust=LocustSpec(mode="master", expect_workers=1, master_port=port),
        )
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "locust", "-f", str(locustfile()), "--worker",
            "--master-port", str(port), "--kafka-bootstrap", bootstrap_servers,
            "--kafka-topic", topic, "--message-bytes", "100", "--rate-per-user", "300",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with LocustLoad(
                workload, bootstrap_servers=bootstrap_servers, topic=topic
            ) as load:
                start = load.snapshot()
                await asyncio.sleep(7)
                end = load.snapshot()
                assert start is not None
                assert end is not None
                window = ProducerStats.between(start, end)
            final = load.final
        finally:
            async with asyncio.timeout(30):
                await worker.wait()
        assert final is not None
        ends = await cluster.end_offsets(conn, topic)
        return sum(ends.values()), final.sent, window

    on_topic, sent, window = asyncio.run(main())
    assert window.records_sent > 0
    assert 300 <= window.records_per_s <= 800  # two users paced at 300/s each
    assert sent > 0
    assert on_topic >= sent


BULK_VS_ONE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from kafka_producer import log_requests
from locust.stats import RequestStats

times = [0.4, 3.2, 17.5, 120.0, 4321.0, 3.2, 0.04]
one, bulk = RequestStats(), RequestStats()
for t in times:
    one.log_request("produce", "topic", t, 100)
log_requests(bulk.entries[("topic", "produce")], bulk.total, times, 100)

def fields(entry):
    return {
        "num_requests": entry.num_requests, "total": entry.total_response_time,
        "min": entry.min_response_time, "max": entry.max_response_time,
        "buckets": sorted(entry.response_times.items()), "bytes": entry.total_content_length,
        "per_second": sum(entry.num_reqs_per_sec.values()),
        "p95": entry.get_response_time_percentile(0.95),
    }

print(json.dumps([fields(s.entries[("topic", "produce")]) for s in (one, bulk)]
                 + [fields(s.total) for s in (one, bulk)]))
"""


def test_bulk_statistics_equal_one_log_per_request() -> None:
    """The locustfile writes deliveries to Locust's statistics in bulk: every field Locust
    shows (counts, sum, min, max, rounded buckets, percentiles, bytes) is what one `log` call
    per request gives — a guard against a Locust upgrade that changes StatsEntry."""
    done = subprocess.run(
        [sys.executable, "-c", BULK_VS_ONE, str(locustfile().parent)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    one, bulk, one_total, bulk_total = json.loads(done.stdout)
    assert one["num_requests"] == 7
    assert bulk == one
    assert bulk_total == one_total


def test_locust_writes_the_users_records_and_counts_their_bytes(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """With `workload.payloads` Locust produces exactly the file's records (keys, headers,
    values), each key on the partition the prefill gives it, and its bytes counter adds up
    their real sizes, not one fixed size."""
    path = tmp_path / "records.jsonl"
    rows: list[dict[str, Any]] = [
        {"key": f"c{i % 4}", "value": "x" * (10 + 37 * i), "headers": {"i": str(i)}}
        for i in range(20)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics_port = free_port()
    workload = WorkloadSpec(
        prefill_records=0,
        payloads=PayloadsSpec(file=str(path), format="records"),
        producer=ProducerSpec(users=1, spawn_rate=10, rate_per_user=400),
    )
    scraped: list[str] = []

    async def main() -> tuple[Connection, str]:
        conn, topic = await _topic(bootstrap_servers)
        async with LocustLoad(
            workload, bootstrap_servers=bootstrap_servers, topic=topic, metrics_port=metrics_port
        ):
            await asyncio.sleep(3)
            scraped.append(await asyncio.to_thread(_scrape, metrics_port))
        return conn, topic

    conn, topic = asyncio.run(main())
    want = {(r["key"].encode(), r["value"].encode(), (("i", r["headers"]["i"].encode()),))
            for r in rows}  # fmt: skip
    got = _records(bootstrap_servers, topic)
    assert len(got) == sum(asyncio.run(cluster.end_offsets(conn, topic)).values()) > 100
    assert {(k, v, h) for _, k, v, h in got} == want
    choose = DefaultPartitioner()  # the prefill's partition per key: Locust's must agree
    assert all(p == choose(k, [0, 1, 2], None) for p, k, _, _ in got)
    families = {f.name: f for f in text_string_to_metric_families(scraped[0])}
    sent = sum(s.value for s in families["tuner_producer_records_sent"].samples
               if s.name.endswith("_total"))  # fmt: skip
    sent_bytes = sum(s.value for s in families["tuner_producer_bytes_sent"].samples
                     if s.name.endswith("_total"))  # fmt: skip
    mean = sum(len(r["value"]) for r in rows) / len(rows)
    assert sent > 0
    assert sent_bytes / sent == pytest.approx(mean, rel=0.1)


def _records(bootstrap_servers: str, topic: str) -> list[tuple[int, bytes, bytes, tuple[Any, ...]]]:
    """(partition, key, value, headers) of every record in the topic, read without a group."""

    async def read() -> list[tuple[int, bytes, bytes, tuple[Any, ...]]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap_servers, group_id=None,
            auto_offset_reset="earliest",
        )  # fmt: skip
        await consumer.start()
        out: list[tuple[int, bytes, bytes, tuple[Any, ...]]] = []
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
            async with asyncio.timeout(30):
                while len(out) < sum(ends.values()):
                    for batch in (await consumer.getmany(timeout_ms=500)).values():
                        out.extend((m.partition, m.key, m.value, tuple(m.headers)) for m in batch)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(read())


def test_locust_writes_values_of_the_asked_size_distribution(bootstrap_servers: str) -> None:
    """`message_bytes: {distribution: lognormal, mean: 800, p99: 8000}` under live load: the
    values on the topic have about that mean and p99."""
    workload = WorkloadSpec(
        prefill_records=0,
        message_bytes=SizeSpec(distribution="lognormal", mean=800, p99=8000),
        producer=ProducerSpec(users=1, spawn_rate=10, rate_per_user=1500),
    )

    async def main() -> str:
        _, topic = await _topic(bootstrap_servers)
        async with LocustLoad(workload, bootstrap_servers=bootstrap_servers, topic=topic):
            await asyncio.sleep(3)
        return topic

    topic = asyncio.run(main())
    sizes = sorted(len(value) for _, _, value, _ in _records(bootstrap_servers, topic))
    assert len(sizes) > 2000
    assert sum(sizes) / len(sizes) == pytest.approx(800, rel=0.15)
    assert sizes[int(0.99 * len(sizes))] == pytest.approx(8000, rel=0.2)
