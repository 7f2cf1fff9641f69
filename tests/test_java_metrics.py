"""The Java client's metric names, computed from the tuner's own instruments."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tuner.java_metrics import CONSUMER, COORDINATOR, FETCH, JavaCompatibleCollector, exposed
from tuner.metrics import ConsumerMetrics


def _values(collector: JavaCompatibleCollector) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels["client_id"]): s.value for f in collector.collect() for s in f.samples
    }


def test_window_averages_rates_and_gauges_in_java_units() -> None:
    """Averages and rates cover the window since the previous scrape, times are in ms, the
    label is the aiokafka client id, and 'seconds ago' is -1 before anything happened."""
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")
    clock = [100.0]
    java = JavaCompatibleCollector(registry, window_s=30.0, clock=lambda: clock[0])
    m.fetch_latency.observe(0.1)
    m.fetch_latency.observe(0.3)
    m.fetch_records.observe(40)
    m.last_poll.set(time.time() - 2)
    first = _values(java)
    assert first[(f"{FETCH}fetch_latency_avg", "g.m0")] == pytest.approx(200.0)
    assert first[(f"{FETCH}records_per_request_avg", "g.m0")] == 40
    assert first[(f"{COORDINATOR}last_rebalance_seconds_ago", "g.m0")] == -1
    assert first[(f"{CONSUMER}last_poll_seconds_ago", "g.m0")] == pytest.approx(2, abs=0.5)
    assert (f"{FETCH}fetch_rate", "g.m0") not in first  # a rate needs two scrapes

    clock[0] += 10
    m.fetch_requests.inc(10)
    m.fetch_latency.observe(0.5)
    m.fetch_latency.observe(0.5)
    m.consumed("t", 2000, 512_000)
    m.rebalances.inc()
    m.last_rebalance.set(time.time() - 5)
    m.lag("t", 0, 5)
    m.lag("t", 1, 9)
    m.poll_interval_max.set(1.5)
    second = _values(java)
    assert second[(f"{FETCH}fetch_latency_avg", "g.m0")] == pytest.approx(500.0)
    assert second[(f"{FETCH}fetch_rate", "g.m0")] == pytest.approx(1.0)
    assert second[(f"{FETCH}records_consumed_rate", "g.m0")] == pytest.approx(200.0)
    assert second[(f"{FETCH}bytes_consumed_total", "g.m0")] == 512_000
    assert second[(f"{FETCH}records_lag_max", "g.m0")] == 9
    assert second[(f"{COORDINATOR}rebalance_rate_per_hour", "g.m0")] == pytest.approx(360.0)
    assert second[(f"{COORDINATOR}last_rebalance_seconds_ago", "g.m0")] == pytest.approx(5, abs=0.5)
    assert second[(f"{CONSUMER}time_between_poll_max", "g.m0")] == 1500

    clock[0] += 60  # nothing new for a whole window: the rates fall to zero
    assert _values(java)[(f"{FETCH}fetch_rate", "g.m0")] == 0


def test_exposed_serves_both_names_only_when_asked() -> None:
    registry = CollectorRegistry()
    ConsumerMetrics(registry, group="g", member="m1").fetch_latency.observe(0.2)
    plain = generate_latest(exposed(registry, java_compatible=False)).decode()
    both = generate_latest(exposed(registry, java_compatible=True)).decode()
    assert "tuner_consumer_fetch_latency_seconds_count" in plain
    assert "kafka_consumer_" not in plain
    assert "tuner_consumer_fetch_latency_seconds_count" in both
    assert f'{FETCH}fetch_latency_avg{{client_id="g.m1"}} 200.0' in both
