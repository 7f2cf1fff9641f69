"""Whether a window waited on the supply: the judgement, and `tuner run` under live load."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import unique
from tuner.cli import main
from tuner.trial.supply import MemberSecond, Second, fetch_carries, waited_on_supply

MIB = 1 << 20


def _second(records_per_s: float, **members: MemberSecond) -> Second:
    return Second(records_per_s=records_per_s, members=members)


def _member(
    lag: float, idle: float | None, *, empty: float = 0, partitions: int = 2
) -> MemberSecond:
    return MemberSecond(lag=lag, idle_ratio=idle, empty_polls=empty, partitions=partitions)


def _judge(*seconds: Second, produced: float | None = 2000.0) -> str | None:
    return waited_on_supply(seconds, settings={}, record_bytes=256, produced_per_s=produced)


def test_one_fetch_carries_partitions_times_the_partition_limit_within_the_whole() -> None:
    """A fetch carries max.partition.fetch.bytes per partition, capped by fetch.max.bytes."""
    assert fetch_carries({}, partitions=2, record_bytes=256) == 2 * MIB // 256
    capped = {"max.partition.fetch.bytes": 8 * MIB, "fetch.max.bytes": 10 * MIB}
    assert fetch_carries(capped, partitions=6, record_bytes=512) == 10 * MIB // 512


def test_a_member_idle_within_one_fetch_of_the_end_waited_on_live_load() -> None:
    """Under live load (polls never empty, lag a few records) a member that sits in poll 88% of
    the time with less left than one fetch carries waited on the supply, from that second on."""
    busy = _second(24075, m0=_member(90000, 0.05), m1=_member(88000, 0.06))
    caught_up = _second(2001, m0=_member(3, 0.88), m1=_member(5, 0.87))
    why = _judge(busy, caught_up, caught_up)
    assert why is not None
    assert why.startswith("in second 2 of 3, member m0 waited in poll 88% of the time")
    assert "fewer than one fetch carries (8,192)" in why


def test_a_busy_member_near_the_end_of_its_backlog_is_capacity_bound() -> None:
    """A member that processes all the time is capacity-bound even with little left to fetch,
    and a member that waits on fetches with a large backlog waits on the network, not supply."""
    near_end_busy = _second(23000, m0=_member(3600, 0.06), m1=_member(3000, 0.05))
    fetch_bound = _second(3000, m0=_member(200000, 0.95), m1=_member(180000, 0.9))
    assert _judge(near_end_busy, fetch_bound) is None


def test_a_group_that_consumed_what_was_produced_kept_up_with_the_producer() -> None:
    """With every member within one fetch of the end and the group's rate that of the producer,
    the window measured the producer even when no member is mostly idle; without live load,
    the same second is no evidence, and a group slower than the producer falls behind it."""
    kept_up = _second(2050, m0=_member(40, 0.3), m1=_member(20, 0.35))
    why = _judge(kept_up)
    assert why is not None
    assert "consumed 2,050 records/s, what the producer wrote (2,000/s)" in why
    assert _judge(kept_up, produced=None) is None
    falling_behind = _second(100, m0=_member(5000, 0.01, partitions=4))
    assert _judge(falling_behind, produced=500) is None
    assert _judge(_second(2050, m0=_member(40000, 0.3), m1=_member(20, 0.35))) is None


def test_a_member_with_nothing_left_and_empty_polls_ran_dry() -> None:
    """Without live load, a member with zero lag whose polls came back empty ran dry."""
    why = _judge(_second(500, m0=_member(0, None, empty=12)), produced=None)
    assert why == "in second 1 of 1, member m0 had nothing left to fetch (lag 0, 12 empty polls)"


def test_members_that_read_no_lag_are_judged_by_the_groups_records_left() -> None:
    """A service's client reads no lag: the topic's end less what the group consumed bounds
    each member's lag, so a group that took the last record and then polled empty ran dry
    (a FastStream service consumed 400,000 of 400,000 with half its time in poll and was
    scored as capacity before); while records are left it is not, and without the topic's
    end nothing is concluded."""
    service = MemberSecond(lag=None, idle_ratio=0.5, empty_polls=3, partitions=2, polls=20)
    busy = replace(service, idle_ratio=0.05, empty_polls=0)
    early = Second(records_per_s=50000, members={"m0": busy, "m1": busy}, consumed_total=300000)
    dry = Second(records_per_s=9000, members={"m0": service, "m1": busy}, consumed_total=400000)
    why = waited_on_supply(
        (early, dry), settings={}, record_bytes=200, produced_per_s=None, end_offsets_total=400000
    )
    assert why == (
        "in second 2 of 2, member m0 had nothing left to fetch "
        "(the group's records left 0, 3 empty polls)"
    )
    assert waited_on_supply(
        (early,), settings={}, record_bytes=200, produced_per_s=None, end_offsets_total=400000
    ) is None  # fmt: skip
    assert (
        waited_on_supply((early, dry), settings={}, record_bytes=200, produced_per_s=None) is None
    )


@pytest.mark.integration
def test_run_under_live_load_on_a_small_prefill_reports_capacity_or_refuses(
    bootstrap_servers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 members at ~24,000 records/s drain a 20,000-record prefill early and then consume
    Locust's live 2,000/s: `tuner run` grows the backlog and reports a rate far above the
    producer's and near its window's fastest second, or exits 1 saying it measured the supply
    and naming the prefill that would do."""
    config = tmp_path / "live.yaml"
    config.write_text(
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {unique('supply')}, partitions: 4}}\n"
        "workload:\n  message_bytes: 256\n  prefill_records: 20000\n"
        "  producer: {users: 1, rate_per_user: 2000}\n"
        "consumer:\n  members: 2\n"
        "  processing: {per_record_ms: 0.08, distribution: exponential, mode: async}\n"
        "trial: {warmup_s: 1, measure_s: 3}\n"
        "metrics: {port: 0, producer_port: 0}\n"
    )
    out_json = tmp_path / "r.json"
    code = main(["run", str(config), "--quiet", "--json", str(out_json)])
    captured = capsys.readouterr()
    result = json.loads(out_json.read_text())
    produced = result["producer"]["records_per_s"]
    assert produced == pytest.approx(2000, rel=0.2)
    if code == 0:
        assert result["backlog_emptied"] is False
        assert result["throughput_records_per_s"] > 4 * produced
        assert result["throughput_records_per_s"] >= 0.7 * max(result["intervals_records_per_s"])
    else:
        assert code == 1
        assert result["backlog_emptied"] is True
        assert "the run measured the supply" in captured.err
        assert "set workload.prefill_records to" in captured.err
        assert "NOT CAPACITY" in captured.out


def test_a_member_inside_one_long_batch_all_second_is_not_waiting() -> None:
    """A member that polled no time in a second was processing the batch it already had: the
    idle ratio its last poll left (before the batch) is no evidence that it waited."""
    one_batch = MemberSecond(lag=5000, idle_ratio=1.0, empty_polls=0, partitions=2, polls=0)
    assert _judge(_second(1000, m0=one_batch), produced=None) is None
    polled = MemberSecond(lag=5000, idle_ratio=1.0, empty_polls=0, partitions=2, polls=3)
    assert _judge(_second(1000, m0=polled), produced=None) is not None
