"""A workload's pool of records and what reports say about it (source, sizes, compression)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tuner.config import WorkloadSpec
from tuner.payloads.pool import Pool, build_pool
from tuner.payloads.sizes import percentile

COMPRESSION_SAMPLE_BYTES = 4 << 20
"""Payload bytes compressed to estimate the ratio, in batches of `producer.batch_bytes`."""


@functools.lru_cache(maxsize=2)
def workload_pool(workload: WorkloadSpec) -> Pool:
    """The records `workload` writes (a payload file is read again: the config only checked
    it); kept for the next trial of the same workload."""
    p, size = workload.payloads, workload.message_bytes
    if p is not None and p.file is not None:
        return build_pool(
            message_bytes=workload.mean_message_bytes,
            file=p.file,
            fmt=p.file_format,
            order=p.order,
            seed=p.seed,
        )
    if isinstance(size, int):
        return build_pool(message_bytes=size)
    return build_pool(message_bytes=size.mean, distribution=size.distribution, p99=size.p99)


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadSummary:
    """What the records were: their source, how many distinct ones, their sizes and how well
    they compress with the producer's codec (None: no compression, or no codec here)."""

    source: str
    count: int
    p50_bytes: int
    p99_bytes: int
    mean_bytes: float
    compression: str | None = None
    compression_ratio: float | None = None
    unit: str = "records"
    """What `count` counts: the user's records, or the distinct values generated and cycled."""

    def line(self) -> str:
        """`file samples.jsonl (values): 1,000 records, value size p50 812 B, p99 7,900 B, …`"""
        counted = f"{self.count:,} {self.unit}, " if self.count > 1 else ""
        text = (
            f"{self.source}: {counted}value size p50 {self.p50_bytes:,} B, "
            f"p99 {self.p99_bytes:,} B, mean {self.mean_bytes:,.0f} B"
        )
        if self.compression is not None:
            ratio = (
                f"{self.compression_ratio:.2f}x"
                if self.compression_ratio is not None
                else "not computed (no Python codec for it here; pip install cramjam)"
            )
            text += f", {self.compression} compression ratio {ratio}"
        return text


@functools.lru_cache(maxsize=8)
def summarize(workload: WorkloadSpec) -> PayloadSummary:
    """Describe the records `workload` writes (the codec applied per producer batch)."""
    pool = workload_pool(workload)
    sizes = sorted(len(r.value) for r in pool.records)
    p, size = workload.payloads, workload.message_bytes
    if p is not None:
        source = p.describe()
    elif isinstance(size, int):
        source = f"{size:,}-byte random values"
    else:
        extra = "" if size.p99 is None else f", p99 {size.p99:g}"
        source = f"random values, sizes {size.distribution} (mean {size.mean:g}{extra})"
    codec = workload.producer.compression
    return PayloadSummary(
        source=source,
        count=len(sizes),
        p50_bytes=percentile(sizes, 0.5),
        p99_bytes=percentile(sizes, 0.99),
        mean_bytes=sum(sizes) / len(sizes),
        compression=None if codec == "none" else codec,
        compression_ratio=None if codec == "none" else _ratio(pool, codec, workload),
        unit="records" if p is not None else "distinct values",
    )


def _ratio(pool: Pool, codec: str, workload: WorkloadSpec) -> float | None:
    """Uncompressed over compressed size of the record batches the producer would write: the
    values in write order (keys and headers too) in Kafka's v2 batches of about
    `producer.batch_bytes`, the records of each compressed at the level librdkafka and the
    Java producer use by default (gzip 6, not aiokafka's 9; zstd 3; lz4 and snappy as
    aiokafka compresses them, unchecked against a broker). Framing counts: a record's
    varint lengths and offset delta make a pool of a few repeated values compress far less
    than the values alone would. aiokafka's codecs: gzip always, the others with cramjam."""
    from aiokafka import codec as codecs  # noqa: PLC0415 - only when a ratio is asked

    encode: dict[str, tuple[Callable[[], bool], Callable[[bytes], bytes]]] = {
        "gzip": (codecs.has_gzip, lambda data: codecs.gzip_encode(data, compresslevel=6)),
        "snappy": (codecs.has_snappy, codecs.snappy_encode),
        "lz4": (codecs.has_lz4, codecs.lz4_encode),
        "zstd": (codecs.has_zstd, lambda data: codecs.zstd_encode(data, level=3)),
    }
    available, compress = encode[codec]
    if not available():
        return None
    plain = packed = 0
    for batch in _batches(pool, max(workload.producer.batch_bytes, 1)):
        plain += len(batch)
        packed += BATCH_HEADER_BYTES + len(compress(bytes(batch[BATCH_HEADER_BYTES:])))
    return plain / packed if packed else None


BATCH_HEADER_BYTES = 61
"""A v2 record batch's header (KIP-98), never compressed; the records follow it."""


def _batches(pool: Pool, batch_bytes: int) -> Iterator[bytearray]:
    """Full uncompressed v2 batches as a busy producer fills them (one timestamp, offsets from
    0 in each), over one pass of the pool and at least one batch (a pool smaller than a batch
    repeats in it, as it does on the topic), or `COMPRESSION_SAMPLE_BYTES` of values."""
    from aiokafka.record.default_records import (  # noqa: PLC0415 - only when a ratio is asked
        DefaultRecordBatchBuilder,
    )

    def builder() -> DefaultRecordBatchBuilder:
        return DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, batch_bytes)

    write, written, held, offset, full = pool.writer(), 0, 0, 0, False
    batch = builder()
    while (written < len(pool.records) or not full) and held < COMPRESSION_SAMPLE_BYTES:
        record = write()
        headers: list[tuple[str, bytes | None]] = list(record.headers)
        if batch.append(offset, 0, record.key, record.value, headers) is None:
            yield batch.build()
            batch, offset, full = builder(), 0, True
            batch.append(offset, 0, record.key, record.value, headers)  # an empty one takes any
        offset, written, held = offset + 1, written + 1, held + len(record.value)
    if not full:  # a producer's batches are full while it is busy: a last, short one is not
        yield batch.build()
