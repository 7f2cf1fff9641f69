"""The trial's backlog: records written to its topic before the group joins.

`fill_to` tops a topic up to a number of records (a trial's topic only grows, so trials can
share it); `prefill` writes records spread over the partitions as the workload's keys would
spread them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from tuner.cluster.admin import ClusterError, Connection, check_owned, end_offsets
from tuner.cluster.workload import workload_pool
from tuner.config import WorkloadSpec
from tuner.payloads import Record
from tuner.payloads.pool import Pool

log = logging.getLogger(__name__)


def _partition_weights(partitions: int, key_distribution: str) -> list[float]:
    if key_distribution == "zipf":
        return [1.0 / (rank + 1) for rank in range(partitions)]
    return [1.0] * partitions


def split_records(total: int, partitions: int, key_distribution: str) -> list[int]:
    """How many of `total` records each partition gets: even, or Zipf-skewed for hot keys."""
    weights = _partition_weights(partitions, key_distribution)
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for i in range(total - sum(counts)):
        counts[i % partitions] += 1
    return counts


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    """Records written to a topic and how long the producer took: the prefill producer's rate,
    which says whether a backlog can be topped up while a group reads it."""

    records: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.records and self.seconds > 0 else 0.0


async def prefill(conn: Connection, topic: str, workload: WorkloadSpec, *, records: int) -> int:
    """Write `records` of the workload's records; returns the count (see `write`)."""
    return (await write(conn, topic, workload, records=records)).records


async def write(conn: Connection, topic: str, workload: WorkloadSpec, *, records: int) -> Written:
    """Write `records` of the workload's records (its payloads, or values of its sizes) in large
    batches; returns the count.

    Batches are built per partition (aiokafka's `create_batch`/`send_batch`), ~7x faster than one
    `send()` per record, so a backlog of hundreds of thousands of records takes seconds. Records
    with the user's own keys go to the partition Java's default partitioner picks (murmur2,
    as Locust's producer is set up too); other records are spread as `split_records` says.
    The time is the writing's, from the producer's start to the last acknowledgement.
    """
    check_owned(topic, conn.cluster.topic_prefix)
    if records <= 0:
        return Written(records=0, seconds=0.0)
    partitions = sorted(await end_offsets(conn, topic))
    pool = workload_pool(workload)
    largest = max(len(r.value) + len(r.key or b"") for r in pool.records)
    producer = AIOKafkaProducer(
        **conn.kwargs(), acks=1, linger_ms=0,
        max_batch_size=max(1 << 20, largest + 1024), max_request_size=max(8 << 20, 2 * largest),
    )  # fmt: skip
    await producer.start()
    started = time.monotonic()
    try:
        await _write(producer, topic, _placed(pool, workload, partitions, records))
        seconds = time.monotonic() - started
    finally:
        await producer.stop()
    log.info("prefilled %d records in %.1f s", records, seconds)
    return Written(records=records, seconds=seconds)


def _placed(
    pool: Pool, workload: WorkloadSpec, partitions: list[int], records: int
) -> Iterator[tuple[int, bytes | None, Record]]:
    """(partition, key, record) for each record to write, in write order."""
    write = pool.writer()
    if pool.own_keys:
        choose = DefaultPartitioner()
        for i in range(records):
            record = write()
            key = record.key
            spot = partitions[i % len(partitions)] if key is None else choose(key, partitions, None)
            yield spot, key, record
        return
    counts = split_records(records, len(partitions), workload.key_distribution)
    keyless = workload.key_distribution == "none"
    for partition, count in zip(partitions, counts, strict=True):
        for sent in range(count):
            yield partition, None if keyless else b"k%d" % sent, write()


async def _write(
    producer: AIOKafkaProducer, topic: str, placed: Iterator[tuple[int, bytes | None, Record]]
) -> None:
    """Fill one open batch per partition, sending each as it fills, then the rest."""
    open_batches: dict[int, Any] = {}
    pending = []
    ts = int(time.time() * 1000)
    for partition, key, record in placed:
        batch = open_batches.get(partition)
        for _ in range(2):
            if batch is None:
                batch, ts = producer.create_batch(), int(time.time() * 1000)
            headers = list(record.headers)
            if batch.append(key=key, value=record.value, timestamp=ts, headers=headers):
                break
            batch.close()
            pending.append(await producer.send_batch(batch, topic, partition=partition))
            batch = None
        else:  # pragma: no cover - max_batch_size fits the largest record
            raise ClusterError(f"a record of {len(record.value):,} bytes fits no batch")
        open_batches[partition] = batch
    for partition, batch in open_batches.items():
        batch.close()
        pending.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*pending)


async def fill_to(conn: Connection, topic: str, workload: WorkloadSpec, *, records: int) -> int:
    """Top the topic up to at least `records` records in all; returns how many were written."""
    return (await filled_to(conn, topic, workload, records=records)).records


async def filled_to(
    conn: Connection, topic: str, workload: WorkloadSpec, *, records: int
) -> Written:
    """Top the topic up to at least `records` records in all; what was written, and how fast.

    A fresh group reads a topic from its start, so what the topic holds is its backlog:
    trials that share a topic share one backlog, written once and grown when it runs short.
    """
    held = sum((await end_offsets(conn, topic)).values())
    return await write(conn, topic, workload, records=max(records - held, 0))
