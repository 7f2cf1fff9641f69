"""A read-only sample of the user's topic, kept in a local file the study reuses.

The topic is only read: the consumer has no group (`group_id=None`), so it joins nothing and
commits nothing, and it is assigned partitions and seeks, as `kafka-console-consumer
--partition --offset` would. The sample is the latest records of each partition, in
proportion to what each holds.

What the config's principal needs on the topic is DESCRIBE (to see its partitions and
offsets) and READ (to fetch); a refusal of either is said as the broker's
TopicAuthorizationFailed, naming the principal and the operation, before anything is written
or started.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from dataclasses import replace
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from aiokafka.protocol.metadata import MetadataRequest

from tuner.cluster.admin import ClusterError, Connection
from tuner.config import StudySpec
from tuner.payloads.records import PayloadError, Record, read_records, record_line

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 120.0


class PayloadTopicError(ClusterError):
    """The payload topic cannot be read with the config's credentials (or does not exist)."""


def sample_path(directory: Path, conn: Connection, topic: str, records: int) -> Path:
    """Where the sample of `topic` on this cluster is kept (one file per cluster, topic, size)."""
    cluster = hashlib.sha256(conn.bootstrap_servers.encode()).hexdigest()[:8]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", topic)
    return directory / f"payloads-{safe}-{records}-{cluster}.jsonl"


def with_topic_sample(spec: StudySpec, conn: Connection, directory: Path) -> StudySpec:
    """The spec whose payloads are the local sample of `workload.payloads.topic`, sampled now
    unless the file already holds it; specs without a payload topic come back as they are."""
    p = spec.workload.payloads
    if p is None or p.topic is None or p.file is not None:
        return spec
    path = sample_path(directory, conn, p.topic, p.sample_records)
    if not path.is_file():
        asyncio.run(sample_topic(conn, p.topic, p.sample_records, path))
    try:
        records = read_records(path, "records")
    except PayloadError as exc:
        raise PayloadTopicError(
            f"workload.payloads.topic: the kept sample cannot be used ({exc}); delete it to "
            "sample the topic again"
        ) from None
    mean = sum(len(r.value) for r in records) / len(records)
    workload = replace(
        spec.workload, payloads=replace(p, file=str(path)), message_bytes=max(1, round(mean))
    )
    return replace(spec, workload=workload)


async def sample_topic(conn: Connection, topic: str, records: int, path: Path) -> int:
    """Write the latest `records` records of `topic` (fewer if it holds fewer) to `path`, one
    `format: records` line each; returns how many. Raises `PayloadTopicError` for a topic
    these credentials cannot see or read, or one that holds nothing."""
    where = f"workload.payloads.topic: {topic!r}"
    consumer = AIOKafkaConsumer(
        **conn.kwargs(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
        await consumer._client.force_metadata_update()  # every topic: never auto-creates one
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        if not parts and await _describe_refused(consumer, topic):
            raise PayloadTopicDeniedError(_denied(conn, topic, "DESCRIBE"))
        if not parts:
            raise PayloadTopicError(
                f"{where} does not exist at {conn.bootstrap_servers}, or the configured "
                "credentials may not describe it"
            )
        tps = [TopicPartition(topic, p) for p in parts]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        held = {tp: ends[tp] - starts[tp] for tp in tps}
        total = sum(held.values())
        if total == 0:
            raise PayloadTopicError(f"{where} holds no records to sample")
        wanted = min(records, total)
        shares = {tp: min(held[tp], -(-held[tp] * wanted // total)) for tp in tps}
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp] - shares[tp])
        taken = await _read(consumer, {tp: ends[tp] for tp in tps if shares[tp]}, wanted)
    except TopicAuthorizationFailedError:
        # The partitions were visible (DESCRIBE): what the broker refused is the fetch.
        raise PayloadTopicDeniedError(_denied(conn, topic, "READ")) from None
    except KafkaError as exc:
        raise PayloadTopicError(f"{where} cannot be read: {type(exc).__name__}: {exc}") from None
    except TimeoutError:
        raise PayloadTopicError(
            f"{where}: the sample was not read within {READ_TIMEOUT_S:.0f} s"
        ) from None
    finally:
        await consumer.stop()
    if not taken:
        raise PayloadTopicError(f"{where} holds no values to sample (only tombstones)")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text("".join(record_line(r) + "\n" for r in taken))
    partial.replace(path)
    log.info("sampled %d records of %s into %s", len(taken), topic, path)
    return len(taken)


class PayloadTopicDeniedError(PayloadTopicError):
    """The broker refused the config's principal an operation on the payload topic (an ACL)."""


def _denied(conn: Connection, topic: str, operation: str) -> str:
    """One line: the field, the topic, the principal, the operation it lacks, the broker's
    error, and what fixes it."""
    sec = conn.cluster.security
    principal = f"User:{sec.username}" if sec.protocol.startswith("SASL") else "User:ANONYMOUS"
    return (
        f"workload.payloads.topic: {topic!r} is not readable with these credentials: the "
        f"broker refused {principal} the {operation} operation on it (TopicAuthorizationFailed); "
        "an ACL granting it DESCRIBE and READ on the topic, or the credentials of a principal "
        "that has them, lets the tuner sample it"
    )


async def _describe_refused(consumer: AIOKafkaConsumer, topic: str) -> bool:
    """Whether the broker refuses this principal a description of `topic`. A request for all
    topics leaves out what the principal may not describe, as if it did not exist; one naming
    the topic gets TopicAuthorizationFailed for it (with auto-creation off: asking creates
    nothing)."""
    client = consumer._client
    node = client.get_random_node()
    if node is None:
        return False
    response = await client.send(node, MetadataRequest([topic], allow_auto_topic_creation=False))
    codes = [entry[0] for entry in response.topics if entry[1] == topic]
    return TopicAuthorizationFailedError.errno in codes


async def _read(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], wanted: int
) -> list[Record]:
    """Records up to each partition's end offset as it was when sampling began."""
    taken: list[Record] = []
    async with asyncio.timeout(READ_TIMEOUT_S):
        while ends and len(taken) < wanted:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, batch in batches.items():
                end = ends.get(tp)
                for message in batch:
                    if end is None or message.offset >= end or message.value is None:
                        continue
                    headers = tuple((k, bytes(v or b"")) for k, v in message.headers or ())
                    taken.append(Record(key=message.key, value=message.value, headers=headers))
                if end is not None and await consumer.position(tp) >= end:
                    del ends[tp]
                    consumer.pause(tp)
    return taken[:wanted]
