"""When the window opens and whether it held enough batches: plain values, then the real broker."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import small_spec, trial
from tuner.consumer.messages import Progress, mispredicted
from tuner.trial.measurable import (
    MIN_BATCHES,
    coarse,
    extra_warmup_s,
    lengthen,
    unmeasurable,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _at(batches: int, *, missed: int = 0, batch: int = 0, batch_s: float = 0.0) -> Progress:
    """A member's progress: `batches` finished, `batch` records in flight over `batch_s`."""
    return Progress(
        at=0.0, done={"t": (batches * 100, 0)}, batch={"t": (batch, 0)} if batch else {},
        batch_s=batch_s, batches=batches, missed=missed,
    )  # fmt: skip


def test_a_member_without_a_finished_batch_keeps_the_window_shut() -> None:
    """A handler's first batch in flight (no expected time) or no batch yet names the member;
    a model's first batch (its time drawn) and a member with nothing to consume do not; every
    member past its first batch is measurable."""
    first = _at(0, batch=3300)
    assert unmeasurable({"m0": first, "m1": _at(2, batch=10, batch_s=1)}, ()) == (
        "member m0's batch in flight has no expected time"
    )
    assert unmeasurable({"m0": None, "m1": _at(0)}, ()) == (
        "member m0 has finished no batch; member m1 has finished no batch"
    )
    assert unmeasurable({"m0": _at(0, batch=500, batch_s=5)}, ()) is None
    assert unmeasurable({"m0": first, "m1": _at(1)}, {"m0"}) is None
    assert unmeasurable({"m0": _at(1, batch=3300, batch_s=5), "m1": _at(4)}, ()) is None


def test_a_batch_is_mispredicted_past_a_tenth_of_its_time() -> None:
    """Expected 5 s, took 5.4 s: kept; took 6 s: missed; no expectation for a 5 s batch:
    missed; a 0 ms batch done in microseconds: kept."""
    assert not mispredicted(5.0, 5.4)
    assert mispredicted(5.0, 6.0)
    assert mispredicted(0.0, 5.0)
    assert not mispredicted(0.0, 0.0002)


def test_a_window_of_few_predicted_batches_is_scored_and_of_few_missed_ones_is_not() -> None:
    """2 batches that kept their expected time are enough; 3 with one missed are not (it names
    the member, its counts and a window that would do), 10 are enough whatever they missed."""
    start = {"m0": _at(1), "m1": _at(1)}
    assert coarse(start, {"m0": _at(3), "m1": _at(4)}, window_s=12, idle=()) is None
    why = coarse(start, {"m0": _at(4, missed=1), "m1": _at(4)}, window_s=12, idle=())
    assert why is not None
    assert why.startswith("member m0 finished 3 batches in the 12.0 s window, 1 of them 10% off")
    assert "set trial.measure_s to 40 or more" in why
    assert "m1" not in why
    end = {"m0": _at(1 + MIN_BATCHES, missed=5), "m1": _at(3)}
    assert coarse(start, end, window_s=12, idle=()) is None


def test_a_window_inside_one_batch_is_coarse_unless_the_member_had_nothing_to_consume() -> None:
    """A member that finished one batch in the window: coarse, asking for twice the window; the
    same member with nothing to consume is not judged (the supply's judgement is)."""
    start, end = {"m0": _at(1)}, {"m0": _at(2)}
    why = coarse(start, end, window_s=6, idle=())
    assert why is not None
    assert "member m0 finished 1 batches" in why
    assert "set trial.measure_s to 12 or more" in why
    assert coarse(start, end, window_s=6, idle={"m0"}) is None


def test_a_coarse_window_is_lengthened_up_to_twice_its_length() -> None:
    """Coarse at 6 s and 11 s of a 6 s window: measure on; at 12 s: stop; enough: stop."""
    start, end = {"m0": _at(1)}, {"m0": _at(2)}
    assert lengthen(start, end, elapsed_s=6, window_s=6, idle=())
    assert lengthen(start, end, elapsed_s=11, window_s=6, idle=())
    assert not lengthen(start, end, elapsed_s=12, window_s=6, idle=())
    assert not lengthen(start, {"m0": _at(3)}, elapsed_s=6, window_s=6, idle=())


def test_the_warm_up_waits_a_window_more_at_least_10_s() -> None:
    """The extra wait for a measurable group is the window's length, at least 10 s."""
    assert extra_warmup_s(12) == 12
    assert extra_warmup_s(3) == 10


BLOCKING = """\
import json
import time

async def handle(records):
    for record in records:
        json.loads(record.value)
    time.sleep(0.0015 * len(records))  # a blocking call of 1.5 ms per record, in async def
"""
CEILING = 2 / 0.0015
"""2 members, 1.5 ms per record: 1,333 records/s (the JSON parsing costs ~1% more)."""


@pytest.mark.integration
def test_long_blocking_batches_measure_the_same_twice_at_the_ceiling(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """An async def handler blocking 1.5 ms per record, in batches of 1.5 s (fetches bounded to
    230 kB, but the prefill's 1 MiB record batches come whole: 1,000 records a poll), behind a
    0.5 s warm-up: two runs agree within 3%, neither is above the ceiling, and no second of
    either window is 0 or a spike (the first batch credited whole before the window opened)."""
    (tmp_path / "blocking.py").write_text(textwrap.dedent(BLOCKING))
    spec = small_spec(
        "blocking",
        cluster={"bootstrap_servers": bootstrap_servers},
        topic={"partitions": 6},
        workload={
            "prefill_records": 30000,
            "payloads": {"file": str(CONFIGS / "samples/orders.jsonl"), "format": "records"},
        },
        consumer={
            "handler": f"{tmp_path / 'blocking.py'}:handle",
            "settings": {"max.partition.fetch.bytes": 230000, "fetch.max.bytes": 230000}
            | {"max.poll.records": 1000},
        },
        trial={"warmup_s": 0.5, "measure_s": 4},
    )
    first, second = trial(spec, bootstrap_servers), trial(spec, bootstrap_servers)
    for result in (first, second):
        assert result.errors == ()
        assert result.coarse is None
        assert not result.backlog_emptied
        assert result.throughput_records_per_s <= CEILING * 1.01
        seconds = result.intervals_records_per_s
        assert all(0.85 * CEILING <= s <= 1.15 * CEILING for s in seconds), seconds
    assert first.throughput_records_per_s == pytest.approx(
        second.throughput_records_per_s, rel=0.03
    )
