"""One trial against the real broker: counts, rebalances and fetch behaviour are real."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import assert_stuck, slow_records, small_spec, trial, trickle, unique
from tuner.advice import Finding, Severity
from tuner.cli import main
from tuner.cli.render import render_result
from tuner.config import StudySpec
from tuner.config.topology import KAFKA_VERSION
from tuner.trial.measure import measure
from tuner.trial.run import TrialResult

Found = dict[str, Finding]

pytestmark = pytest.mark.integration


def test_defaults_consume_every_record_exactly_once(bootstrap_servers: str) -> None:
    """With defaults, the group consumes each prefilled record once and commits up to the end."""
    spec = small_spec("once", consumer={"members": 3}, trial={"warmup_s": 0.5, "measure_s": 3})
    result = trial(spec, bootstrap_servers)
    assert result.offsets.end_offsets_total == 20000
    assert result.offsets.consumed_total == 20000
    assert result.offsets.committed_total == 20000
    assert result.backlog_emptied
    assert result.errors == ()
    assert result.kafka_version == KAFKA_VERSION  # the session's embedded broker, named
    assert f"broker           Apache Kafka {KAFKA_VERSION}\n" in render_result(result)


def test_task_and_process_isolation_consume_alike(bootstrap_servers: str) -> None:
    """`consumer.isolation` task and process run the same trial the same way: every record
    consumed and committed once, and the same `tuner_consumer_*` families served."""
    seen: dict[str, tuple[TrialResult, set[str]]] = {}
    for isolation in ("task", "process"):
        spec = small_spec(
            f"isolation-{isolation}",
            consumer={"isolation": isolation},
            trial={"warmup_s": 0.5, "measure_s": 3},
        )
        registry = CollectorRegistry()
        families: set[str] = set()

        async def scrape(registry: CollectorRegistry = registry, into: set[str] = families) -> None:
            while True:
                into.update(
                    f.name for f in registry.collect()
                    if f.name.startswith("tuner_consumer_") and f.samples
                )  # fmt: skip
                await asyncio.sleep(0.2)

        seen[isolation] = (trial(spec, bootstrap_servers, registry, alongside=scrape), families)
    for isolation, (result, _) in seen.items():
        assert result.errors == (), isolation
        assert result.offsets.end_offsets_total == 20000, isolation
        assert result.offsets.consumed_total == 20000, isolation
        assert result.offsets.committed_total == 20000, isolation
    assert seen["task"][1] == seen["process"][1]
    assert "tuner_consumer_records_consumed" in seen["task"][1]


def test_slow_batches_past_max_poll_interval_rebalance(bootstrap_servers: str) -> None:
    """500 records x 10 ms = 5 s per batch > max.poll.interval.ms 2 s: the group rebalances."""
    spec = small_spec(
        "slowpoll",
        consumer=slow_records(500),
        trial={"warmup_s": 1, "measure_s": 8},
    )
    result = trial(spec, bootstrap_servers)
    assert result.rebalances > 0
    assert result.poll.interval_ms_max is not None
    assert result.poll.interval_ms_max > 2000


def test_small_batches_keep_the_group_stable(bootstrap_servers: str) -> None:
    """The same workload with max.poll.records 20 (0.2 s per batch) never rebalances."""
    spec = small_spec(
        "fastpoll",
        consumer=slow_records(20),
        trial={"warmup_s": 1, "measure_s": 8},
    )
    result = trial(spec, bootstrap_servers)
    assert result.rebalances == 0
    assert result.poll.interval_ms_max is not None
    assert result.poll.interval_ms_max < 2000
    assert result.records_consumed > 0


@pytest.mark.slow
def test_cpu_bound_handler_blocking_heartbeats_is_caught(bootstrap_servers: str) -> None:
    """A `cpu` batch that blocks the loop 8 s > session.timeout.ms 6 s gets the member evicted."""
    spec = small_spec(
        "cpublock",
        consumer={
            "members": 2,
            "processing": {"per_record_ms": 80, "mode": "cpu"},
            "settings": {
                "max.poll.records": 100,
                "max.partition.fetch.bytes": 8192,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
            },
        },
        trial={"warmup_s": 2, "measure_s": 12},
    )
    result = trial(spec, bootstrap_servers)
    assert result.poll.interval_ms_max is not None
    assert result.poll.interval_ms_max > 6000
    assert result.rebalances > 0


def _with_trickle(name: str, fetch_min_bytes: int, bootstrap_servers: str) -> TrialResult:
    spec = small_spec(
        name,
        workload={"prefill_records": 10},
        consumer={"settings": {"fetch.min.bytes": fetch_min_bytes, "fetch.max.wait.ms": 400}},
        trial={"warmup_s": 1, "measure_s": 4},
    )
    return trial(
        spec,
        bootstrap_servers,
        alongside=lambda: trickle(bootstrap_servers, spec.topic.name, per_s=20, after_s=0.5),
    )


def test_fetch_latency_follows_fetch_min_bytes(bootstrap_servers: str) -> None:
    """Under a trickle, fetch.min.bytes 1 MiB waits out fetch.max.wait.ms; fetch.min.bytes 1 not."""
    waiting = _with_trickle("fetchwait", 1048576, bootstrap_servers)
    eager = _with_trickle("fetcheager", 1, bootstrap_servers)
    assert waiting.fetch.latency_ms_p50 is not None
    assert eager.fetch.latency_ms_p50 is not None
    assert waiting.fetch.latency_ms_p50 >= 0.8 * 400
    assert eager.fetch.latency_ms_p50 <= 0.5 * 400
    assert eager.fetch.records_per_fetch_avg < waiting.fetch.records_per_fetch_avg


REQUIRED_FAMILIES = (
    "tuner_consumer_records_consumed",
    "tuner_consumer_bytes_consumed",
    "tuner_consumer_fetch_requests",
    "tuner_consumer_fetch_latency_seconds",
    "tuner_consumer_fetch_records",
    "tuner_consumer_fetch_bytes",
    "tuner_consumer_poll_interval_seconds",
    "tuner_consumer_poll_records",
    "tuner_consumer_poll_idle_ratio",
    "tuner_consumer_processing_seconds",
    "tuner_consumer_rebalances",
    "tuner_consumer_rebalance_duration_seconds",
    "tuner_consumer_assigned_partitions",
    "tuner_consumer_lag_records",
    "tuner_consumer_e2e_latency_seconds",
    "tuner_consumer_commit_latency_seconds",
)


def _nonzero(family: Metric) -> bool:
    if family.type == "histogram":
        return any(s.name.endswith("_count") and s.value > 0 for s in family.samples)
    return any(s.value > 0 for s in family.samples)


def test_every_required_family_is_exported_with_data(bootstrap_servers: str) -> None:
    """Scraped during a run that rebalances, every required family has non-zero samples."""
    spec = small_spec(
        "families",
        consumer=slow_records(300),
        trial={"warmup_s": 1, "measure_s": 8},
    )
    registry = CollectorRegistry()
    scraped: dict[str, Metric] = {}

    async def scrape_late() -> None:
        await asyncio.sleep(1)
        while True:
            text = generate_latest(registry).decode()
            for family in text_string_to_metric_families(text):
                if _nonzero(family):
                    scraped[family.name] = family
            await asyncio.sleep(0.5)

    result = trial(spec, bootstrap_servers, registry, alongside=scrape_late)
    assert result.rebalances > 0
    missing = [name for name in REQUIRED_FAMILIES if name not in scraped]
    assert missing == []
    members = {s.labels["member"] for s in scraped["tuner_consumer_records_consumed"].samples}
    assert members == {"m0", "m1"}


CEILING = 2 * 1000 / 3
"""2 members x 3 ms per record, constant: at most 667 records/s whatever the batch size."""


@pytest.mark.parametrize("max_poll_records", [10, 333, 1667])
def test_throughput_lands_on_the_analytical_ceiling(
    bootstrap_servers: str, max_poll_records: int
) -> None:
    """Batches of 30 ms, 1 s and 5 s all measure within 3% of the constant-cost ceiling: a
    window is not a whole number of batches (a 12 s window holds 2.4 batches of 5 s). Shorter
    batches pay the real cost of a poll on top (0.3 ms, more on a busy machine), which
    benchmarks/bench_accuracy.py reports for 12 ms batches."""
    spec = small_spec(
        "ceiling",
        workload={"prefill_records": 60000},
        consumer={
            "members": 2,
            "processing": {"per_record_ms": 3, "distribution": "constant"},
            "settings": {"max.poll.records": max_poll_records},
        },
        trial={"warmup_s": 2, "measure_s": 12},
    )
    result = trial(spec, bootstrap_servers)
    assert not result.backlog_emptied
    assert result.rebalances == 0
    assert result.throughput_records_per_s == pytest.approx(CEILING, rel=0.03)


def test_a_backlog_that_runs_out_is_grown_and_measured_again(bootstrap_servers: str) -> None:
    """A 3,000-record backlog runs dry during the warm-up; `measure` tops the topic up and
    re-runs until the window is capacity-bound, and the rate is the group's, not the supply's."""
    spec = small_spec(
        "regrow",
        workload={"prefill_records": 3000},
        consumer={"members": 2, "processing": {"per_record_ms": 1, "distribution": "constant"}},
        trial={"warmup_s": 1, "measure_s": 3},
    )
    first = trial(spec, bootstrap_servers)
    assert first.backlog_emptied
    measured = measure(
        spec, bootstrap_servers=bootstrap_servers, settings={}, group_id=unique("regrow"),
        registry=CollectorRegistry(), backlog_records=3000,
    )  # fmt: skip
    assert measured.capacity_bound
    assert measured.attempts >= 2
    assert measured.backlog_records > 3000
    assert measured.result.throughput_records_per_s == pytest.approx(2000, rel=0.05)


def test_record_age_of_a_backlog_and_latency_of_a_steady_state(bootstrap_servers: str) -> None:
    """Draining a prefilled backlog, records are seconds old when processed (record age);
    in the steady state after it (1 Locust user at 500 records/s, a group at 2,000 records/s
    joining at the topic's end) the same group's end-to-end p99 is well under a second."""
    spec = small_spec(
        "steady",
        workload={
            "prefill_records": 40000,
            "producer": {"users": 1, "rate_per_user": 500},
        },
        consumer={
            "members": 2,
            "processing": {"per_record_ms": 1, "distribution": "constant"},
            "settings": {"max.poll.records": 100},  # 0.1 s batches: several in a window
        },
        trial={"warmup_s": 1, "measure_s": 4, "steady_s": 4},
    )
    result = trial(spec, bootstrap_servers)
    assert result.errors == ()
    assert not result.backlog_emptied
    assert result.record_age_ms.p99 is not None
    assert result.record_age_ms.p99 > 2000
    steady = result.steady
    assert steady is not None
    assert steady.group_id == f"{result.group_id}.steady"
    assert steady.kept_up
    assert steady.produced == pytest.approx(500 * steady.window_s, rel=0.3)
    assert steady.consumed >= steady.produced - 500
    assert steady.latency_ms.p99 is not None
    assert steady.latency_ms.p99 < 500
    assert steady.p99_ms == steady.latency_ms.p99


def test_a_group_that_falls_behind_the_load_has_no_steady_state(bootstrap_servers: str) -> None:
    """1 member at 10 ms a record (100 records/s) under 500 records/s: its lag grows, the trial
    says it did not keep up, and its p99 scores infinite."""
    spec = small_spec(
        "behind",
        workload={"prefill_records": 5000, "producer": {"users": 1, "rate_per_user": 500}},
        consumer={
            "members": 1,
            "processing": {"per_record_ms": 10, "distribution": "constant"},
            "settings": {"max.poll.records": 20},
        },
        trial={"warmup_s": 1, "measure_s": 3, "steady_s": 4},
    )
    steady = trial(spec, bootstrap_servers).steady
    assert steady is not None
    assert not steady.kept_up
    assert steady.consumed < steady.produced / 2
    assert steady.p99_ms == float("inf")


def _stuck(name: str, **consumer: Any) -> StudySpec:
    """2 members of 2 partitions of 5,000 records (200 B): a member's first poll hands out a
    whole fetch (1 MiB a partition, ~7,600 records), at 3 ms a record ~23 s of work, which
    outlasts the 1 s warm-up and the 4 s window."""
    return small_spec(
        name,
        consumer={"members": 2, **consumer},
        trial={"warmup_s": 1, "measure_s": 4},
    )


def _advise(result: TrialResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Found:
    """`tuner advise --run` on the run's JSON, as code → finding."""
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result.to_dict()))
    assert main(["advise", "--run", str(path), "--json"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    return {
        f["code"]: Finding(**{**f, "severity": Severity(f["severity"])}) for f in out["findings"]
    }


def test_a_member_stuck_in_one_blocking_batch_is_measured_as_stuck(
    bootstrap_servers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `cpu` batch that holds the loop through the whole window (session 15 s, so no member
    is evicted in it, lengthened to twice its 4 s as a window of too few batches is): the
    longest gap and the loop's hold are at least the window, the member was busy, the lag is
    the broker's; the advice names the held loop (KT102) with that hold and KT106 the stuck
    member, not a gap of 0 ms."""
    spec = _stuck(
        "stuckcpu",
        processing={"per_record_ms": 3, "mode": "cpu"},
        settings={"session.timeout.ms": 15000, "heartbeat.interval.ms": 3000},
    )
    result = trial(spec, bootstrap_servers)
    assert result.rebalances == 0
    assert_stuck(result)
    held = result.poll.loop_blocked_ms_max
    assert held is not None
    assert held >= result.window_s * 1000
    found = _advise(result, tmp_path, capsys)
    assert (found["KT102"].value, found["KT102"].limit) == (held, 15000)
    assert f"the event loop was held up to {held:,.0f} ms (run" in found["KT102"].arithmetic
    stuck_s = (result.poll.open_gap_ms_max or 0) / 1000
    assert f"a member had not polled for {stuck_s:,.1f} s" in found["KT106"].change
    assert "was 0 ms" not in found["KT106"].change
    assert "KT203" not in found


def test_a_member_stuck_past_max_poll_interval_is_named_as_the_cause(
    bootstrap_servers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An `async` batch far past max.poll.interval.ms 2 s: the group rebalances, the member's
    open gap is the longest one, and the advice's rebalance finding (KT203) names the poll gap
    (KT201) with its number, and no held loop (KT102), which did not fire."""
    spec = _stuck(
        "stuckasync", processing={"per_record_ms": 3}, settings={"max.poll.interval.ms": 2000}
    )
    result = trial(spec, bootstrap_servers)
    assert result.rebalances >= 1
    assert_stuck(result)
    gap = result.poll.interval_ms_max
    assert gap is not None
    found = _advise(result, tmp_path, capsys)
    assert found["KT201"].severity is Severity.RISK
    assert (found["KT201"].value, found["KT201"].limit) == (gap, 2000)
    assert "still open at the window's end" in found["KT201"].arithmetic
    assert "KT102" not in found
    change = found["KT203"].change
    assert f"a member had not polled for {gap:,.0f} ms" in change
    assert "(KT201)" in change
    assert "KT102" not in change
