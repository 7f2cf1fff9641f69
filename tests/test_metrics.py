"""Reading instruments back: record counting in fetched batches, quantiles, processing model."""

from __future__ import annotations

import asyncio
import importlib.metadata
import statistics
import time

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from tuner.config import ProcessingSpec
from tuner.consumer import ProcessingModel, count_records
from tuner.consumer.poll_timer import WindowMax
from tuner.metrics import (
    APP_INFO,
    JAVA_CONSUMER,
    JAVA_COORDINATOR,
    JAVA_FETCH,
    JAVA_MAPPINGS,
    JAVA_NODE,
    ConsumerMetrics,
    GroupWindow,
    JavaCompatibleCollector,
    ProducerMetrics,
    RegistrySnapshot,
    exposed,
    histogram_quantile,
)


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


# --- the Java client's names -------------------------------------------------------------


def _values(collector: JavaCompatibleCollector) -> dict[tuple[str, str], float]:
    """(name, client_id) → value of the client-wide series (no topic or node label)."""
    return {
        (s.name, s.labels["client_id"]): s.value
        for f in collector.collect()
        for s in f.samples
        if "topic" not in s.labels and "node_id" not in s.labels
    }


def test_window_averages_rates_and_gauges_in_java_units() -> None:
    """Averages and rates cover the member's sample windows up to the view's last tick, times
    are in ms, the label is the aiokafka client id, and 'seconds ago' is -1 before anything
    happened."""
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")
    clock = [100.0]
    java = JavaCompatibleCollector(registry, window_s=30.0, clock=lambda: clock[0])
    m.fetch_latency.observe(0.1)
    m.fetch_latency.observe(0.3)
    m.fetch_records.observe(40)
    m.last_poll.set(time.time() - 2)
    m.consumed("t", 5, 50)
    clock[0] += 5
    java.sample()
    first = _values(java)
    assert first[(f"{JAVA_FETCH}fetch_latency_avg", "g.m0")] == pytest.approx(200.0)
    assert first[(f"{JAVA_FETCH}records_per_request_avg", "g.m0")] == 40
    assert first[(f"{JAVA_COORDINATOR}last_rebalance_seconds_ago", "g.m0")] == -1
    assert first[(f"{JAVA_CONSUMER}last_poll_seconds_ago", "g.m0")] == pytest.approx(2, abs=0.5)
    assert first[(f"{JAVA_FETCH}fetch_rate", "g.m0")] == 0  # nothing fetched yet: zero
    assert first[(f"{JAVA_FETCH}records_consumed_rate", "g.m0")] == pytest.approx(1.0)

    clock[0] += 15
    m.fetch_requests.inc(10)
    m.fetch_latency.observe(0.5)
    m.fetch_latency.observe(0.5)
    m.consumed("t", 3995, 512_000)
    m.rebalances.inc()
    m.last_rebalance.set(time.time() - 5)
    m.lag("t", 0, 5)
    m.lag("t", 1, 9)
    m.poll_interval_max.set(1.5)
    java.sample()
    second = _values(java)
    assert second[(f"{JAVA_FETCH}fetch_latency_avg", "g.m0")] == pytest.approx(350.0)
    assert second[(f"{JAVA_FETCH}fetch_rate", "g.m0")] == pytest.approx(0.5)
    assert second[(f"{JAVA_FETCH}records_consumed_rate", "g.m0")] == pytest.approx(200.0)
    assert second[(f"{JAVA_FETCH}bytes_consumed_total", "g.m0")] == 512_050
    assert second[(f"{JAVA_FETCH}records_lag_max", "g.m0")] == 9
    assert second[(f"{JAVA_COORDINATOR}rebalance_rate_per_hour", "g.m0")] == pytest.approx(180.0)
    assert second[(f"{JAVA_COORDINATOR}last_rebalance_seconds_ago", "g.m0")] == pytest.approx(
        5, abs=0.5
    )
    assert second[(f"{JAVA_CONSUMER}time_between_poll_max", "g.m0")] == 1500

    clock[0] += 60  # nothing new for two whole windows: the rates fall to zero
    java.sample()
    assert _values(java)[(f"{JAVA_FETCH}fetch_rate", "g.m0")] == 0


def test_rates_cover_two_sample_windows_of_30_s() -> None:
    """As the Java client's `metrics.num.samples` 2 x `metrics.sample.window.ms` 30000: a new
    sample starts every 30 s and a rate covers the two kept, so a burst counts for 30 to 60 s
    and then leaves the rate."""
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")
    clock = [0.0]
    java = JavaCompatibleCollector(registry, clock=lambda: clock[0])
    m.fetch_requests.inc(60)

    def rate_at(t: float) -> float:
        clock[0] = t
        java.sample()
        return _values(java)[(f"{JAVA_FETCH}fetch_rate", "g.m0")]

    assert rate_at(30) == pytest.approx(60 / 30)  # the first sample is full: a second begins
    assert rate_at(59) == pytest.approx(60 / 59)  # both samples, 0 s to 59 s
    assert rate_at(60) == 0  # the burst's sample (0 s to 30 s) is dropped; 30 s to 60 s is empty


def test_every_rate_is_served_from_the_first_scrape() -> None:
    """A scraper whose first scrape comes after the member fetched, committed, rebalanced and
    heard from brokers gets every Java rate of the member, its topics and its nodes, each over
    the time since the view last sampled without it."""
    registry = CollectorRegistry()
    clock = [0.0]
    java = JavaCompatibleCollector(registry, clock=lambda: clock[0])  # the exporter starts first
    m = ConsumerMetrics(registry, group="g", member="m0")
    m.fetch_requests.inc(8)
    m.consumed("orders.eu", 40, 4000)
    m.commit_latency.observe(0.01)
    m.commit_latency.observe(0.03)
    m.rebalances.inc()
    for _ in range(6):
        m.responded("node-1")
    clock[0] = 2.0
    samples = [s for f in java.collect() for s in f.samples]
    by = {(s.name, s.labels.get("topic", s.labels.get("node_id", ""))): s.value for s in samples}
    rates = [m for m in JAVA_MAPPINGS if "_rate" in m.name]
    assert len(rates) == 8
    for mapping in rates:
        labels = {"client": [""], "topic": ["orders_eu"], "node": ["node-1"]}
        for scope in mapping.scopes:
            for label in labels[scope]:
                assert (mapping.name, label) in by, (mapping.name, label)
    assert by[(f"{JAVA_COORDINATOR}commit_rate", "")] == pytest.approx(1.0)
    assert by[(f"{JAVA_NODE}response_rate", "node-1")] == pytest.approx(3.0)
    assert by[(f"{JAVA_FETCH}records_consumed_rate", "orders_eu")] == pytest.approx(20.0)
    assert by[(f"{JAVA_COORDINATOR}rebalance_rate_per_hour", "")] == pytest.approx(1800.0)


def test_two_scrapers_see_the_same_rates() -> None:
    """Rates change on the view's own clock, not with scrapes: two scrapers asking at
    different moments between two ticks read the same values, and a view scraped often serves
    what one never scraped before serves."""
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")
    clock = [0.0]
    often = JavaCompatibleCollector(registry, clock=lambda: clock[0])
    once = JavaCompatibleCollector(registry, clock=lambda: clock[0])

    def windowed(java: JavaCompatibleCollector) -> dict[tuple[str, str], float]:
        return {k: v for k, v in _values(java).items() if k[0].endswith(("_rate", "_avg"))}

    readings = []
    for t in range(1, 20):
        m.fetch_requests.inc(t)
        m.consumed("t", 10 * t, 1000 * t)
        m.fetch_latency.observe(t / 100)
        clock[0] = t
        for java in (often, once):
            java.sample()
        clock[0] = t + 0.2
        first = windowed(often)
        m.fetch_requests.inc(100)  # between two scrapes of the same tick
        clock[0] = t + 0.9
        readings.append((first, windowed(often)))
    for a, b in readings:
        assert a == b
    assert windowed(once) == readings[-1][1]
    assert windowed(once)[(f"{JAVA_FETCH}fetch_rate", "g.m0")] > 0


def test_zero_valued_series_exist_from_the_first_scrape() -> None:
    """Before any commit, rebalance or failed join, their rates and totals read 0 (as the Java
    client's do), so a panel adding rebalance and failed-rebalance rates has data."""
    registry = CollectorRegistry()
    ConsumerMetrics(registry, group="g", member="m0")
    first = _values(JavaCompatibleCollector(registry))
    for name in (
        f"{JAVA_COORDINATOR}commit_rate", f"{JAVA_COORDINATOR}rebalance_rate_per_hour",
        f"{JAVA_COORDINATOR}failed_rebalance_rate_per_hour",
        f"{JAVA_COORDINATOR}failed_rebalance_total", f"{JAVA_COORDINATOR}failed_rebalance",
        f"{JAVA_FETCH}fetch_rate", f"{JAVA_FETCH}fetch",
    ):  # fmt: skip
        assert first[(name, "g.m0")] == 0, name


def test_java_series_labels_app_info_topics_nodes_and_exporter_1x_names() -> None:
    """Every series has client_type="consumer"; the app-info series list each client under
    both exporter generations' names; per-topic series carry the topic with dots as
    underscores; node series carry node_id; `_total` gauges are also served without it."""
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")
    clock = [0.0]
    java = JavaCompatibleCollector(registry, clock=lambda: clock[0])
    m.consumed("orders.eu", 40, 4000)
    m.responded("node-1")
    clock[0] += 10
    m.fetched("orders.eu", 10, 1000)
    m.fetched("orders.eu", 30, 3000)
    m.fetched("audit", 2, 100)
    m.consumed("orders.eu", 20, 2000)
    m.consumed("audit", 2, 100)
    for _ in range(30):
        m.responded("node-1")
    m.responded("node-2147483646")
    java.sample()
    samples = [s for f in java.collect() for s in f.samples]
    assert samples
    assert all(s.labels["client_type"] == "consumer" for s in samples)
    assert all(s.labels["client_id"] == "g.m0" for s in samples)
    by = {(s.name, s.labels.get("topic", s.labels.get("node_id", ""))): s for s in samples}
    for name in APP_INFO:
        assert by[(name, "")].value == 1
        assert by[(name, "")].labels["version"] == importlib.metadata.version("aiokafka")
    assert by[(f"{JAVA_FETCH}fetch_size_avg", "orders_eu")].value == 2000
    assert by[(f"{JAVA_FETCH}fetch_size_avg", "audit")].value == 100
    assert by[(f"{JAVA_FETCH}records_per_request_avg", "orders_eu")].value == 20
    assert by[(f"{JAVA_FETCH}records_consumed_rate", "orders_eu")].value == pytest.approx(6.0)
    assert by[(f"{JAVA_FETCH}records_consumed_rate", "")].value == pytest.approx(6.2)
    for total in ("records_consumed", "bytes_consumed"):
        for topic in ("orders_eu", "audit", ""):
            assert (
                by[(f"{JAVA_FETCH}{total}", topic)].value
                == by[(f"{JAVA_FETCH}{total}_total", topic)].value
            )
    assert by[(f"{JAVA_FETCH}records_consumed_total", "orders_eu")].value == 60
    assert by[(f"{JAVA_NODE}response_rate", "node-1")].value == pytest.approx(3.1)
    assert by[(f"{JAVA_NODE}response_total", "node-2147483646")].value == 1


def test_window_max_keeps_the_largest_value_of_the_window() -> None:
    """The sliding maximum forgets a value once it is older than the window."""
    window = WindowMax(window_s=30.0)
    assert window.add(0.0, 5.0) == 5.0
    assert window.add(10.0, 2.0) == 5.0
    assert window.add(29.0, 3.0) == 5.0
    assert window.add(31.0, 1.0) == 3.0  # 5.0 (t=0) left the window; 3.0 (t=29) is the max
    assert window.add(70.0, 0.5) == 0.5


def test_exposed_serves_both_names_only_when_asked() -> None:
    """The Java-named view is served beside the registry only with `java_compatible`."""
    registry = CollectorRegistry()
    with exposed(registry, java_compatible=True) as served:
        ConsumerMetrics(registry, group="g", member="m1").fetch_latency.observe(0.2)
        both = generate_latest(served).decode()
    with exposed(registry, java_compatible=False) as served:
        plain = generate_latest(served).decode()
    assert "tuner_consumer_fetch_latency_seconds_count" in plain
    assert "kafka_consumer_" not in plain
    assert "tuner_consumer_fetch_latency_seconds_count" in both
    assert f'{JAVA_FETCH}fetch_latency_avg{{client_id="g.m1",client_type="consumer"}} 200.0' in both


def test_observe_many_equals_observing_each_value() -> None:
    """The producer's bulk histogram update leaves every bucket, the count and the sum as one
    `observe` per value would (values on a bucket bound included)."""
    values = [0.0004, 0.0005, 0.003, 0.003, 0.02, 0.7, 31.0, 0.05]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    per_value = ProducerMetrics(one, topic="t")
    for v in values:
        per_value.send_latency.observe(v)
    ProducerMetrics(bulk, topic="t").delivered(values, value_bytes=100)

    def samples(registry: CollectorRegistry) -> dict[str, float]:
        return {
            f"{s.name}{sorted(s.labels.items())}": s.value
            for f in registry.collect()
            if f.name == "tuner_producer_send_latency_seconds"
            for s in f.samples
            if not s.name.endswith("_created")
        }

    expected, got = samples(one), samples(bulk)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert 'tuner_producer_records_sent_total{topic="t"} 8.0' in generate_latest(bulk).decode()


def test_snapshot_refuses_a_metric_name_no_family_serves() -> None:
    """An unknown name raises KeyError naming it; a known family without samples for the
    group (the errors counter before any error) reads 0 and agrees with the registry."""
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry, group="g", member="a")
    metrics.consumed("t", 40, 400)
    snap = RegistrySnapshot.of(registry.collect(), group="g", at=0.0)
    consumed = registry.get_sample_value(
        "tuner_consumer_records_consumed_total", {"group": "g", "member": "a", "topic": "t"}
    )
    assert consumed == 40.0
    assert snap.total("tuner_consumer_records_consumed_total") == consumed
    assert registry.get_sample_value("tuner_consumer_errors_total", {"group": "g"}) is None
    assert snap.total("tuner_consumer_errors_total") == 0.0
    assert snap.buckets("tuner_consumer_e2e_latency_seconds")[float("inf")] == 0.0
    assert (
        RegistrySnapshot.of(registry.collect(), group="h", at=0.0).per_member(
            "tuner_consumer_records_consumed_total"
        )
        == {}
    )
    with pytest.raises(KeyError, match="tuner_consumer_records_consumed_totl"):
        snap.total("tuner_consumer_records_consumed_totl")
    with pytest.raises(KeyError, match="tuner_consumer_records_consumed"):
        snap.maximum("tuner_consumer_records_consumed")  # the family's name, not a sample's


def test_java_app_info_names_a_confluent_kafka_members_library_version() -> None:
    """A confluent-kafka member's app-info series carries confluent-kafka's version, not
    aiokafka's: the `version` label is the client library the member runs."""
    registry = CollectorRegistry()
    ConsumerMetrics(registry, group="g", member="m0", client="confluent-kafka").consumed("a", 1, 1)
    java = JavaCompatibleCollector(registry, clock=lambda: 0.0)
    java.sample()
    versions = {
        s.labels["version"] for f in java.collect() if f.name in APP_INFO for s in f.samples
    }
    assert versions == {importlib.metadata.version("confluent-kafka")}
