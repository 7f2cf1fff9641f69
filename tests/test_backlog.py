"""The backlog sizes itself: from the rate a group shows, never 0, never minutes of it unread."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import measured, small_spec, unique
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import ClusterSpec
from tuner.trial import supply
from tuner.trial.backlog import Rates, consumption_rate
from tuner.trial.measure import measure
from tuner.trial.result import OffsetCheck


def test_the_rate_is_the_fastest_over_a_whole_second() -> None:
    """A group that read 1,000 records in its first second and 9,000 in its second: 9,000/s;
    a stretch shorter than a second says nothing (a batch credited at once is no rate)."""
    samples = [(t / 10, 1000 * t / 10) for t in range(11)]
    samples += [(1 + t / 10, 1000 + 9000 * t / 10) for t in range(1, 11)]
    assert consumption_rate(samples, over_s=1.0) == pytest.approx(9000)
    assert consumption_rate([(0.0, 0.0), (0.5, 5000.0)], over_s=1.0) == 0.0


def test_a_top_up_counts_what_the_group_reads_while_it_is_written() -> None:
    """10,000/s for 10 s with a safety factor of 2 needs 200,000 ahead: with 50,000 ahead and a
    producer at 40,000/s, 150,000 more are needed at the group's pace, 200,000 at the
    producer's; a producer no clearly faster than the group cannot top up; enough is 0."""
    assert supply.SAFETY == 2.0
    assert supply.top_up(ahead=50_000, consumes_per_s=10_000, produces_per_s=0, seconds=10) == (
        150_000
    )
    assert supply.top_up(
        ahead=50_000, consumes_per_s=10_000, produces_per_s=40_000, seconds=10
    ) == pytest.approx(200_000)
    assert supply.top_up(ahead=0, consumes_per_s=10_000, produces_per_s=11_000, seconds=10) is None
    assert supply.top_up(ahead=195_000, consumes_per_s=10_000, produces_per_s=0, seconds=10) == 0


def test_a_first_backlog_is_small_until_a_rate_is_known_and_never_under_the_users() -> None:
    """Without a rate: at most 2,000 records (or 1 MiB of them); with one, sized for it; a
    `prefill_records` given is the least; the byte cap bounds what the tool sizes."""
    spec = small_spec("b", workload={"prefill_records": None, "message_bytes": 1000})
    assert supply.first_backlog(spec) == 1048
    t = spec.trial
    # The window may be lengthened to twice trial.measure_s: the backlog is sized for that.
    seconds = supply.JOIN_ALLOWANCE_S + t.warmup_s + 2 * t.measure_s + supply.MARGIN_S
    assert supply.first_backlog(spec, 1000.0) == round(1000 * seconds * supply.SAFETY)
    assert supply.first_backlog(spec, 1e9) == supply.cap_records(spec)
    fixed = small_spec("b", workload={"prefill_records": 30_000})
    assert supply.first_backlog(fixed, 1.0) == 30_000


def test_what_a_window_that_saw_nothing_suggests_is_never_0() -> None:
    """A backlog drained in the warm-up leaves a window of zeros: the suggestion comes from
    what the group consumed since it joined, and is enough for that rate over the trial."""
    spec = small_spec("b", workload={"prefill_records": 40_000}, trial={"warmup_s": 2})
    drained = replace(
        measured(0.0),
        window_s=6.0,
        intervals_records_per_s=(0.0,) * 6,
        offsets=OffsetCheck(
            consumed_total=40_000, committed_total=40_000, end_offsets_total=40_000
        ),
        backlog_emptied=True,
    )
    assert supply.peak_rate(drained) == 0.0
    needed = supply.needed(spec, drained)
    assert needed >= supply.backlog_for(spec, 40_000 / 8)
    assert needed > 40_000


def _end(conn: Connection, topic: str) -> int:
    return sum(asyncio.run(cluster.end_offsets(conn, topic)).values())


@pytest.mark.integration
def test_a_fast_group_without_a_prefill_is_capacity_bound_at_the_first_attempt(
    bootstrap_servers: str,
) -> None:
    """2 members at 0.02 ms a record (up to 100,000 records/s) and no prefill_records:
    the first window is capacity-bound (the backlog sized from the rate the group showed after
    it joined), on one attempt; the topic held what that rate needs, not a guess."""
    spec = small_spec(
        "backlog", workload={"prefill_records": None, "message_bytes": 100},
        consumer={"processing": {"per_record_ms": 0.02}}, trial={"warmup_s": 0.5, "measure_s": 2},
    )  # fmt: skip
    run = measure(
        spec, bootstrap_servers=bootstrap_servers, settings={}, group_id=unique("group"),
        registry=CollectorRegistry(),
    )  # fmt: skip
    result = run.result
    assert not result.backlog_emptied, result.supply
    assert run.attempts == 1
    assert result.throughput_records_per_s > 50_000
    assert run.backlog_records > supply.FIRST_BACKLOG_RECORDS
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    assert _end(conn, spec.topic.name) > result.offsets.consumed_total


@pytest.mark.integration
def test_a_slow_group_without_a_prefill_gets_a_backlog_of_its_size(
    bootstrap_servers: str,
) -> None:
    """2 members at 40 ms a record (50 records/s in all) and no prefill_records: the window is
    capacity-bound and the topic holds a few thousand records, not the 200,000 a fixed default
    wrote whatever the consumer's speed."""
    spec = small_spec(
        "backlog", workload={"prefill_records": None},
        consumer={"processing": {"per_record_ms": 40}}, trial={"warmup_s": 1, "measure_s": 3},
    )  # fmt: skip
    rates = Rates()
    result = measure(
        spec,
        bootstrap_servers=bootstrap_servers,
        settings={},
        group_id=unique("group"),
        registry=CollectorRegistry(),
        rates=rates,
    ).result
    assert not result.backlog_emptied, result.supply
    assert result.throughput_records_per_s == pytest.approx(50, rel=0.2)
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    held = _end(conn, spec.topic.name)
    assert held <= 5_000, f"{held:,} records written for a group at 50 records/s"
    assert 40 <= rates.consumed_per_s <= 200
