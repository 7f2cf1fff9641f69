"""Reading instruments back: record counting in fetched batches, quantiles, processing model."""

from __future__ import annotations

import asyncio
import statistics

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from tuner.config import ProcessingSpec
from tuner.consumer import ProcessingModel, count_records
from tuner.metrics import ConsumerMetrics, GroupWindow, RegistrySnapshot, histogram_quantile


def _batch(records: int, offset: int = 0) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    for i in range(records):
        builder.append(i, timestamp=1, key=None, value=b"v" * 50, headers=[])
    raw = bytearray(builder.build())
    raw[0:8] = offset.to_bytes(8, "big")
    return bytes(raw)


def test_count_records_reads_batch_headers() -> None:
    """Records are counted across several v2 batches; a truncated trailing batch is skipped."""
    data = _batch(7) + _batch(5, offset=7)
    assert count_records(data) == 12
    assert count_records(data + _batch(3)[:40]) == 12
    assert count_records(b"") == 0
    assert count_records(None) == 0


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    """Linear interpolation inside the bucket, as PromQL's histogram_quantile does."""
    buckets = {0.1: 10.0, 0.2: 30.0, 0.5: 40.0, float("inf"): 40.0}
    assert histogram_quantile(0.25, buckets) == 0.1
    assert abs((histogram_quantile(0.5, buckets) or 0) - 0.15) < 1e-9
    assert histogram_quantile(0.99, {1.0: 0.0, float("inf"): 0.0}) is None


def test_window_deltas_and_rebalances() -> None:
    """A window counts what happened between two snapshots; rebalances are max over members."""
    registries = [CollectorRegistry() for _ in range(3)]  # one per member, as in the group
    a = ConsumerMetrics(registries[0], group="g", member="a")
    b = ConsumerMetrics(registries[1], group="g", member="b")
    other = ConsumerMetrics(registries[2], group="h", member="a")

    def families() -> list[Metric]:
        return [f for r in registries for f in r.collect()]

    a.consumed("t", 100, 1000)
    start = RegistrySnapshot.of(families(), group="g", at=0.0)
    a.consumed("t", 50, 500)
    b.consumed("t", 30, 300)
    other.consumed("t", 1000, 1)
    a.rebalances.inc()
    b.rebalances.inc()
    for latency in (0.01, 0.01, 0.3):
        a.fetch_latency.observe(latency)
    end = RegistrySnapshot.of(families(), group="g", at=2.0)
    window = GroupWindow(start, end)
    assert window.records == 80
    assert window.records_per_s == 40
    assert window.bytes_per_s == 400
    assert window.rebalances == 1
    p50 = window.ms("tuner_consumer_fetch_latency_seconds", 0.5)
    assert p50 is not None
    assert 5 <= p50 <= 10


def test_processing_model_hits_mean_and_p99() -> None:
    """Lognormal draws have the configured mean and p99 (fixed seed, 5% tolerance)."""
    model = ProcessingModel(
        ProcessingSpec(per_record_ms=0.2, distribution="lognormal", p99_ms=2.0), seed=1
    )
    draws = sorted(model.draw_s(1) * 1000 for _ in range(200_000))
    assert abs(statistics.fmean(draws) - 0.2) / 0.2 < 0.05
    assert abs(draws[int(0.99 * len(draws))] - 2.0) / 2.0 < 0.05
    constant = ProcessingModel(ProcessingSpec(per_record_ms=1.5))
    assert constant.draw_s(10) == 0.015
    batched = ProcessingModel(ProcessingSpec(per_record_ms=1.0, per_batch_ms=5.0))
    assert batched.draw_s(10) == 0.015
    assert batched.draw_s(0) == 0.0


def test_async_processing_yields_the_loop() -> None:
    """`async` processing lets other tasks run meanwhile; `cpu` does not."""

    async def ticks_during(mode: str) -> int:
        model = ProcessingModel(ProcessingSpec(per_record_ms=20, mode=mode))  # type: ignore[arg-type]
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await model.process(5)
        task.cancel()
        return ticks

    assert asyncio.run(ticks_during("async")) > 5
    assert asyncio.run(ticks_during("cpu")) <= 1
