"""A workload's pool of records and what reports say about it (source, sizes, compression)."""

from __future__ import annotations

import functools
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

    def line(self) -> str:
        """`file samples.jsonl (values): 1,000 records, value size p50 812 B, p99 7,900 B, …`"""
        counted = f"{self.count:,} records, " if self.count > 1 else ""  # one value, repeated
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
    )


def _ratio(pool: Pool, codec: str, workload: WorkloadSpec) -> float | None:
    """Raw over compressed bytes, compressing batches of about `producer.batch_bytes` of the
    values in write order, as the producer does (aiokafka's codecs: gzip always, the others
    with cramjam installed)."""
    from aiokafka import codec as codecs  # noqa: PLC0415 - only when a ratio is asked

    encode = {
        "gzip": (codecs.has_gzip, codecs.gzip_encode),
        "snappy": (codecs.has_snappy, codecs.snappy_encode),
        "lz4": (codecs.has_lz4, codecs.lz4_encode),
        "zstd": (codecs.has_zstd, codecs.zstd_encode),
    }
    available, compress = encode[codec]
    if not available():
        return None
    write = pool.writer()
    values, total = [], 0
    for _ in range(len(pool.records)):  # one pass over the pool, or enough of it
        values.append(write().value)
        total += len(values[-1])
        if total >= COMPRESSION_SAMPLE_BYTES:
            break
    target = max(workload.producer.batch_bytes, 1)
    raw = packed = 0
    batch: list[bytes] = []
    held = 0
    for i, value in enumerate(values):
        batch.append(value)
        held += len(value)
        if held >= target or i == len(values) - 1:
            data = b"".join(batch)
            raw, packed = raw + len(data), packed + len(compress(data))
            batch, held = [], 0
    return raw / packed if packed else None
